"""The published form of one event, as projectors and outside readers see it.

Projections fold envelopes, not the `eventsourcing` domain event objects: the
topic is a public contract (CloudEvents headers + a JSON body), and a projection
that reads only that contract can be replayed by anyone from the topic alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Envelope:
    event_id: str
    """CloudEvents ``id``: ``<aggregate id>/<aggregate version>``, the same for every copy."""
    event_type: str
    """Past-tense name of the fact, e.g. ``OpportunityPosted``."""
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    position: int
    """Position in the event store's notification log (global, gap-free)."""
    schema_version: int
    recorded_at: datetime
    data: Mapping[str, Any]
