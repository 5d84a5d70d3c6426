"""Organisations and people: a small registry, plus each organisation's child-labour policy.

Organisations (state agency, district, school, employer, sponsor, intermediary) have a
name and an optional parent (state -> district -> school). They are events (the
``Organisation`` aggregate: registered, renamed, moved, closed; decision 047), so a state
report as of a cut-off rolls up the hierarchy as it stood then, on every store; the
registry table keeps the current copy ``GET /organisations`` answers from. People are
pseudonymous ids with a role and an organisation: no names, no birth dates (those belong to
the school's own systems; decision 011); they stay a plain table, which authorisation
reads (docs/decisions/034-organisation-registry.md). The child-labour policy is a recorded
choice, so it is an event (``OrganisationSettings``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from domain.actor import Role
from domain.errors import WrongState
from domain.organisation import Organisation
from domain.placement.minors import ChildLabourPolicy
from infra.api_tables import (
    copy_organisation,
    deactivated_people,
    organisations,
    people,
    web_sessions,
)
from services.api.auth import TOKEN_ROLES
from services.api.deps import ActorDep, ApiEngineDep, ContactsDep, LedgerDep, run_command
from services.api.errors import ProblemError
from services.api.identities import record_identities
from services.api.models import (
    PROBLEM_RESPONSES,
    CommandAccepted,
    IdempotencyKey,
    Ident,
    IfMatch,
    Text,
    UtcDateTime,
    accepted,
    expected_version,
)
from services.ledger import CommandResult, Ledger

router = APIRouter(prefix="/organisations", tags=["organisations and people"],
                   responses=PROBLEM_RESPONSES)


class OrganisationKind(StrEnum):
    STATE_AGENCY = "state_agency"
    DISTRICT = "district"
    SCHOOL = "school"
    EMPLOYER = "employer"
    SPONSOR = "sponsor"
    INTERMEDIARY = "intermediary"


OrganisationId = Annotated[str, Path(min_length=1, max_length=100)]
PersonId = Annotated[str, Path(min_length=1, max_length=200)]

PersonRole = StrEnum("PersonRole", {r.name: r.value for r in TOKEN_ROLES})  # type: ignore[misc]


class CreateOrganisation(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "district-042", "name": "Springfield School District 42", "kind": "district",
        "parent_id": "state-il"}]})

    id: Ident
    name: str = Field(min_length=1, max_length=300, description=(
        "The organisation's name as reports and credentials show it."))
    kind: OrganisationKind = Field(description=(
        "What it is: a state agency, district, school, employer, apprenticeship sponsor "
        "or intermediary."))
    parent_id: Ident | None = Field(None, description=(
        "The organisation it belongs to (a school's district, a district's state agency); "
        "already registered, or 422 `unknown-parent`."))


class OrganisationOut(BaseModel):
    id: str
    name: str
    kind: str
    parent_id: str | None
    created_at: UtcDateTime


EmailText = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class ProviderIdentity(BaseModel):
    """Who the person is at one identity provider."""

    model_config = ConfigDict(extra="forbid")
    provider: str = Field(min_length=1, max_length=60, description=(
        "The provider's name in WBL_OIDC_PROVIDERS."))
    subject: str = Field(min_length=1, max_length=255, description=(
        "The person's `sub` claim at that provider (stable, never reassigned)."))


class RegisterPerson(BaseModel):
    """A person as a pseudonymous id with a role in the organisation; never a name."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"id": "lrn-7f3a9c", "role": "learner"}]})

    id: Ident
    role: PersonRole = Field(description=(
        "The role the person's tokens carry in this organisation."))
    identities: list[ProviderIdentity] = Field(default_factory=list, max_length=10,
                                               description=(
        "Single sign-on: the person's subject at each identity provider they sign in with "
        "(kept only as a keyed hash)."))
    email: EmailText | None = Field(None, description=(
        "Single sign-on by verified email, for providers that match by email; kept only as a "
        "keyed hash, never shown again."))
    contact_email: EmailText | None = Field(None, description=(
        "Where the ledger mails this person (a supervisor's digest of hours awaiting their "
        "approval, with approval links): kept encrypted, never in an event or a log, never "
        "shown again (the answer says only whether one is on record)."))


class PersonOut(BaseModel):
    id: str
    role: str
    organisation_id: str
    created_at: UtcDateTime
    has_contact: bool = Field(False, description=(
        "Whether a contact address for mail is on record (the address itself is never "
        "shown)."))


class SetChildLabourPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "policy": "flag", "reason": "Our work-experience program holds a WECEP exemption"}]})
    policy: ChildLabourPolicy = Field(description=(
        "What happens to hours beyond the FLSA limits for learners aged 14-15: `refuse` "
        "(every organisation's default) keeps them out of the record; `flag` records them "
        "with the breached limits named, for an exemption the ledger cannot see (e.g. WECEP)."))
    reason: Text = Field(description="Why the organisation chose this policy (kept for auditors).")


def _now() -> datetime:
    return datetime.now(UTC)


def _copy(engine: Engine, organisation: Organisation) -> OrganisationOut:
    """Bring the registry table in line with the organisation's events; answer its row."""
    created_at = organisation.created_on
    copy_organisation(engine, organisation_id=organisation.organisation_id,
                      name=organisation.name, kind=organisation.kind,
                      parent_id=organisation.parent_id,
                      created_by=organisation.registered_by, created_at=created_at)
    with engine.connect() as conn:
        row = conn.execute(select(organisations).where(
            organisations.c.id == organisation.organisation_id)).mappings().one()
    return OrganisationOut(**{k: row[k] for k in OrganisationOut.model_fields})


@router.post("", status_code=201, response_model=OrganisationOut)
async def create_organisation(body: CreateOrganisation, engine: ApiEngineDep,
                              ledger: LedgerDep, actor: ActorDep, response: Response,
                              idempotency_key: IdempotencyKey = None) -> OrganisationOut:
    """Register an organisation and its parent as an ``OrganisationRegistered`` event."""
    def register() -> OrganisationOut:
        try:
            ledger.register_organisation(actor, organisation_id=body.id, name=body.name,
                                         kind=body.kind.value, parent_id=body.parent_id)
        except WrongState:
            # Already recorded: repair the table copy if a crash left it behind, then refuse.
            _copy(engine, ledger.get_organisation(body.id))
            raise
        return _copy(engine, ledger.get_organisation(body.id))

    out = await run_in_threadpool(register)
    response.headers["Location"] = f"/organisations/{body.id}"
    return out


@router.get("", response_model=list[OrganisationOut])
def list_organisations(
    engine: ApiEngineDep,
    parent_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[OrganisationOut]:
    query = select(organisations).order_by(organisations.c.id).limit(limit).offset(offset)
    if parent_id is not None:
        query = query.where(organisations.c.parent_id == parent_id)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [OrganisationOut(**{k: r[k] for k in OrganisationOut.model_fields}) for r in rows]


def _organisation(conn: object, organisation_id: str) -> None:
    found = conn.execute(  # type: ignore[attr-defined]
        select(organisations.c.id).where(organisations.c.id == organisation_id)).first()
    if found is None:
        raise ProblemError(404, "unknown-organisation", "Unknown id",
                           f"No organisation {organisation_id} is registered.",
                           field="organisation_id")


@router.get("/{organisation_id}", response_model=OrganisationOut)
def get_organisation(organisation_id: OrganisationId, engine: ApiEngineDep) -> OrganisationOut:
    with engine.connect() as conn:
        row = conn.execute(select(organisations).where(
            organisations.c.id == organisation_id)).mappings().first()
    if row is None:
        raise ProblemError(404, "unknown-organisation", "Unknown id",
                           f"No organisation {organisation_id} is registered.",
                           field="organisation_id")
    return OrganisationOut(**{k: row[k] for k in OrganisationOut.model_fields})


@router.post("/{organisation_id}/people", status_code=201, response_model=PersonOut)
def register_person(organisation_id: OrganisationId, body: RegisterPerson, engine: ApiEngineDep,
                    actor: ActorDep, request: Request, contacts: ContactsDep,
                    idempotency_key: IdempotencyKey = None) -> PersonOut:
    if actor.role is not Role.ADMIN and body.role in (Role.ADMIN.value,
                                                      Role.STATE_AUDITOR.value):
        raise ProblemError(403, "role-not-permitted", "Your role may not do this",
                           "Only an admin registers admins and state auditors.", field="role")
    row = {"id": body.id, "role": str(body.role), "organisation_id": organisation_id,
           "created_by": actor.id, "created_at": _now()}
    with engine.begin() as conn:
        _organisation(conn, organisation_id)
        try:
            conn.execute(insert(people).values(**row))
        except IntegrityError:
            raise ProblemError(409, "person-exists", "Already registered",
                               f"Person {body.id} is already registered.", field="id") from None
        try:
            record_identities(conn, request.app.state.identity_key, body.id,
                              [(i.provider, i.subject) for i in body.identities], body.email)
        except IntegrityError:
            raise ProblemError(409, "identity-taken", "Identity already registered",
                               "One of these identities already belongs to another person.",
                               field="identities") from None
    if body.contact_email is not None:
        contacts.record(body.id, body.contact_email, by=actor.id)
    return PersonOut(**{k: row[k] for k in PersonOut.model_fields if k in row},
                     has_contact=body.contact_email is not None)


@router.get("/{organisation_id}/people", response_model=list[PersonOut])
def list_people(
    organisation_id: OrganisationId,
    engine: ApiEngineDep,
    contacts: ContactsDep,
    role: PersonRole | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[PersonOut]:
    query = (select(people).where(people.c.organisation_id == organisation_id)
             .order_by(people.c.id).limit(limit).offset(offset))
    if role is not None:
        query = query.where(people.c.role == str(role))
    with engine.connect() as conn:
        _organisation(conn, organisation_id)
        rows = conn.execute(query).mappings().all()
    known = contacts.known(r["id"] for r in rows)
    return [PersonOut(**{k: r[k] for k in PersonOut.model_fields if k in r},
                      has_contact=r["id"] in known) for r in rows]


class DeactivatePerson(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "Left the district in June"}]})
    reason: Text = Field(description="Why this person may no longer act (kept for auditors).")


class ChangeRole(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"role": "supervisor"}]})
    role: PersonRole = Field(description="The person's new role in this organisation.")


class PersonStatusOut(BaseModel):
    id: str
    role: str
    organisation_id: str
    active: bool
    sessions_ended: int = Field(description="Web sessions ended by this change.")


def _person_in(conn: Any, organisation_id: str, person_id: str) -> Any:
    _organisation(conn, organisation_id)
    row = conn.execute(select(people).where(
        people.c.id == person_id, people.c.organisation_id == organisation_id)).mappings().first()
    if row is None:
        raise ProblemError(404, "unknown-person", "Unknown id",
                           f"No person {person_id} is registered in this organisation.",
                           field="person_id")
    return row


def _end_sessions(conn: Any, person_id: str, reason: str) -> int:
    return int(conn.execute(update(web_sessions).where(
        web_sessions.c.person_id == person_id, web_sessions.c.ended_at.is_(None))
        .values(ended_at=_now(), end_reason=reason)).rowcount)


@router.post("/{organisation_id}/people/{person_id}/deactivate",
             response_model=PersonStatusOut, responses=PROBLEM_RESPONSES)
def deactivate_person(organisation_id: OrganisationId, person_id: PersonId,
                      body: DeactivatePerson, engine: ApiEngineDep, actor: ActorDep,
                      idempotency_key: IdempotencyKey = None) -> PersonStatusOut:
    """The person may no longer act: their web sessions end now, their provider tokens
    and sign-ins are refused. Their records stay (history is never erased here)."""
    with engine.begin() as conn:
        row = _person_in(conn, organisation_id, person_id)
        if actor.role is not Role.ADMIN and row["role"] in (Role.ADMIN.value,
                                                            Role.STATE_AUDITOR.value):
            raise ProblemError(403, "role-not-permitted", "Your role may not do this",
                               "Only an admin deactivates admins and state auditors.")
        if person_id == actor.id:
            raise ProblemError(422, "own-account", "Not your own account",
                               "Ask another coordinator or an admin to deactivate you.",
                               field="person_id")
        try:
            with conn.begin_nested():
                conn.execute(insert(deactivated_people).values(
                    person_id=person_id, deactivated_by=actor.id, deactivated_at=_now(),
                    reason=body.reason))
        except IntegrityError:
            pass  # deactivated already: the same answer
        ended = _end_sessions(conn, person_id, "deactivated")
    return PersonStatusOut(id=person_id, role=row["role"], organisation_id=organisation_id,
                           active=False, sessions_ended=ended)


@router.post("/{organisation_id}/people/{person_id}/role",
             response_model=PersonStatusOut, responses=PROBLEM_RESPONSES)
def change_role(organisation_id: OrganisationId, person_id: PersonId, body: ChangeRole,
                engine: ApiEngineDep, actor: ActorDep,
                idempotency_key: IdempotencyKey = None) -> PersonStatusOut:
    """A new role for a registered person; their web sessions end (they sign in again in
    the new role). Events already recorded keep the role the person acted in then."""
    new_role = str(body.role)
    with engine.begin() as conn:
        row = _person_in(conn, organisation_id, person_id)
        privileged = (Role.ADMIN.value, Role.STATE_AUDITOR.value)
        if actor.role is not Role.ADMIN and (row["role"] in privileged
                                             or new_role in privileged):
            raise ProblemError(403, "role-not-permitted", "Your role may not do this",
                               "Only an admin gives or takes the admin and auditor roles.",
                               field="role")
        ended = 0
        if row["role"] != new_role:
            conn.execute(update(people).where(people.c.id == person_id).values(role=new_role))
            ended = _end_sessions(conn, person_id, "role-changed")
        active = conn.execute(select(deactivated_people.c.person_id).where(
            deactivated_people.c.person_id == person_id)).first() is None
    return PersonStatusOut(id=person_id, role=new_role, organisation_id=organisation_id,
                           active=active, sessions_ended=ended)


class SetContact(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"email": "j.rivera@acme-electric.example"}, {"email": None}]})
    email: EmailText | None = Field(description=(
        "Where the ledger mails this person (approval digests and reminders for a "
        "supervisor or proxy approver); null forgets the address on record. Kept encrypted; "
        "never in an event, a log or an answer."))


class ContactOut(BaseModel):
    id: str
    organisation_id: str
    has_contact: bool = Field(description="Whether an address is now on record.")


@router.post("/{organisation_id}/people/{person_id}/contact", response_model=ContactOut,
             responses=PROBLEM_RESPONSES)
def set_contact(organisation_id: OrganisationId, person_id: PersonId, body: SetContact,
                engine: ApiEngineDep, contacts: ContactsDep, actor: ActorDep,
                idempotency_key: IdempotencyKey = None) -> ContactOut:
    """Record, replace or forget the address the ledger mails the person at (decision 055):
    a supervisor with no address gets no digest of hours to approve, and coordinators see
    that among the overdue approvals."""
    with engine.connect() as conn:
        _person_in(conn, organisation_id, person_id)
    if body.email is None:
        contacts.forget(person_id)
    else:
        contacts.record(person_id, body.email, by=actor.id)
    return ContactOut(id=person_id, organisation_id=organisation_id,
                      has_contact=body.email is not None)


@router.post("/{organisation_id}/child-labour-policy", response_model=CommandAccepted)
async def set_child_labour_policy(organisation_id: OrganisationId, body: SetChildLabourPolicy,
                                  ledger: LedgerDep, actor: ActorDep, response: Response,
                                  if_match: IfMatch = None,
                                  idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record the organisation's choice for hours beyond the FLSA 14-15 limits (29 CFR
    570.35): refuse them (the default) or record them flagged."""
    result = await run_command(ledger,
        lambda: ledger.set_child_labour_policy(
            actor, organisation_id, policy=body.policy, reason=body.reason,
            expected_version=expected_version(if_match)))
    return accepted(response, result)


class RenameOrganisation(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "Springfield Unified School District 42"}]})
    name: str = Field(min_length=1, max_length=300, description=(
        "The new name; reports as of later cut-offs show it, earlier ones keep the old."))


class MoveOrganisation(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "parent_id": "district-043", "reason": "Schools of the east side merged into 43"}]})
    parent_id: Ident | None = Field(description=(
        "The organisation it belongs to from now on: registered, open, not below it "
        "(422 `unknown-parent`, `parent-closed`, `parent-cycle`); null for none."))
    reason: Text = Field(description="Why it moves (kept for auditors).")


class CloseOrganisation(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reason": "Merged into North High"}]})
    reason: Text = Field(description="Why it closes (kept for auditors).")


async def _change(ledger: Ledger, engine: Engine, organisation_id: str, response: Response,
                  change: Callable[[], CommandResult]) -> CommandAccepted:
    def run() -> CommandResult:
        result = change()
        _copy(engine, ledger.get_organisation(organisation_id))
        return result

    return accepted(response, await run_in_threadpool(run))


@router.post("/{organisation_id}/rename", response_model=CommandAccepted)
async def rename_organisation(organisation_id: OrganisationId, body: RenameOrganisation,
                              ledger: LedgerDep, engine: ApiEngineDep, actor: ActorDep,
                              response: Response, if_match: IfMatch = None,
                              idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record a new name (``OrganisationRenamed``)."""
    return await _change(ledger, engine, organisation_id, response, lambda: (
        ledger.rename_organisation(actor, organisation_id, name=body.name,
                                   expected_version=expected_version(if_match))))


@router.post("/{organisation_id}/move", response_model=CommandAccepted)
async def move_organisation(organisation_id: OrganisationId, body: MoveOrganisation,
                            ledger: LedgerDep, engine: ApiEngineDep, actor: ActorDep,
                            response: Response, if_match: IfMatch = None,
                            idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record that the organisation now belongs to another parent (``OrganisationMoved``);
    reports as of earlier cut-offs keep the old roll-up."""
    return await _change(ledger, engine, organisation_id, response, lambda: (
        ledger.move_organisation(actor, organisation_id, parent_id=body.parent_id,
                                 reason=body.reason,
                                 expected_version=expected_version(if_match))))


@router.post("/{organisation_id}/close", response_model=CommandAccepted)
async def close_organisation(organisation_id: OrganisationId, body: CloseOrganisation,
                             ledger: LedgerDep, engine: ApiEngineDep, actor: ActorDep,
                             response: Response, if_match: IfMatch = None,
                             idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record that the organisation closed (``OrganisationClosed``): no new children, no
    changes; its history and roll-up stay."""
    return await _change(ledger, engine, organisation_id, response, lambda: (
        ledger.close_organisation(actor, organisation_id, reason=body.reason,
                                  expected_version=expected_version(if_match))))
