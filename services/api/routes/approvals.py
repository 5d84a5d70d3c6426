"""Approvals that wait: coordinators see the hours pending too long and name proxy approvers.

Supervisors approve from emailed links (``services/jobs/approval_digests.py``, the pages in
``services/web/routes/approval_links.py``; decision 055). When an entry still waits after
``WBL_APPROVAL_OVERDUE_DAYS``, the organisation's coordinators see it here, with whether
its supervisor can be mailed at all and who else may approve it, and may name a proxy
approver for the placement (``ProxyApproverNamed``), who then approves or rejects its hours
like the supervisor.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from domain.actor import Role
from infra.api_tables import deactivated_people, organisations, people
from services.api.deps import (
    ActorDep,
    ApiEngineDep,
    ContactsDep,
    EngineDep,
    LedgerDep,
    SettingsDep,
)
from services.api.errors import ProblemError
from services.api.models import (
    PROBLEM_RESPONSES,
    CommandAccepted,
    Day,
    IdempotencyKey,
    Ident,
    IfMatch,
    Text,
    UtcDateTime,
    accepted,
    expected_version,
)
from services.jobs.approval_digests import digests_sent, pending_approvals

router = APIRouter(tags=["approvals"], responses=PROBLEM_RESPONSES)


class OverdueApproval(BaseModel):
    """One hour entry waiting for a supervisor's decision longer than it should."""

    placement_id: UUID
    entry_id: str
    learner_id: str = Field(description="The learner's pseudonymous id.")
    work_date: date
    minutes: int = Field(description="Whole minutes.")
    kind: str
    logged_at: UtcDateTime = Field(description="When the entry was logged (or corrected).")
    days_pending: int = Field(description="Whole days since then.")
    supervisor_id: str
    supervisor_has_contact: bool = Field(description=(
        "Whether the supervisor has a contact address on record: without one they get no "
        "digest, and a proxy approver (or an address) is the way out."))
    proxy_approver_id: str | None = Field(description="The proxy approver named, if any.")
    proxy_has_contact: bool | None = Field(description=(
        "Whether the proxy approver has a contact address (null without a proxy)."))
    last_mailed_at: UtcDateTime | None = Field(description=(
        "When a digest or reminder with this entry was last mailed to anyone."))
    mailings: int = Field(description="Digests and reminders mailed with this entry.")


class OverdueApprovals(BaseModel):
    organisation_id: str
    overdue_after_days: int = Field(description="WBL_APPROVAL_OVERDUE_DAYS.")
    total: int = Field(description="Overdue entries in all, across pages.")
    limit: int
    offset: int
    items: list[OverdueApproval]


OrganisationId = Annotated[str, Path(min_length=1, max_length=100)]


@router.get("/organisations/{organisation_id}/overdue-approvals",
            response_model=OverdueApprovals)
async def overdue_approvals(
    organisation_id: OrganisationId, ledger: LedgerDep, read_models: EngineDep,
    engine: ApiEngineDep, contacts: ContactsDep, settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> OverdueApprovals:
    """Entries of the organisation's placements pending longer than
    ``WBL_APPROVAL_OVERDUE_DAYS``, oldest first: who should decide, whether they can be
    mailed, the proxy if one was named, and what was mailed."""
    with engine.connect() as conn:
        if conn.execute(select(organisations.c.id).where(
                organisations.c.id == organisation_id)).first() is None:
            raise ProblemError(404, "unknown-organisation", "Unknown id",
                               f"No organisation {organisation_id} is registered.",
                               field="organisation_id")
    now = datetime.now(UTC)
    overdue = await run_in_threadpool(
        pending_approvals, ledger, read_models, organisation_id=organisation_id,
        logged_before=now - timedelta(days=settings.approval_overdue_days))
    page = overdue[offset:offset + limit]
    approvers = {a for item in page for a in item.approvers}
    known = contacts.known(approvers)
    sent = digests_sent(engine, approvers)
    items = []
    for item in page:
        mailed = [s for a in item.approvers
                  if (s := sent.get((a, item.placement_id, item.entry_id))) is not None]
        proxy = item.proxy_approver_id
        items.append(OverdueApproval(
            placement_id=UUID(item.placement_id), entry_id=item.entry_id,
            learner_id=item.learner_id, work_date=item.work_date, minutes=item.minutes,
            kind=item.kind, logged_at=item.logged_at, days_pending=item.days_pending(now),
            supervisor_id=item.supervisor_id,
            supervisor_has_contact=item.supervisor_id in known, proxy_approver_id=proxy,
            proxy_has_contact=None if proxy is None else proxy in known,
            last_mailed_at=max((s.last_sent_at for s in mailed), default=None),
            mailings=sum(s.sends for s in mailed)))
    return OverdueApprovals(organisation_id=organisation_id,
                            overdue_after_days=settings.approval_overdue_days,
                            total=len(overdue), limit=limit, offset=offset, items=items)


class NameProxyApprover(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "proxy_id": "sup-7c21", "reason": "Supervisor on leave until March"}]})
    proxy_id: Ident = Field(description=(
        "Who may approve or reject the placement's hours besides its supervisor: a person "
        "registered with the supervisor role and not deactivated (422 `proxy-not-registered`, "
        "`proxy-not-a-supervisor`, `proxy-deactivated`); never the learner (422 "
        "`proxy-is-learner`). Replaces any proxy named before."))
    reason: Text = Field(description="Why a proxy approves (kept for auditors).")
    named_on: Day | None = Field(None, description="Business date (default today).")


def _check_proxy(engine: ApiEngineDep, proxy_id: str) -> None:
    with engine.connect() as conn:
        row = conn.execute(select(people.c.role).where(people.c.id == proxy_id)).first()
        gone = conn.execute(select(deactivated_people.c.person_id).where(
            deactivated_people.c.person_id == proxy_id)).first() is not None
    if row is None:
        raise ProblemError(422, "proxy-not-registered", "The command breaks a rule",
                           f"No person {proxy_id} is registered; register them first (POST "
                           "/organisations/{organisation_id}/people).", field="proxy_id")
    if row[0] != Role.SUPERVISOR.value:
        raise ProblemError(422, "proxy-not-a-supervisor", "The command breaks a rule",
                           f"{proxy_id} is registered as a {row[0]}; a proxy approver acts "
                           "as a supervisor and is registered with that role.",
                           field="proxy_id")
    if gone:
        raise ProblemError(422, "proxy-deactivated", "The command breaks a rule",
                           f"{proxy_id} was deactivated and may no longer act.",
                           field="proxy_id")


@router.post("/placements/{placement_id}/proxy-approver", response_model=CommandAccepted)
async def name_proxy_approver(placement_id: UUID, body: NameProxyApprover, ledger: LedgerDep,
                              engine: ApiEngineDep, actor: ActorDep, response: Response,
                              if_match: IfMatch = None,
                              idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record ``ProxyApproverNamed``: a coordinator of the placement's organisation names
    someone to approve or reject its hours besides the supervisor."""
    def run() -> CommandAccepted:
        _check_proxy(engine, body.proxy_id)
        result = ledger.name_proxy_approver(actor, placement_id, proxy_id=body.proxy_id,
                                            reason=body.reason, named_on=body.named_on,
                                            expected_version=expected_version(if_match))
        return accepted(response, result)

    return await run_in_threadpool(run)
