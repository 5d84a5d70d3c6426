"""The published contract (JSON Schemas, AsyncAPI document) is generated from the code and
committed; this fails when they drift apart, or when a published schema was deleted."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from domain.contract.catalogue import all_event_types
from infra.schemas import DOCS, render_files, schema_file_name


def test_committed_contract_files_match_the_code() -> None:
    stale = [str(path.relative_to(DOCS.parent)) for path, content in render_files().items()
             if not path.exists() or path.read_text() != content]
    assert not stale, f"regenerate with `python -m infra.schemas`: {stale}"


def test_every_schema_is_valid_json_schema_and_none_was_deleted() -> None:
    generated = {path.name for path in render_files() if path.suffix == ".json"}
    on_disk = {path.name for path in (DOCS / "schemas").glob("*.json")}
    assert generated <= on_disk
    for path in (DOCS / "schemas").glob("*.json"):
        Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_asyncapi_document_describes_the_topic_and_every_event_type() -> None:
    doc = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.0")
    channel = doc["channels"]["placementEvents"]
    assert channel["address"] == "wbl.placement-events.v1"
    messages = doc["components"]["messages"]
    assert set(messages) == {e.name for e in all_event_types()}
    for event in all_event_types():
        message = messages[event.name]
        assert message["payload"]["$ref"] == f"schemas/{schema_file_name(event)}"
        assert Path(DOCS / message["payload"]["$ref"]).exists()
        assert f"#/components/messages/{event.name}" in json.dumps(channel["messages"])
    headers = doc["components"]["schemas"]["CloudEventHeaders"]
    assert {"ce_id", "ce_type", "ce_source", "ce_time", "ce_subject",
            "ce_specversion"} <= set(headers["required"])
    assert {op["action"] for op in doc["operations"].values()} == {"send", "receive"}
