"""Elasticsearch as a store: connection and auth, kamlog's index templates, bulk writes with
retries and a dead-letter file, and reading back with the query language's DSL."""
