"""Credentials: issue one on a placement (Open Badges 3.0 achievement types), revoke or
reissue it with a reason, list them; and what anyone may read without signing in: the
issuers' DID documents, profiles and status lists, the signing keys, and verification
(decision 046)."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from domain.placement import CredentialKind
from services.api.deps import ActorDep, LedgerDep
from services.api.errors import ProblemError
from services.api.models import (
    PROBLEM_RESPONSES,
    CommandAccepted,
    Day,
    IdempotencyKey,
    IfMatch,
    Text,
    accepted,
    expected_version,
)
from services.credentials.issuing import Credentials

router = APIRouter()
placements = APIRouter(prefix="/placements/{placement_id}/credentials", tags=["credentials"],
                       responses=PROBLEM_RESPONSES)
public = APIRouter(tags=["credentials"])


def credentials_service(request: Request) -> Credentials:
    """One per app, made on first use (the key file is made then on the embedded default)."""
    found: Credentials | None = getattr(request.app.state, "credentials", None)
    if found is None:
        runtime = request.app.state.runtime
        found = request.app.state.credentials = Credentials.build(runtime.settings,
                                                                  runtime.engine)
    return found


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


class RevokeCredential(BaseModel):
    """Revoking is final: the credential stops verifying (its status bit is set)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reason": "Issued to the wrong placement", "revoked_on": None}]})

    reason: Text = Field(description="Why, as the audit trail and the transcript show it.")
    revoked_on: Day | None = Field(None, description="Date of revocation (default today).")


class ReissueCredential(BaseModel):
    """A new credential of the same kind and issuer replaces one in force."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reason": "Expiry extended after a refresher course", "expires_on": "2028-06-30"}]})

    reason: Text = Field(description="Why, as the audit trail and the transcript show it.")
    reissued_on: Day | None = Field(None, description="Date of the new issue (default today).")
    expires_on: Day | None = Field(None, description=(
        "Date the new credential lapses; none: the old one's expiry."))


class CredentialOut(BaseModel):
    credential_id: str
    kind: str
    issuer: str
    issued_on: date
    expires_on: date | None
    status: str = Field(description="`in force`, `revoked` or `reissued`")
    revoked_on: date | None = None
    revocation_reason: str | None = None
    replaced_by: str | None = None


class CredentialsOut(BaseModel):
    placement_id: UUID
    version: int
    credentials: list[CredentialOut]


CredentialId = Path(min_length=1, max_length=100)


@placements.post("", status_code=201, response_model=CommandAccepted)
def issue_credential(placement_id: UUID, body: IssueCredential, ledger: LedgerDep,
                     actor: ActorDep, response: Response, if_match: IfMatch = None,
                     idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record ``CredentialIssued``; ``created_id`` is the credential's id."""
    result = ledger.issue_credential(
        actor, placement_id, kind=body.kind.value, issuer=body.issuer,
        issued_on=body.issued_on, expires_on=body.expires_on,
        expected_version=expected_version(if_match))
    return accepted(response, result, f"/placements/{placement_id}/credentials")


@placements.post("/{credential_id}/revoke", response_model=CommandAccepted)
def revoke_credential(placement_id: UUID, body: RevokeCredential, ledger: LedgerDep,
                      actor: ActorDep, response: Response, credential_id: str = CredentialId,
                      if_match: IfMatch = None, idempotency_key: IdempotencyKey = None
                      ) -> CommandAccepted:
    """Record ``CredentialRevoked``: from now on the credential fails verification."""
    result = ledger.revoke_credential(
        actor, placement_id, credential_id=credential_id, reason=body.reason,
        revoked_on=body.revoked_on, expected_version=expected_version(if_match))
    return accepted(response, result, f"/placements/{placement_id}/credentials")


@placements.post("/{credential_id}/reissue", status_code=201, response_model=CommandAccepted)
def reissue_credential(placement_id: UUID, body: ReissueCredential, ledger: LedgerDep,
                       actor: ActorDep, response: Response, credential_id: str = CredentialId,
                       if_match: IfMatch = None, idempotency_key: IdempotencyKey = None
                       ) -> CommandAccepted:
    """Record ``CredentialReissued``; ``created_id`` is the new credential's id, and the old
    one fails verification from now on."""
    result = ledger.reissue_credential(
        actor, placement_id, credential_id=credential_id, reason=body.reason,
        reissued_on=body.reissued_on, expires_on=body.expires_on,
        expected_version=expected_version(if_match))
    return accepted(response, result, f"/placements/{placement_id}/credentials")


@placements.get("", response_model=CredentialsOut)
async def list_credentials(placement_id: UUID, ledger: LedgerDep, response: Response
                           ) -> CredentialsOut:
    p = await run_in_threadpool(ledger.get_placement, placement_id)
    response.headers["ETag"] = f'"{p.version}"'
    return CredentialsOut(placement_id=p.id, version=p.version, credentials=[CredentialOut(
        credential_id=c.credential_id, kind=c.kind.value, issuer=c.issuer,
        issued_on=c.issued_on, expires_on=c.expires_on,
        status="revoked" if c.revoked_on else "reissued" if c.replaced_by else "in force",
        revoked_on=c.revoked_on, revocation_reason=c.revocation_reason,
        replaced_by=c.replaced_by) for c in p.credentials])


# -- public: what a verifier needs, without signing in ---------------------------------------

IssuerKey = Path(min_length=1, max_length=100, pattern=r"^[0-9a-f-]+$")


def _unknown_issuer(key: str) -> ProblemError:
    return ProblemError(404, "unknown-issuer", "Unknown id",
                        f"No issuer {key} has issued credentials here.", field="issuer_key")


@public.get("/issuers/{issuer_key}/did.json", responses={
    200: {"content": {"application/did+json": {}}}, 404: PROBLEM_RESPONSES[404]})
def issuer_did_document(request: Request, issuer_key: str = IssuerKey) -> Response:
    """The issuer's did:web DID document: every public key that signed for it, the current
    one first, retired ones still listed so what they signed still verifies."""
    document = credentials_service(request).did_document(issuer_key)
    if document is None:
        raise _unknown_issuer(issuer_key)
    import json

    return Response(json.dumps(document), media_type="application/did+json")


@public.get("/issuers/{issuer_key}", responses={404: PROBLEM_RESPONSES[404]})
def issuer_profile(request: Request, issuer_key: str = IssuerKey) -> dict[str, Any]:
    """The issuer's Open Badges 3.0 ``Profile``."""
    profile = credentials_service(request).profile(issuer_key)
    if profile is None:
        raise _unknown_issuer(issuer_key)
    return profile


@public.get("/issuers/{issuer_key}/status/{list_number}", responses={
    200: {"content": {"application/vc+jwt": {}}}, 404: PROBLEM_RESPONSES[404]})
def issuer_status_list(request: Request, issuer_key: str = IssuerKey,
                       list_number: int = Path(ge=0, le=2**40)) -> Response:
    """The issuer's W3C Bitstring Status List (revocation) as a signed VC-JWT, valid for a
    day: the bit of every credential revoked or reissued is set."""
    token = credentials_service(request).status_list(issuer_key, list_number)
    if token is None:
        raise _unknown_issuer(issuer_key)
    return Response(token, media_type="application/vc+jwt",
                    headers={"Cache-Control": "max-age=300"})


@public.get("/credentials/keys")
def credential_keys(request: Request) -> dict[str, Any]:
    """The credential signing keys as a JWKS (RFC 7517): the current one and the retired
    ones, each with its RFC 7638 thumbprint as ``kid``."""
    return credentials_service(request).jwks()


class Verification(BaseModel):
    verified: bool
    kind: str | None = Field(description="OpenBadgeCredential or ClrCredential")
    credential_id: str | None
    issuer: str | None
    problems: list[str] = Field(description="Why it fails; empty when it verifies.")
    checks: list[dict[str, Any]]


class CredentialToVerify(BaseModel):
    """What to verify: the credential exactly as it was handed out."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "credential": {"@context": ["https://www.w3.org/ns/credentials/v2"],
                       "type": ["VerifiableCredential", "OpenBadgeCredential"],
                       "proof": {"type": "DataIntegrityProof"}}}]})

    credential: dict[str, Any] = Field(description=(
        "The `OpenBadgeCredential` or `ClrCredential` (JSON, with its `proof`), unchanged."))


@public.post("/credentials/verify", response_model=Verification)
def verify_credential(request: Request, body: CredentialToVerify) -> Verification:
    """Check a credential's proof, its issuer's key, its dates and its status (a CLR's
    embedded credentials too). Always 200: ``verified`` and ``problems`` say the verdict."""
    verdict = credentials_service(request).verify(body.credential)
    return Verification(**verdict.as_dict())


router.include_router(placements)
router.include_router(public)
