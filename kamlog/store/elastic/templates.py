"""kamlog's component and index templates for the data streams `logs-kamailio.log-<namespace>`
and `logs-kamailio.sip-<namespace>`: the field types of `query.fields` as ECS/Packetbeat
mappings, with a priority above the built-in `logs-*-*` template."""

from __future__ import annotations

from typing import Any, Final

from ... import __version__
from ...query.fields import DEFAULT_FIELD, FIELDS

DATASETS: Final = ("kamailio.log", "kamailio.sip")
PRIORITY: Final = 200  # the built-in logs-*-* template has 100
# A keyword longer than this is kept in _source but not indexed (Lucene refuses terms over 32 KiB).
IGNORE_ABOVE: Final = 8191
_META: Final = {"managed_by": "kamlog", "kamlog_version": __version__}


def _mapping(kind: str) -> dict[str, Any]:
    if kind == "keyword":
        return {"type": "keyword", "ignore_above": IGNORE_ABOVE}
    return {"type": kind}


def component_templates() -> dict[str, dict[str, Any]]:
    properties: dict[str, Any] = {name: _mapping(kind) for name, kind in sorted(FIELDS.items())}
    # The raw SIP message: shown in Discover, not searched (ECS: event.original is not indexed).
    properties["event.original"] = {"type": "keyword", "index": False, "doc_values": False}
    return {
        "kamlog@settings": {"template": {"settings": {
            "index.query.default_field": [DEFAULT_FIELD],
            "index.auto_expand_replicas": "0-1",
        }}, "_meta": _META},
        "kamlog@mappings": {"template": {"mappings": {
            "dynamic_templates": [{"strings_as_keyword": {
                "match_mapping_type": "string",
                "mapping": {"type": "keyword", "ignore_above": IGNORE_ABOVE}}}],
            "properties": properties,
        }}, "_meta": _META},
    }


def index_templates() -> dict[str, dict[str, Any]]:
    return {f"logs-{dataset}": {
        "index_patterns": [f"logs-{dataset}-*"],
        "data_stream": {},
        "priority": PRIORITY,
        "composed_of": list(component_templates()),
        "_meta": {**_META, "description": f"Kamailio {dataset.split('.')[1]} events correlated by kamlog"},
    } for dataset in DATASETS}


def data_stream(dataset: str, namespace: str) -> str:
    return f"logs-{dataset}-{namespace}"


def files() -> dict[str, dict[str, Any]]:
    """The templates as the files in deploy/elasticsearch/, named by the API path they go to."""
    out = {f"_component_template/{name}.json": body for name, body in component_templates().items()}
    out.update({f"_index_template/{name}.json": body for name, body in index_templates().items()})
    return out


if __name__ == "__main__":  # python -m kamlog.store.elastic.templates deploy/elasticsearch
    import json
    import os
    import sys

    for relative, body in files().items():
        path = os.path.join(sys.argv[1], relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as out:
            out.write(json.dumps(body, indent=2) + "\n")
