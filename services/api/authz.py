"""Who may call what: the one table of endpoint -> rule, checked by one dependency.

Every route of the app is named in ``RULES`` (a test fails if one is missing; a route
missing at run time is refused, never let through). A rule says which *relations* an
actor must have to the record the route acts on:

- ``own learner``: the token's actor is the placement's learner;
- ``own supervisor``: the actor is the supervisor the coordinator named on the placement,
  or the proxy approver a coordinator named to approve its hours (decision 055; the domain
  lets a proxy approve and reject, nothing else a supervisor does);
- ``org coordinator``: a coordinator whose organisation is the placement's (or the
  opportunity's, or the organisation in the path or body);
- ``program sponsor``: a sponsor whose organisation is the sponsor of the placement's
  program (or of the program in the path or body);
- ``org guardian``: a guardian acting within the placement's organisation (signing a
  minor's training agreement is all a guardian does);
- ``auditor``: a state auditor, state-wide and read-only;
- ``admin``: the service's administrator.

A role that has no allowed relation for the route is refused at once with 403
``role-not-permitted`` (nothing is loaded, nothing is revealed). For a placement, an
actor with *no* relation to it gets the same 404 as for an id that does not exist (other
organisations' records stay invisible); an actor who can see it but may not do this
gets 403 ``not-your-record``. See docs/decisions/031-authorisation-in-one-table.md and
docs/decisions/033-404-or-403.md.

The domain keeps its own checks (nobody approves their own hours, only the named
supervisor reviews, coordinators act within their organisation); these rules refuse
earlier, before any command runs, and cover what the domain cannot know (reads,
organisations in request bodies, sponsors' programs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from fastapi import Request
from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool

from domain.actor import Actor, Role
from domain.errors import UnknownAggregate
from domain.placement import Placement
from infra.api_tables import people
from services.api.auth import authenticate
from services.api.errors import ProblemError
from services.ledger import Ledger


class Rel(StrEnum):
    OWN_LEARNER = "own learner"
    OWN_SUPERVISOR = "own supervisor"
    ORG_COORDINATOR = "org coordinator"
    PROGRAM_SPONSOR = "program sponsor"
    ORG_GUARDIAN = "org guardian"
    AUDITOR = "auditor"
    RESEARCHER = "researcher"
    ADMIN = "admin"
    ANY = "any authenticated"


ROLE_OF: dict[Rel, Role] = {
    Rel.OWN_LEARNER: Role.LEARNER,
    Rel.OWN_SUPERVISOR: Role.SUPERVISOR,
    Rel.ORG_COORDINATOR: Role.COORDINATOR,
    Rel.PROGRAM_SPONSOR: Role.SPONSOR,
    Rel.ORG_GUARDIAN: Role.GUARDIAN,
    Rel.AUDITOR: Role.STATE_AUDITOR,
    Rel.RESEARCHER: Role.RESEARCHER,
    Rel.ADMIN: Role.ADMIN,
}

AUTHZ_CODES = frozenset({"role-not-permitted", "not-your-record", "own-hours"})
"""Problem codes this module answers (tests tell authorisation refusals apart by them)."""


class Target(StrEnum):
    """What record the relations are checked against."""

    NONE = "none"  # role check only
    PLACEMENT = "placement"  # path parameter placement_id
    OPPORTUNITY = "opportunity"  # path parameter opportunity_id
    BODY_OPPORTUNITY = "body opportunity"  # body field opportunity_id (match a learner)
    BODY_ORGANISATION = "body organisation"  # body field organisation_id
    BODY_SPONSOR = "body sponsor"  # body field sponsor_id (define a program)
    ORGANISATION = "organisation"  # path parameter organisation_id
    REVIEW = "review"  # placement + entry_id: the reviewer did not log or work it
    LEARNER = "learner"  # path parameter learner_id: the learner, or their organisation
    QUERY_SCOPE = "query scope"  # a cross-record query filtered to the actor's own scope


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[Rel]
    target: Target = Target.NONE
    public: bool = False
    note: str = ""

    @property
    def roles(self) -> frozenset[Role]:
        if Rel.ANY in self.allowed:
            return frozenset(Role)
        return frozenset(ROLE_OF[r] for r in self.allowed)


def rule(*allowed: Rel, target: Target = Target.NONE, note: str = "") -> Rule:
    return Rule(frozenset(allowed), target, note=note)


def placement(*allowed: Rel) -> Rule:
    return rule(*allowed, target=Target.PLACEMENT)


def review(*allowed: Rel) -> Rule:
    return rule(*allowed, target=Target.REVIEW)


def in_organisation(*allowed: Rel) -> Rule:
    return rule(*allowed, target=Target.ORGANISATION)


def of_learner(*allowed: Rel) -> Rule:
    return rule(*allowed, target=Target.LEARNER)


def scoped_query(*allowed: Rel) -> Rule:
    return rule(*allowed, target=Target.QUERY_SCOPE)


SCOPE_PARAMETER: dict[Role, str] = {
    Role.COORDINATOR: "organisation_id",
    Role.SPONSOR: "sponsor_id",
    Role.SUPERVISOR: "supervisor_id",
    Role.LEARNER: "learner_id",
}
"""A cross-record query (``scoped_query``) must name the caller's own scope in this query
parameter: a coordinator their organisation, a sponsor itself, a supervisor themself,
a learner themself. Auditors and admins query without it."""


L, S, C, SP, G, A, ADM, ANY = (Rel.OWN_LEARNER, Rel.OWN_SUPERVISOR, Rel.ORG_COORDINATOR,
                               Rel.PROGRAM_SPONSOR, Rel.ORG_GUARDIAN, Rel.AUDITOR, Rel.ADMIN,
                               Rel.ANY)
PUBLIC = Rule(frozenset(), public=True)
READERS = (L, S, C, SP, A, ADM)
"""Who reads a placement: its learner, its supervisor, its organisation's coordinators,
its program's sponsor, state auditors and admins. Not researchers (they read only
pseudonymised exports) and not guardians."""

BROWSERS = (L, S, C, SP, A, ADM)
"""Opportunities, programs and organisations are not personal data: every working role
browses them; researchers and guardians do not need to."""

RULES: dict[str, Rule] = {
    # keyed by "METHOD /path template": unique across every router, whoever wrote it
    # operations
    "GET /health": PUBLIC,
    "GET /metrics": rule(ADM, note="Prometheus scrapes with an admin token"),
    "GET /me": rule(ANY),
    # organisations and people
    "POST /organisations": rule(ADM),
    "GET /organisations": rule(*BROWSERS),
    "GET /organisations/{organisation_id}": rule(*BROWSERS),
    "POST /organisations/{organisation_id}/people": in_organisation(C, ADM),
    "GET /organisations/{organisation_id}/people": in_organisation(C, A, ADM),
    "POST /organisations/{organisation_id}/people/{person_id}/deactivate":
        in_organisation(C, ADM),
    "POST /organisations/{organisation_id}/people/{person_id}/role": in_organisation(C, ADM),
    "POST /organisations/{organisation_id}/people/{person_id}/contact":
        in_organisation(C, ADM),
    "POST /organisations/{organisation_id}/child-labour-policy": in_organisation(C, ADM),
    "POST /organisations/{organisation_id}/rename": rule(ADM),
    "POST /organisations/{organisation_id}/move": rule(ADM),
    "POST /organisations/{organisation_id}/close": rule(ADM),
    # school calendars (not personal data: every working role reads them)
    "POST /organisations/{organisation_id}/calendar/years": in_organisation(C, ADM),
    "POST /organisations/{organisation_id}/calendar/exceptions": in_organisation(C, ADM),
    "GET /organisations/{organisation_id}/calendar": rule(*BROWSERS),
    "GET /organisations/{organisation_id}/calendar/days/{day}": rule(*BROWSERS),
    # what needs a coordinator's attention (issue 17, decision 057)
    "GET /organisations/{organisation_id}/placements-needing-attention": in_organisation(
        C, A, ADM),
    # CSV imports over HTTP, confined to the organisation in the body (as `wbl import`)
    "POST /imports": rule(C, ADM, target=Target.BODY_ORGANISATION),
    # opportunities
    "POST /opportunities": rule(C, ADM, target=Target.BODY_ORGANISATION),
    "POST /opportunities/{opportunity_id}/close": rule(C, ADM, target=Target.OPPORTUNITY),
    "POST /opportunities/{opportunity_id}/revise": rule(C, ADM, target=Target.OPPORTUNITY),
    "GET /opportunities/{opportunity_id}": rule(*BROWSERS),
    "GET /opportunities": rule(*BROWSERS),
    # apprenticeship programs
    "POST /programs": rule(SP, ADM, target=Target.BODY_SPONSOR),
    "GET /programs/{program_id}": rule(*BROWSERS),
    # placements
    "POST /placements": rule(C, ADM, target=Target.BODY_OPPORTUNITY),
    "GET /placements/{placement_id}": placement(*READERS),
    "POST /placements/{placement_id}/agreement-signatures": placement(L, S, C, G, ADM),
    "POST /placements/{placement_id}/start": placement(S, C, ADM),
    "POST /placements/{placement_id}/suspend": placement(C, ADM),
    "POST /placements/{placement_id}/reinstate": placement(C, ADM),
    "POST /placements/{placement_id}/withdraw": placement(L, C, ADM),
    "POST /placements/{placement_id}/complete": placement(C, SP, ADM),
    "POST /placements/{placement_id}/competency-sign-offs": placement(S, SP),
    "POST /placements/{placement_id}/prior-learning-credits": placement(C, SP, ADM),
    "POST /placements/{placement_id}/pre-apprenticeship-credits": placement(C, SP, ADM),
    "POST /placements/{placement_id}/work-experience-agreement": placement(C, ADM),
    # hours
    "POST /placements/{placement_id}/hours": placement(L, S, C, ADM),
    "GET /placements/{placement_id}/hours": placement(*READERS),
    "POST /placements/{placement_id}/hours/{entry_id}/approve": review(S),
    "POST /placements/{placement_id}/hours/{entry_id}/reject": review(S),
    "POST /placements/{placement_id}/hours/{entry_id}/correct": placement(L, S, C, ADM),
    "POST /hours/bulk-approve": rule(S, note="each item is checked as approve_hours"),
    # approvals by emailed link (decision 055): coordinators see what waits too long and
    # name proxy approvers; the links themselves are pages, authorised by the signed link
    "GET /organisations/{organisation_id}/overdue-approvals": in_organisation(C, ADM),
    "POST /placements/{placement_id}/proxy-approver": placement(C, ADM),
    # evaluations and credentials
    "POST /placements/{placement_id}/evaluations": placement(L, S, C, SP, ADM),
    "GET /placements/{placement_id}/evaluations": placement(*READERS),
    "POST /placements/{placement_id}/credentials": placement(C, SP, ADM),
    "GET /placements/{placement_id}/credentials": placement(*READERS),
    "POST /placements/{placement_id}/credentials/{credential_id}/revoke": placement(C, SP, ADM),
    "POST /placements/{placement_id}/credentials/{credential_id}/reissue": placement(
        C, SP, ADM),
    # what a verifier needs, without signing in (decision 046)
    "GET /issuers/{issuer_key}": PUBLIC,
    "GET /issuers/{issuer_key}/did.json": PUBLIC,
    "GET /issuers/{issuer_key}/status/{list_number}": PUBLIC,
    "GET /credentials/keys": PUBLIC,
    "POST /credentials/verify": PUBLIC,
    # projections (read models; issue 5)
    "GET /learners/{learner_id}/transcript": of_learner(L, C, A, ADM),
    "GET /learners/{learner_id}/transcript/export": of_learner(L, C, A, ADM),
    "GET /learners/{learner_id}/credentials/{credential_id}/open-badge": of_learner(
        L, C, A, ADM),
    "GET /learners/{learner_id}/clr": of_learner(L, C, A, ADM),
    "GET /learners/{learner_id}/apprenticeship-hours": of_learner(L, C, A, ADM),
    "GET /placements/{placement_id}/apprenticeship-hours": placement(*READERS),
    "GET /transcripts/experiences": scoped_query(S, C, SP, A, ADM),
    "GET /pending-hours": scoped_query(S, ADM),  # a supervisor's approval queue
    "GET /apprenticeship-hours": scoped_query(S, C, SP, A, ADM),
    "GET /audit-trail": scoped_query(C, A, ADM),
    "GET /audit-trail/verify": rule(A, ADM),
    "GET /audit-trail/checkpoint-keys": rule(ANY, note="public keys of the checkpoints"),
    # state reports and research exports (issue 7): auditors read reports, researchers
    # read only pseudonymised exports
    "GET /reports/state": rule(A, ADM, note="computed as of a cut-off, small cells suppressed"),
    "GET /reports/state/runs": rule(A, ADM, note="kept runs: cut-offs and hashes"),
    "POST /reports/state/runs": rule(A, ADM, note="compute and keep a run"),
    "GET /reports/state/runs/{run_id}": rule(A, ADM),
    "GET /reports/state/runs/{run_id}/difference": rule(A, ADM),
    "GET /exports/rapids": scoped_query(SP, A, ADM),
    "GET /research/placements": rule(Rel.RESEARCHER, ADM, note="pseudonymised"),
    "GET /research/learners": rule(Rel.RESEARCHER, ADM, note="pseudonymised"),
}


# -- refusals ----------------------------------------------------------------------------

def _role_refused(actor: Actor, name: str) -> ProblemError:
    return ProblemError(403, "role-not-permitted", "Your role may not do this",
                        f"A {actor.role.value} token may not call {name}.")


def _not_yours(detail: str, field: str | None = None) -> ProblemError:
    return ProblemError(403, "not-your-record", "Not within your records", detail, field=field)


def _unknown_placement(placement_id: object) -> ProblemError:
    # Exactly what the ledger answers for an id it never recorded.
    return ProblemError(404, "unknown-placement", "Unknown id",
                        f"No placement with id {placement_id} is recorded.")


# -- relations -------------------------------------------------------------------------

def _same_org(actor: Actor, organisation_id: str | None) -> bool:
    return actor.organisation_id is not None and actor.organisation_id == organisation_id


def placement_relations(actor: Actor, placement: Placement, ledger: Ledger) -> set[Rel]:
    """Every relation the actor has to the placement (empty: they may not see it)."""
    found: set[Rel] = set()
    role = actor.role
    if role is Role.LEARNER and actor.id == placement.learner_id:
        found.add(Rel.OWN_LEARNER)
    if role is Role.SUPERVISOR and actor.id in placement.approvers:
        found.add(Rel.OWN_SUPERVISOR)
    if role is Role.COORDINATOR and _same_org(actor, placement.organisation_id):
        found.add(Rel.ORG_COORDINATOR)
    if role is Role.GUARDIAN and _same_org(actor, placement.organisation_id):
        found.add(Rel.ORG_GUARDIAN)
    if role is Role.SPONSOR and placement.program_id is not None:
        try:
            program = ledger.get_program(UUID(placement.program_id))
        except UnknownAggregate:
            program = None
        if program is not None and _same_org(actor, program.sponsor_id):
            found.add(Rel.PROGRAM_SPONSOR)
    if role is Role.STATE_AUDITOR:
        found.add(Rel.AUDITOR)
    if role is Role.ADMIN:
        found.add(Rel.ADMIN)
    return found


def _relations_by_org(actor: Actor, organisation_id: str | None) -> set[Rel]:
    found: set[Rel] = set()
    if actor.role is Role.COORDINATOR and _same_org(actor, organisation_id):
        found.add(Rel.ORG_COORDINATOR)
    if actor.role is Role.SPONSOR and _same_org(actor, organisation_id):
        found.add(Rel.PROGRAM_SPONSOR)
    if actor.role is Role.STATE_AUDITOR:
        found.add(Rel.AUDITOR)
    if actor.role is Role.ADMIN:
        found.add(Rel.ADMIN)
    return found


# -- the checks ------------------------------------------------------------------------

def check_placement(actor: Actor, ledger: Ledger, placement_id: UUID, rule_: Rule,
                    entry_id: str | None = None) -> Placement | None:
    """Object-level check on one placement: 404 if the actor may not see it, 403 if they
    may see it but not do this. Returns the placement, read-only (None if it does not
    exist: the command will answer its own 404)."""
    try:
        placement = ledger.read_placement(placement_id)
    except UnknownAggregate:
        if Rel.ADMIN in rule_.allowed and actor.role is Role.ADMIN:
            return None
        raise _unknown_placement(placement_id) from None
    relations = placement_relations(actor, placement, ledger)
    if not relations:
        raise _unknown_placement(placement_id)
    if not relations & rule_.allowed:
        raise _not_yours("You can see this placement but your part in it does not allow this.")
    if rule_.target is Target.REVIEW and entry_id is not None:
        entry = placement.entries.get(entry_id)
        if entry is not None and actor.id in (placement.learner_id, entry.logged_by):
            raise ProblemError(403, "own-hours", "You may not do this",
                               "Nobody approves or rejects hours they logged or worked "
                               "themselves.", field="entry_id")
    return placement


@dataclass(frozen=True)
class Call:
    """What the check needs to know about one request."""

    path: dict[str, Any]
    query: dict[str, str]
    body: dict[str, Any]


def check(name: str, actor: Actor, ledger: Ledger, engine: Engine | None, call: Call) -> None:
    """Apply the rule of endpoint ``name``; raise a problem if the actor may not call it."""
    rule_ = RULES.get(name)
    if rule_ is None:  # fail closed: a route nobody wrote a rule for is refused
        raise ProblemError(403, "role-not-permitted", "Your role may not do this",
                           f"No authorisation rule covers {name}.")
    if actor.role not in rule_.roles:
        raise _role_refused(actor, name)
    target = rule_.target
    everyone = Rel.ANY in rule_.allowed or (actor.role is Role.ADMIN
                                             and Rel.ADMIN in rule_.allowed)
    if everyone and target not in (Target.PLACEMENT, Target.REVIEW):
        return  # admins act in every organisation; placements still load (404 if unknown)
    if target is Target.NONE:
        return
    if target in (Target.PLACEMENT, Target.REVIEW):
        placement_id = _uuid(call.path.get("placement_id"))
        if placement_id is not None:  # an unparsable id is refused by validation (422)
            check_placement(actor, ledger, placement_id, rule_, call.path.get("entry_id"))
        return
    if target is Target.ORGANISATION:
        if not _relations_by_org(actor, call.path.get("organisation_id")) & rule_.allowed:
            raise _not_yours("You act only within your own organisation.",
                             field="organisation_id")
        return
    if target is Target.LEARNER:
        _check_learner(actor, engine, str(call.path.get("learner_id", "")), rule_)
        return
    if target is Target.QUERY_SCOPE:
        if actor.role is Role.STATE_AUDITOR and Rel.AUDITOR in rule_.allowed:
            return
        parameter = SCOPE_PARAMETER.get(actor.role)
        own = actor.id if actor.role in (Role.SUPERVISOR, Role.LEARNER) else (
            actor.organisation_id)
        if parameter is None or own is None or call.query.get(parameter) != own:
            raise _not_yours(f"As a {actor.role.value}, ask only for your own records: "
                             f"pass {parameter}={own}.", field=parameter)
        return
    if target is Target.BODY_ORGANISATION:
        organisation_id = call.body.get("organisation_id")
        if isinstance(organisation_id, str) and not (
            _relations_by_org(actor, organisation_id) & rule_.allowed
        ):
            raise _not_yours("You act only within your own organisation.",
                             field="organisation_id")
        return
    if target is Target.BODY_SPONSOR:
        sponsor_id = call.body.get("sponsor_id")
        if isinstance(sponsor_id, str) and not (
            _relations_by_org(actor, sponsor_id) & rule_.allowed
        ):
            raise _not_yours("A sponsor defines programs in its own name only.",
                             field="sponsor_id")
        return
    if target in (Target.OPPORTUNITY, Target.BODY_OPPORTUNITY):
        source = call.path if target is Target.OPPORTUNITY else call.body
        opportunity_id = _uuid(source.get("opportunity_id"))
        if opportunity_id is None:
            return
        try:
            opportunity = ledger.get_opportunity(opportunity_id)
        except UnknownAggregate:
            return  # the command answers its own 404
        if not _relations_by_org(actor, opportunity.organisation_id) & rule_.allowed:
            raise _not_yours("The opportunity belongs to another organisation.",
                             field="opportunity_id")
        return
    raise AssertionError(f"unhandled target {target}")  # pragma: no cover


def _check_learner(actor: Actor, engine: Engine | None, learner_id: str, rule_: Rule) -> None:
    """A learner's own records: the learner, or a coordinator of an organisation the
    learner is registered in (``/organisations/{id}/people``). The same 403 for every
    other id, existing or not, so the answer reveals nothing."""
    found: set[Rel] = set()
    if actor.role is Role.LEARNER and actor.id == learner_id:
        found.add(Rel.OWN_LEARNER)
    if actor.role is Role.COORDINATOR and actor.organisation_id and engine is not None:
        with engine.connect() as conn:
            registered = conn.execute(select(people.c.id).where(
                people.c.id == learner_id, people.c.organisation_id == actor.organisation_id,
                people.c.role == Role.LEARNER.value)).first()
        if registered is not None:
            found.add(Rel.ORG_COORDINATOR)
    if actor.role is Role.STATE_AUDITOR:
        found.add(Rel.AUDITOR)
    if not found & rule_.allowed:
        raise _not_yours("These are another learner's records.", field="learner_id")


def _uuid(value: object) -> UUID | None:
    if isinstance(value, UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return UUID(value)
    except ValueError:
        return None


# -- the dependency ----------------------------------------------------------------------

LOADS = frozenset({Target.PLACEMENT, Target.REVIEW, Target.OPPORTUNITY,
                   Target.BODY_OPPORTUNITY, Target.LEARNER})
"""Targets whose check reads the store or the database (in the thread pool on PostgreSQL)."""


def endpoint_key(method: str, path: str) -> str:
    return f"{'GET' if method == 'HEAD' else method} {path}"


APPROVE_HOURS = "POST /placements/{placement_id}/hours/{entry_id}/approve"


PAGES_TAG = "web pages"
"""The tag of the web pages' routes (``services/web``). They are not API endpoints: they
authenticate by session cookie and reach every record through the API's own routes, as the
signed-in person, so this table is applied to each of those calls instead (decision 054)."""


async def enforce(request: Request) -> None:
    """The app-wide dependency: authenticate, then apply the route's rule."""
    route = request.scope.get("route")
    if PAGES_TAG in (getattr(route, "tags", None) or ()):
        return
    name = endpoint_key(request.method, getattr(route, "path", "") or "")
    rule_ = RULES.get(name)
    if rule_ is not None and rule_.public:
        return
    actor = authenticate(request)
    runtime = request.app.state.runtime
    if rule_ is None or actor.role not in rule_.roles:
        check(name, actor, runtime.ledger, None, Call({}, {}, {}))  # raises
    needs_body = rule_ is not None and rule_.target in (
        Target.BODY_ORGANISATION, Target.BODY_SPONSOR, Target.BODY_OPPORTUNITY)
    body: dict[str, Any] = {}
    if needs_body:
        try:
            parsed = json.loads(await request.body() or b"{}")
        except ValueError:
            parsed = {}  # validation answers 400 for malformed JSON
        body = parsed if isinstance(parsed, dict) else {}
    call = Call(dict(request.path_params), dict(request.query_params), body)
    if rule_ is not None and rule_.target in LOADS and runtime.settings.uses_postgres:
        await run_in_threadpool(check, name, actor, runtime.ledger,
                                request.app.state.api_engine, call)
    elif rule_ is not None and rule_.target in LOADS:
        # On SQLite the loads are reads of a local file that no writer blocks (WAL), and
        # the command that follows runs on the loop too (decision 080): no hop.
        check(name, actor, runtime.ledger, request.app.state.api_engine, call)
    else:  # nothing to load: no thread-pool hop
        check(name, actor, runtime.ledger, None, call)
