"""Credentials: issue one on a placement (Open Badges 3.0 achievement types); list them."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from domain.placement import CredentialKind
from services.api.deps import ActorDep, LedgerDep
from services.api.models import (
    PROBLEM_RESPONSES,
    CommandAccepted,
    Day,
    IdempotencyKey,
    IfMatch,
    accepted,
    expected_version,
)

router = APIRouter(prefix="/placements/{placement_id}/credentials", tags=["credentials"],
                   responses=PROBLEM_RESPONSES)


class IssueCredential(BaseModel):
    """A credential needs a completed (final) evaluation."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "kind": "Fieldwork", "issuer": "Springfield District 42", "expires_on": None}]})

    kind: CredentialKind = Field(description="The Open Badges 3.0 `achievementType`.")
    issuer: str = Field(min_length=1, max_length=300,
                        description="The issuing organisation's name, as signed.")
    issued_on: Day | None = Field(None, description="Date of issue (default today).")
    expires_on: Day | None = Field(None, description=(
        "Date it lapses, after `issued_on`; none: never."))


class CredentialOut(BaseModel):
    credential_id: str
    kind: str
    issuer: str
    issued_on: date
    expires_on: date | None


class CredentialsOut(BaseModel):
    placement_id: UUID
    version: int
    credentials: list[CredentialOut]


@router.post("", status_code=201, response_model=CommandAccepted)
def issue_credential(placement_id: UUID, body: IssueCredential, ledger: LedgerDep,
                     actor: ActorDep, response: Response, if_match: IfMatch = None,
                     idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record ``CredentialIssued``; ``created_id`` is the credential's id."""
    result = ledger.issue_credential(
        actor, placement_id, kind=body.kind.value, issuer=body.issuer,
        issued_on=body.issued_on, expires_on=body.expires_on,
        expected_version=expected_version(if_match))
    return accepted(response, result, f"/placements/{placement_id}/credentials")


@router.get("", response_model=CredentialsOut)
async def list_credentials(placement_id: UUID, ledger: LedgerDep, response: Response
                           ) -> CredentialsOut:
    p = await run_in_threadpool(ledger.get_placement, placement_id)
    response.headers["ETag"] = f'"{p.version}"'
    return CredentialsOut(placement_id=p.id, version=p.version, credentials=[CredentialOut(
        credential_id=c.credential_id, kind=c.kind.value, issuer=c.issuer,
        issued_on=c.issued_on, expires_on=c.expires_on) for c in p.credentials])
