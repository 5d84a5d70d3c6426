"""The published contract of the topic: a JSON Schema per event body, and an AsyncAPI 3.0
document describing the topic, its CloudEvents headers and every message.

Both are generated from the event classes in `domain/` (``python -m infra.schemas`` writes
`docs/schemas/` and `docs/asyncapi.yaml`), and a test fails when the committed files and the
code disagree, so outside readers never get a stale contract. A schema file, once
published, is never deleted: records written under an old version stay on the topic forever.
"""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter

from domain.contract.catalogue import AGGREGATES, ENVELOPE, EventType, all_event_types
from domain.contract.cloudevents import SPEC_VERSION, TYPE_PREFIX

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DOCS = Path(__file__).resolve().parents[1] / "docs"

# Every CloudEvents header a record carries (binary mode), and what it holds.
HEADERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ce_specversion": ("CloudEvents version", {"const": SPEC_VERSION}),
    "ce_id": ("`<aggregate id>/<aggregate version>`: the same for every copy of the event",
              {"type": "string", "pattern": r"^[^/]+/[1-9][0-9]*$"}),
    "ce_source": ("The ledger that recorded the event", {"type": "string", "minLength": 1}),
    "ce_type": ("`org.wbl-ledger.<EventType>`", {"type": "string",
                                                 "pattern": r"^org\.wbl-ledger\.[A-Za-z]+$"}),
    "ce_time": ("When the event was recorded (RFC 3339, UTC)",
                {"type": "string", "format": "date-time"}),
    "ce_subject": ("The aggregate id (the record key): placement, opportunity, program...",
                   {"type": "string", "minLength": 1}),
    "content-type": ("Media type of the body", {"const": "application/json"}),
    "ce_aggregatetype": ("Placement, Opportunity, ApprenticeshipProgram, LearnerDay, ...",
                         {"type": "string", "minLength": 1}),
    "ce_aggregateversion": ("The event's version within its aggregate (1, 2, ...)",
                            {"type": "string", "pattern": r"^[1-9][0-9]*$"}),
    "ce_position": ("The event's position in the ledger's gap-free event log",
                    {"type": "string", "pattern": r"^[1-9][0-9]*$"}),
    "ce_schemaversion": ("Version of the body schema (`docs/schemas/<type>.v<N>.json`)",
                         {"type": "string", "pattern": r"^[1-9][0-9]*$"}),
}


def _event_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for aggregate in AGGREGATES:
        for name, value in vars(aggregate).items():
            if isinstance(value, type) and name not in ("Event", "Created"):
                found[name] = value
    return found


def schema_file_name(event: EventType) -> str:
    return f"{event.name}.v{event.version}.json"


def body_schema(event: EventType) -> dict[str, Any]:
    """The JSON Schema of one event type's body, from the class's annotations."""
    cls = _event_classes()[event.name]
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    for field, _ in event.fields:
        if field in ENVELOPE:
            continue
        properties[field] = TypeAdapter(hints[field]).json_schema(mode="serialization")
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"schemas/{schema_file_name(event)}",
        "title": f"{event.name} (version {event.version})",
        "description": event.meaning,
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


def headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"description": text, **schema}
                       for name, (text, schema) in HEADERS.items()},
        "required": list(HEADERS),
    }


def asyncapi_document(topic: str = "wbl.placement-events.v1") -> dict[str, Any]:
    events = all_event_types()
    messages = {
        e.name: {
            "name": e.name,
            "title": f"{e.name} v{e.version}",
            "summary": e.meaning.split(". ")[0][:200],
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
            "payload": {"$ref": f"schemas/{schema_file_name(e)}"},
            "bindings": {"kafka": {"key": {"type": "string",
                                           "description": "The aggregate id (= ce_subject)"}}},
        }
        for e in events
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "wbl-ledger placement events",
            "version": "1.0.0",
            "description": (
                "Every event the ledger records, in order, as CloudEvents 1.0 in the Kafka "
                "protocol binding (binary mode). Records are keyed by aggregate id, so one "
                "placement's events are in one partition in version order. Copies of an event "
                "(same ce_id) may appear after a relay crash or a topic refill: deduplicate "
                "by (ce_subject, ce_aggregateversion) and treat a version gap as an error. "
                "Retention is infinite; records are never changed or deleted."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "placementEvents": {
                "address": topic,
                "description": "Retention infinite (retention.ms=-1), cleanup.policy=delete.",
                "messages": {name: {"$ref": f"#/components/messages/{name}"}
                             for name in messages},
                "bindings": {"kafka": {"topicConfiguration": {
                    "retention.ms": -1, "cleanup.policy": ["delete"]}}},
            }
        },
        "operations": {
            "publishPlacementEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/placementEvents"},
                "summary": "The relay publishes every stored event, in store order.",
                "messages": [{"$ref": f"#/channels/placementEvents/messages/{name}"}
                             for name in messages],
            },
            "consumePlacementEvents": {
                "action": "receive",
                "channel": {"$ref": "#/channels/placementEvents"},
                "summary": "Projectors, state feeds and research replays read the topic.",
                "messages": [{"$ref": f"#/channels/placementEvents/messages/{name}"}
                             for name in messages],
            },
        },
        "components": {
            "schemas": {"CloudEventHeaders": headers_schema()},
            "messages": messages,
        },
    }


def type_name(event: EventType) -> str:
    return TYPE_PREFIX + event.name


def render_files() -> dict[Path, str]:
    """Every generated file and its exact content."""
    files = {
        DOCS / "schemas" / schema_file_name(e): json.dumps(body_schema(e), indent=2) + "\n"
        for e in all_event_types()
    }
    files[DOCS / "schemas" / "cloudevent-headers.json"] = json.dumps(
        {"$schema": SCHEMA_DIALECT, "$id": "schemas/cloudevent-headers.json",
         "title": "Kafka headers of every record", **headers_schema()}, indent=2) + "\n"
    files[DOCS / "asyncapi.yaml"] = (
        "# Generated by `python -m infra.schemas`; tests/unit/test_contract_docs.py checks it.\n"
        + yaml.safe_dump(asyncapi_document(), sort_keys=False, width=100)
    )
    return files


def main() -> None:
    for path, content in render_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        print(f"wrote {path.relative_to(DOCS.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
