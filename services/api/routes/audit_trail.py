"""The audit trail: every event as an entry (who, in what role, business date, recording
time, what changed, why), searchable by placement, learner, actor and dates; and the
tamper check over its hash chains.

Authorisation (to be enforced by the central policy): a state auditor reads the whole
trail, read-only; a coordinator the entries of their own organisation; a supervisor those
of their own placements; a sponsor those of their own programs' apprentices; a learner
their own placements' entries; a researcher none (pseudonymised exports are theirs).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from projections.audit_trail import AuditTrailProjection
from services.api.deps import ActorDep, EngineDep, RuntimeDep, SettingsDep
from services.api.models import PROBLEM_RESPONSES
from services.api.routes.transcripts import Limit, MinPosition, Offset, read_your_writes

router = APIRouter(prefix="/audit-trail", tags=["audit trail"])


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    position: int
    event_id: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    event_type: str
    actor_id: str | None
    actor_role: str | None
    business_date: str | None
    recorded_at: str
    placement_id: str | None
    learner_id: str | None
    organisation_id: str | None
    summary: str
    reason: str | None
    chain_hash: str
    global_hash: str | None


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    chained: int
    aggregates: int
    problem_position: int | None = None
    problem_kind: str | None = None
    problem: str | None = None


@router.get("", response_model=list[AuditEntryOut], responses=PROBLEM_RESPONSES)
def search(
    runtime: RuntimeDep, engine: EngineDep, settings: SettingsDep, actor: ActorDep,
    placement_id: str | None = None, learner_id: str | None = None,
    actor_id: str | None = None, aggregate_id: str | None = None,
    organisation_id: str | None = None, event_type: str | None = None,
    business_from: Annotated[date | None, Query(description="Business date from (incl.)")
                             ] = None,
    business_to: Annotated[date | None, Query(description="Business date to (incl.)")] = None,
    recorded_from: Annotated[date | None, Query(description="Recorded on or after")] = None,
    recorded_to: Annotated[date | None, Query(description="Recorded on or before")] = None,
    limit: Limit = 100, offset: Offset = 0, min_position: MinPosition = None,
) -> list[AuditEntryOut]:
    """Entries in store order (position), filtered."""
    read_your_writes(runtime, settings, min_position, placement_id or aggregate_id)
    with engine.connect() as conn:
        found = AuditTrailProjection().entries(
            conn, placement_id=placement_id, learner_id=learner_id, actor_id=actor_id,
            aggregate_id=aggregate_id, organisation_id=organisation_id, event_type=event_type,
            business_from=business_from.isoformat() if business_from else None,
            business_to=business_to.isoformat() if business_to else None,
            recorded_from=recorded_from.isoformat() if recorded_from else None,
            recorded_to=recorded_to.isoformat() if recorded_to else None,
            limit=limit, offset=offset)
    return [AuditEntryOut.model_validate(e) for e in found]


@router.get("/verify", response_model=VerifyOut, responses=PROBLEM_RESPONSES)
def verify(engine: EngineDep, actor: ActorDep) -> VerifyOut:
    """Recompute both hash chains; report the first entry altered, dropped or reordered."""
    with engine.connect() as conn:
        report = AuditTrailProjection().verify(conn)
    p = report.problem
    return VerifyOut(ok=report.ok, entries=report.entries, chained=report.chained,
                     aggregates=report.aggregates,
                     problem_position=p.position if p else None,
                     problem_kind=p.kind if p else None, problem=p.detail if p else None)
