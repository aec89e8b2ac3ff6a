"""deploy/kibana/kamlog.ndjson, the saved objects an operator imports into Kibana: they hold together
(every reference resolves, every dashboard panel finds its object), name only fields kamlog writes,
and query in KQL that kamlog's own parser accepts. No Kibana runs here: these tests check the
structure Kibana's import and migrations read, and what each object means."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from kamlog.query import parse
from kamlog.query.kql import And, Is, Literal, Node, Or, Range
from kamlog.query.fields import FIELDS
from kamlog.store.elastic.templates import DATASETS, data_stream

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kibana"
NDJSON = DEPLOY / "kamlog.ndjson"
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"
GRID_COLUMNS = 48  # a Kibana dashboard is 48 columns wide
# What Kibana's `search` type accepts (saved_search's schema is strict: unknown attributes fail).
SEARCH_ATTRIBUTES = {
    "title", "description", "columns", "sort", "grid", "rowHeight", "rowsPerPage", "hideChart",
    "breakdownField", "kibanaSavedObjectMeta", "isTextBasedQuery", "usesAdHocDataView", "timeRestore",
    "timeRange", "refreshInterval", "viewMode", "hideAggregatedPreview", "hits", "version",
}


def _lines() -> list[str]:
    return NDJSON.read_text(encoding="utf-8").splitlines()


def _objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines()]


def _by_id() -> dict[str, dict[str, Any]]:
    return {obj["id"]: obj for obj in _objects()}


def _of_type(kind: str) -> list[dict[str, Any]]:
    return [obj for obj in _objects() if obj["type"] == kind]


def _search_source(obj: dict[str, Any]) -> dict[str, Any]:
    source: dict[str, Any] = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    return source


def _vis_state(obj: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(obj["attributes"]["visState"])
    return state


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(dashboard["attributes"]["panelsJSON"])
    return panels


def _queries() -> Iterator[tuple[str, str]]:
    """(object id, KQL text) for every query saved in the file."""
    for obj in _objects():
        if "kibanaSavedObjectMeta" in obj["attributes"]:
            query = _search_source(obj)["query"]
            yield obj["id"], query["query"]


def _query_fields(node: Any) -> Iterator[str]:
    """The field names a parsed KQL query names, at any depth."""
    if isinstance(node, tuple):
        for item in node:
            yield from _query_fields(item)
        return
    if not dataclasses.is_dataclass(node):
        return
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        if field.name == "field":
            yield value
        else:
            yield from _query_fields(value)


def _leaves(node: Node) -> set[tuple[str, str, str]]:
    """(field, operator, value) for each comparison of a parsed query that holds only `and`, `or`
    and plain values (what the saved queries are)."""
    if isinstance(node, (And, Or)):
        return set().union(*(_leaves(query) for query in node.queries))
    if isinstance(node, Is) and isinstance(node.value, Literal):
        return {(node.field, ":", node.value.text)}
    if isinstance(node, Range):
        return {(node.field, node.op, node.value.text)}
    raise AssertionError(f"unexpected {node!r}")


def _named_fields() -> Iterator[tuple[str, str, str]]:
    """(object id, where, field) for every field an object names outside its query."""
    for obj in _objects():
        attributes = obj["attributes"]
        if obj["type"] == "index-pattern":
            yield obj["id"], "timeFieldName", attributes["timeFieldName"]
        if obj["type"] == "search":
            for column in attributes["columns"]:
                yield obj["id"], "columns", column
            for field, _direction in attributes["sort"]:
                yield obj["id"], "sort", field
        if obj["type"] == "visualization":
            for agg in _vis_state(obj)["aggs"]:
                if "field" in agg["params"]:
                    yield obj["id"], f"{agg['type']} aggregation", agg["params"]["field"]


def test_every_line_is_one_saved_object() -> None:
    lines = _lines()
    assert lines, f"{NDJSON} is empty"
    for number, line in enumerate(lines, 1):
        obj = json.loads(line)
        assert isinstance(obj, dict), f"line {number} is not an object"
        assert {"id", "type", "attributes", "references"} <= obj.keys(), f"line {number}"
        assert obj["attributes"]["title"], f"line {number} has no title"


def test_ids_are_unique_and_readable() -> None:
    ids = [obj["id"] for obj in _objects()]
    assert len(ids) == len(set(ids))
    assert all(id_.startswith("kamlog-") for id_ in ids), ids


def test_every_reference_resolves_to_an_object_of_its_type_in_the_file() -> None:
    by_id = _by_id()
    for obj in _objects():
        names = [ref["name"] for ref in obj["references"]]
        assert len(names) == len(set(names)), f"{obj['id']}: a reference name twice"
        for ref in obj["references"]:
            assert ref["id"] in by_id, f"{obj['id']} refers to {ref['id']}, which the file lacks"
            assert by_id[ref["id"]]["type"] == ref["type"], f"{obj['id']}: {ref}"


def test_every_embedded_json_string_parses() -> None:
    checked = 0
    for obj in _objects():
        attributes = obj["attributes"]
        for key in ("visState", "uiStateJSON", "panelsJSON", "optionsJSON"):
            if key in attributes:
                json.loads(attributes[key])
                checked += 1
        if "kibanaSavedObjectMeta" in attributes:
            assert isinstance(_search_source(obj), dict)
            checked += 1
    assert checked >= len(_objects()) - 1  # all but the data view embed some


def test_searches_and_visualizations_reach_the_data_view_by_index_ref_name() -> None:
    for obj in _of_type("search") + _of_type("visualization"):
        source = _search_source(obj)
        assert "index" not in source, f"{obj['id']}: a raw index id; Kibana wants indexRefName"
        assert source["indexRefName"] == INDEX_REF
        assert [ref for ref in obj["references"] if ref["name"] == INDEX_REF] == [
            {"name": INDEX_REF, "type": "index-pattern", "id": "kamlog-data-view"}
        ]


def test_every_dashboard_panel_finds_its_reference_and_fits_the_grid() -> None:
    for dashboard in _of_type("dashboard"):
        panels = _panels(dashboard)
        refs = {ref["name"]: ref for ref in dashboard["references"]}
        indexes = [panel["panelIndex"] for panel in panels]
        assert len(indexes) == len(set(indexes))
        for panel in panels:
            # Kibana 8/9 look up `<panelIndex>:<panelRefName>` (falling back to the bare name).
            ref = refs[f"{panel['panelIndex']}:{panel['panelRefName']}"]
            assert ref["type"] == panel["type"]
            assert "id" not in panel, "a panel names its object through references only"
            grid = panel["gridData"]
            assert grid["i"] == panel["panelIndex"]
            assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= GRID_COLUMNS
        assert len(refs) == len(panels), "a reference no panel uses"


def test_panels_do_not_overlap() -> None:
    for dashboard in _of_type("dashboard"):
        cells: dict[tuple[int, int], str] = {}
        for panel in _panels(dashboard):
            grid = panel["gridData"]
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, f"{panel['panelIndex']} overlaps {cells[(x, y)]}"
                    cells[(x, y)] = panel["panelIndex"]


@pytest.mark.parametrize("where", ["named", "queried"])
def test_every_field_is_one_kamlog_writes(where: str) -> None:
    if where == "named":
        found = [(id_, place, field) for id_, place, field in _named_fields()]
    else:
        found = [(id_, "query", field) for id_, text in _queries() for field in _query_fields(parse(text))]
    assert found
    unknown = [item for item in found if item[2] not in FIELDS]
    assert not unknown, f"fields kamlog does not write: {unknown}"


def test_every_query_is_kql_that_kamlog_parses() -> None:
    for obj in _objects():
        if "kibanaSavedObjectMeta" not in obj["attributes"]:
            continue
        query = _search_source(obj)["query"]
        assert query["language"] == "kuery", obj["id"]
        parse(query["query"])  # raises KqlError on anything kamlog would refuse


def test_sorted_and_aggregated_fields_have_values_to_order_by() -> None:
    """Elasticsearch sorts and aggregates doc values; `message` is text and has none."""
    for id_, place, field in _named_fields():
        if place == "sort" or place.endswith("aggregation"):
            assert FIELDS[field] != "text", f"{id_} {place} on {field}"


def test_the_data_view_covers_both_data_streams_by_time() -> None:
    (view,) = _of_type("index-pattern")
    assert view["attributes"]["name"] == "Kamailio (kamlog)"
    assert view["attributes"]["timeFieldName"] == "@timestamp"
    for dataset in DATASETS:
        assert fnmatchcase(data_stream(dataset, "default"), view["attributes"]["title"]), dataset
    assert not fnmatchcase("logs-nginx.access-default", view["attributes"]["title"])


def test_saved_searches_carry_only_attributes_kibana_accepts() -> None:
    for search in _of_type("search"):
        assert search["attributes"].keys() <= SEARCH_ATTRIBUTES, search["id"]
        assert all(direction in ("asc", "desc") for _field, direction in search["attributes"]["sort"])


def test_errors_by_call_lists_warnings_and_worse_grouped_by_call() -> None:
    search = _by_id()["kamlog-errors-by-call"]
    assert search["attributes"]["columns"] == ["kamlog.call", "log.level", "log.logger", "message"]
    assert search["attributes"]["sort"] == [["kamlog.call", "asc"], ["@timestamp", "asc"]]
    query = parse(_search_source(search)["query"]["query"])
    assert isinstance(query, Or)
    assert _leaves(query) == {("log.level", ":", level) for level in ("ERROR", "CRITICAL", "ALERT", "BUG", "WARNING")}


def test_a_call_timeline_is_in_kamlog_order_and_leaves_the_call_to_the_operator() -> None:
    search = _by_id()["kamlog-call-timeline"]
    assert search["attributes"]["sort"] == [["@timestamp", "asc"], ["kamlog.sequence", "asc"]]
    assert search["attributes"]["columns"] == ["event.dataset", "sip.method", "sip.code", "log.level", "message"]
    assert _search_source(search)["query"]["query"] == ""
    assert 'kamlog.call : "' in search["attributes"]["description"]


def test_failed_calls_are_invite_final_responses_of_400_and_above() -> None:
    search = _by_id()["kamlog-failed-calls"]
    query = parse(_search_source(search)["query"]["query"])
    assert isinstance(query, And)
    assert _leaves(query) == {("sip.cseq.method", ":", "INVITE"), ("sip.code", ">=", "400")}


def test_calls_per_state_counts_each_call_once_by_its_final_state() -> None:
    aggs = {agg["schema"]: agg for agg in _vis_state(_by_id()["kamlog-calls-by-state"])["aggs"]}
    assert (aggs["metric"]["type"], aggs["metric"]["params"]["field"]) == ("cardinality", "kamlog.call")
    assert (aggs["bucket"]["type"], aggs["bucket"]["params"]["field"]) == ("terms", "kamlog.call_state")
    assert aggs["bucket"]["params"]["orderBy"] == aggs["metric"]["id"]


def test_errors_per_module_counts_error_and_warning_lines_over_time_by_logger() -> None:
    vis = _by_id()["kamlog-errors-by-module"]
    state = _vis_state(vis)
    aggs = {agg["schema"]: agg for agg in state["aggs"]}
    assert aggs["metric"]["type"] == "count"
    assert (aggs["segment"]["type"], aggs["segment"]["params"]["field"]) == ("date_histogram", "@timestamp")
    assert (aggs["group"]["type"], aggs["group"]["params"]["field"]) == ("terms", "log.logger")
    # The chart's one series is the count: its seriesParams name that metric.
    assert [series["data"]["id"] for series in state["params"]["seriesParams"]] == [aggs["metric"]["id"]]
    query = parse(_search_source(vis)["query"]["query"])
    assert isinstance(query, Or)
    assert _leaves(query) == {("log.level", ":", "ERROR"), ("log.level", ":", "WARNING")}


def test_the_dashboard_shows_calls_per_state_errors_per_module_and_errors_by_call() -> None:
    (dashboard,) = _of_type("dashboard")
    assert dashboard["attributes"]["title"] == "kamlog: Kamailio calls and errors"
    shown = {ref["id"] for ref in dashboard["references"]}
    assert {"kamlog-calls-by-state", "kamlog-errors-by-module", "kamlog-errors-by-call"} <= shown


def test_objects_carry_no_migration_version_so_kibana_migrates_them_on_import() -> None:
    for obj in _objects():
        assert not {"migrationVersion", "typeMigrationVersion", "coreMigrationVersion"} & obj.keys(), obj["id"]
    for dashboard in _of_type("dashboard"):
        # Kibana's 7.3 dashboard migration rescales the grid of a panel whose version says 6.x.
        assert all(panel["version"].split(".")[0] in ("8", "9") for panel in _panels(dashboard))


def test_the_queries_the_readme_gives_operators_parse() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Queries operators type", 1)[1].split("\n## ", 1)[0]
    queries = [row.rsplit("| `", 1)[1].removesuffix("` |") for row in table.splitlines() if row.endswith("` |")]
    assert len(queries) >= 10
    for query in queries:
        parse(query)
