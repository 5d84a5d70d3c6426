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
from pydantic import BaseModel, ConfigDict, Field

from projections.audit_trail import AuditTrailProjection
from services.api.deps import ActorDep, EngineDep, RuntimeDep, SettingsDep
from services.api.errors import ProblemError
from services.api.models import PROBLEM_RESPONSES
from services.api.routes.transcripts import (
    MAX_POSITION,
    Limit,
    MinPosition,
    Offset,
    read_your_writes,
)
from services.workers import audit_checkpoints

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
    problem_kind: str | None = Field(
        None, description="altered, dropped, reordered, or rewritten (the table agrees with "
        "itself but not with a signed checkpoint)")
    problem: str | None = None
    problem_aggregate_type: str | None = None
    problem_aggregate_id: str | None = Field(
        None, description="The placement (or other aggregate) of the first bad entry")
    problem_event_type: str | None = None
    checkpoints_read: int | None = Field(
        None, description="Checkpoints on the checkpoint topic; null when no broker is known")
    checkpoints_agreeing: int = 0
    checkpoint_position: int | None = Field(
        None, description="The highest position a signed checkpoint confirmed")
    refused_checkpoints: list[str] = Field(
        default_factory=list, description="Checkpoints whose signature does not verify with "
        "the key they name (forgeries); they make ``ok`` false")
    ignored_checkpoints: list[str] = Field(
        default_factory=list, description="Checkpoints signed by a key this service does not "
        "know (another deployment's, or a retired key not configured): never trusted")


class CheckpointKey(BaseModel):
    """A public key of the audit checkpoints as a JWK (RFC 8037, OKP / Ed25519)."""

    kty: str = Field(examples=["OKP"])
    crv: str = Field(examples=["Ed25519"])
    x: str = Field(description="The raw public key, base64url")
    kid: str = Field(description="RFC 7638 thumbprint; each checkpoint names its key by it")
    alg: str = Field(examples=["EdDSA"])
    use: str = Field(examples=["sig"])
    status: str = Field(description="current (signs new checkpoints) or retired",
                        examples=["current"])


class CheckpointKeys(BaseModel):
    keys: list[CheckpointKey]


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
    from_position: Annotated[int | None, Query(
        ge=1, le=MAX_POSITION, description="Only entries at this store position or later "
        "(the range a checkpoint or a failed verification names)")] = None,
    to_position: Annotated[int | None, Query(
        ge=1, le=MAX_POSITION, description="Only entries at this store position or earlier"
    )] = None,
    limit: Limit = 100, offset: Offset = 0, min_position: MinPosition = None,
) -> list[AuditEntryOut]:
    """Entries in store order (position), filtered."""
    if from_position is not None and to_position is not None and from_position > to_position:
        raise ProblemError(422, "invalid-position-range", "Empty position range",
                           f"from_position {from_position} is after to_position "
                           f"{to_position}.", field="from_position")
    read_your_writes(runtime, settings, min_position, placement_id or aggregate_id)
    with engine.connect() as conn:
        found = AuditTrailProjection().entries(
            conn, placement_id=placement_id, learner_id=learner_id, actor_id=actor_id,
            aggregate_id=aggregate_id, organisation_id=organisation_id, event_type=event_type,
            business_from=business_from.isoformat() if business_from else None,
            business_to=business_to.isoformat() if business_to else None,
            recorded_from=recorded_from.isoformat() if recorded_from else None,
            recorded_to=recorded_to.isoformat() if recorded_to else None,
            from_position=from_position, to_position=to_position, limit=limit, offset=offset)
    return [AuditEntryOut.model_validate(e) for e in found]


@router.get("/verify", response_model=VerifyOut, responses=PROBLEM_RESPONSES)
def verify(runtime: RuntimeDep, engine: EngineDep, settings: SettingsDep, actor: ActorDep
           ) -> VerifyOut:
    """Recompute both hash chains and compare them with the signed checkpoints read back
    from the checkpoint topic; report the first entry altered, dropped, reordered or
    rewritten, with its placement and event type (decisions 020 and 041)."""
    verdict = audit_checkpoints.verify_trail(settings, engine, runtime.bootstrap)
    report = verdict.report
    p = report.problem
    return VerifyOut(ok=verdict.ok, entries=report.entries, chained=report.chained,
                     aggregates=report.aggregates,
                     problem_position=p.position if p else None,
                     problem_kind=p.kind if p else None, problem=p.detail if p else None,
                     problem_aggregate_type=p.aggregate_type if p else None,
                     problem_aggregate_id=p.aggregate_id if p else None,
                     problem_event_type=p.event_type if p else None,
                     checkpoints_read=verdict.checkpoints_read,
                     checkpoints_agreeing=report.anchored,
                     checkpoint_position=report.anchored_position,
                     refused_checkpoints=verdict.refused,
                     ignored_checkpoints=verdict.ignored)


@router.get("/checkpoint-keys", response_model=CheckpointKeys, responses=PROBLEM_RESPONSES)
def checkpoint_keys(settings: SettingsDep) -> CheckpointKeys:
    """The public keys that verify the audit trail's checkpoints, as a JWK set: the one
    signing now and the retired ones, whose checkpoints still verify. Public, so that
    anyone holding a checkpoint can check it without this software."""
    return CheckpointKeys.model_validate(audit_checkpoints.key_ring(settings).jwks())
