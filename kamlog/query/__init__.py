"""Kibana's query language over kamlog's events: parsed once, compiled to Elasticsearch query DSL or to SQLite SQL."""

from .dsl import to_dsl
from .kql import KqlError, parse
from .sql import register_functions, to_sql

__all__ = ["KqlError", "parse", "register_functions", "to_dsl", "to_sql"]
