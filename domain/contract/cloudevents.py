"""Events on the wire: CloudEvents 1.0 in the Kafka protocol binding, binary mode.

Attributes travel as ``ce_*`` headers and the event's own fields as a canonical
JSON body, so a reader needs no knowledge of Python or of the `eventsourcing`
library to read the topic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.contract.canonical import canonical_json
from domain.contract.envelope import Envelope

SPEC_VERSION = "1.0"
TYPE_PREFIX = "org.wbl-ledger."
CONTENT_TYPE = "application/json"

# Attributes the library keeps on every event; they travel as headers, not in the body.
_ENVELOPE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


@dataclass(frozen=True)
class OutgoingRecord:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    position: int


def event_type_names(topic: str) -> tuple[str, str]:
    """``domain.opportunity:Opportunity.OpportunityPosted``
    -> (``Opportunity``, ``OpportunityPosted``)."""
    qualname = topic.split(":", 1)[1]
    aggregate_type, _, event_type = qualname.rpartition(".")
    return aggregate_type or qualname, event_type


def to_record(domain_event: Any, topic: str, position: int, source: str) -> OutgoingRecord:
    """Build the Kafka record for one stored event (already upcast to its current version)."""
    aggregate_type, event_type = event_type_names(topic)
    aggregate_id = str(domain_event.originator_id)
    version = int(domain_event.originator_version)
    schema_version = int(getattr(type(domain_event), "class_version", 1))
    body = {k: v for k, v in domain_event.__dict__.items() if k not in _ENVELOPE_FIELDS}
    headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", f"{aggregate_id}/{version}".encode()),
        ("ce_source", source.encode()),
        ("ce_type", (TYPE_PREFIX + event_type).encode()),
        ("ce_time", domain_event.timestamp.isoformat().encode()),
        ("ce_subject", aggregate_id.encode()),
        ("content-type", CONTENT_TYPE.encode()),
        ("ce_aggregatetype", aggregate_type.encode()),
        ("ce_aggregateversion", str(version).encode()),
        ("ce_position", str(position).encode()),
        ("ce_schemaversion", str(schema_version).encode()),
    ]
    return OutgoingRecord(
        key=aggregate_id.encode(), value=canonical_json(body), headers=headers, position=position
    )


class MalformedRecord(ValueError):
    """A record on the topic is not a wbl-ledger CloudEvent; a reader must not guess."""


def from_record(headers: list[tuple[str, bytes]] | None, value: bytes | None) -> Envelope:
    h = {k: v.decode() for k, v in (headers or [])}
    try:
        event_type = h["ce_type"]
        return Envelope(
            event_id=h["ce_id"],
            event_type=event_type.removeprefix(TYPE_PREFIX),
            aggregate_type=h["ce_aggregatetype"],
            aggregate_id=h["ce_subject"],
            aggregate_version=int(h["ce_aggregateversion"]),
            position=int(h["ce_position"]),
            schema_version=int(h["ce_schemaversion"]),
            recorded_at=datetime.fromisoformat(h["ce_time"]),
            data=json.loads(value or b"{}"),
        )
    except (KeyError, ValueError) as error:
        raise MalformedRecord(f"not a wbl-ledger CloudEvent: {error}") from error
