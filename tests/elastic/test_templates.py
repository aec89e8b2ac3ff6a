"""deploy/elasticsearch/ holds exactly the templates kamlog installs."""

from __future__ import annotations

import json
from pathlib import Path

from kamlog.query.fields import FIELDS
from kamlog.store.elastic.templates import component_templates, files

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "elasticsearch"


def test_the_deploy_files_are_the_templates_kamlog_installs() -> None:
    on_disk = {p.relative_to(DEPLOY).as_posix(): json.loads(p.read_text()) for p in DEPLOY.rglob("*.json")}
    assert on_disk == files(), "run: python -m kamlog.store.elastic.templates deploy/elasticsearch"


def test_every_queryable_field_is_mapped_with_its_type() -> None:
    properties = component_templates()["kamlog@mappings"]["template"]["mappings"]["properties"]
    assert {name: properties[name]["type"] for name in FIELDS} == dict(FIELDS)
