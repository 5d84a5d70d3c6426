"""Per-organisation settings that change how rules apply, recorded as events.

A setting that decides whether hours are refused must itself be auditable: an auditor
reading a flagged entry can see from the history which policy was in force, who chose it
and why.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.actor import Actor, Role
from domain.errors import NotPermitted, RuleViolated, WrongState
from domain.placement.minors import ChildLabourPolicy

ORGANISATION_NAMESPACE = UUID("0b6a7f4c-2e1d-5c3b-8f9a-4d5e6f708192")


def _check(actor: Actor, organisation_id: str, policy: ChildLabourPolicy | str,
           reason: str) -> ChildLabourPolicy:
    if actor.role not in (Role.COORDINATOR, Role.ADMIN) or (
        actor.organisation_id is not None and actor.organisation_id != organisation_id
    ):
        raise NotPermitted("Only a coordinator of the organisation sets its policies.",
                           code="coordinator-required")
    try:
        parsed = ChildLabourPolicy(policy)
    except ValueError:
        raise RuleViolated(f"{policy!r} is not a child-labour policy; use refuse or flag.",
                           code="unknown-policy", field="policy") from None
    if not reason.strip():
        raise RuleViolated("Say why the policy is set.", code="reason-required",
                           field="reason")
    return parsed


class OrganisationSettings(Aggregate):
    """One organisation's settings; the id is derived from the organisation id.

    Events: ``ChildLabourPolicyChosen``, ``ChildLabourPolicyChanged``.
    """

    @staticmethod
    def create_id(organisation_id: str) -> UUID:
        return uuid5(ORGANISATION_NAMESPACE, f"organisation-settings/{organisation_id}")

    @classmethod
    def choose(cls, *, actor: Actor, organisation_id: str, policy: ChildLabourPolicy | str,
               reason: str, chosen_on: date) -> OrganisationSettings:
        parsed = _check(actor, organisation_id, policy, reason)
        return cls(actor_id=actor.id, actor_role=str(actor.role), business_date=chosen_on,
                   organisation_id=organisation_id, policy=parsed.value, reason=reason.strip())

    @event("ChildLabourPolicyChosen")
    def __init__(self, *, actor_id: str, actor_role: str, business_date: date,
                 organisation_id: str, policy: str, reason: str) -> None:
        """An organisation chose, for the first time, whether hours beyond the FLSA 14-15
        limits are refused or recorded with a flag."""
        self.organisation_id = organisation_id
        self.child_labour_policy = ChildLabourPolicy(policy)

    def change(self, *, actor: Actor, policy: ChildLabourPolicy | str, reason: str,
               changed_on: date) -> None:
        parsed = _check(actor, self.organisation_id, policy, reason)
        if parsed is self.child_labour_policy:
            raise WrongState(f"The policy is already {parsed.value}.", code="policy-unchanged",
                             field="policy")
        self._changed(actor_id=actor.id, actor_role=str(actor.role), business_date=changed_on,
                      policy=parsed.value, reason=reason.strip())

    @event("ChildLabourPolicyChanged")
    def _changed(self, *, actor_id: str, actor_role: str, business_date: date, policy: str,
                 reason: str) -> None:
        """An organisation switched between refusing and flagging hours beyond the FLSA
        14-15 limits, with the reason."""
        self.child_labour_policy = ChildLabourPolicy(policy)


ORGANISATION_KINDS = ("state_agency", "district", "school", "employer", "sponsor",
                      "intermediary")


def _check_admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise NotPermitted("Only an admin registers, renames, moves or closes organisations.",
                           code="admin-required")


class Organisation(Aggregate):
    """One organisation and its place in the hierarchy (state agency -> district -> school),
    as events, so that a state report as of a cut-off rolls up the hierarchy as it stood
    then (decision 047). The id is derived from the organisation id, so registering the same
    organisation twice is refused by the store's uniqueness check, never by a race.

    Events: ``OrganisationRegistered``, ``OrganisationRenamed``, ``OrganisationMoved``,
    ``OrganisationClosed``. Whether a new parent exists and would make a cycle is the
    ledger's check (it needs the other organisations); this class checks what it can alone.
    """

    @staticmethod
    def create_id(organisation_id: str) -> UUID:
        return uuid5(ORGANISATION_NAMESPACE, f"organisation/{organisation_id}")

    @classmethod
    def register(cls, *, actor: Actor, organisation_id: str, name: str, kind: str,
                 parent_id: str | None, registered_on: date) -> Organisation:
        _check_admin(actor)
        if kind not in ORGANISATION_KINDS:
            raise RuleViolated(f"{kind!r} is not a kind of organisation.", code="unknown-kind",
                               field="kind")
        if not name.strip():
            raise RuleViolated("An organisation needs a name.", code="name-required",
                               field="name")
        if parent_id == organisation_id:
            raise RuleViolated("An organisation cannot be its own parent.",
                               code="parent-cycle", field="parent_id")
        return cls(actor_id=actor.id, actor_role=str(actor.role), business_date=registered_on,
                   organisation_id=organisation_id, name=name.strip(), kind=kind,
                   parent_id=parent_id)

    @event("OrganisationRegistered")
    def __init__(self, *, actor_id: str, actor_role: str, business_date: date,
                 organisation_id: str, name: str, kind: str, parent_id: str | None) -> None:
        """An admin registered an organisation (state agency, district, school, employer,
        sponsor, intermediary) and the organisation it belongs to, if any."""
        self.organisation_id = organisation_id
        self.name = name
        self.kind = kind
        self.parent_id = parent_id
        self.registered_by = actor_id
        self.closed_on: date | None = None

    def _check_open(self) -> None:
        if self.closed_on is not None:
            raise WrongState(f"Organisation {self.organisation_id} is closed.",
                             code="organisation-closed")

    def rename(self, *, actor: Actor, name: str, renamed_on: date) -> None:
        _check_admin(actor)
        self._check_open()
        if not name.strip():
            raise RuleViolated("An organisation needs a name.", code="name-required",
                               field="name")
        if name.strip() == self.name:
            raise WrongState(f"The organisation is already called {self.name!r}.",
                             code="name-unchanged", field="name")
        self._renamed(actor_id=actor.id, actor_role=str(actor.role), business_date=renamed_on,
                      name=name.strip())

    @event("OrganisationRenamed")
    def _renamed(self, *, actor_id: str, actor_role: str, business_date: date,
                 name: str) -> None:
        """The organisation took a new name; reports as of later cut-offs show it."""
        self.name = name

    def move(self, *, actor: Actor, parent_id: str | None, reason: str,
             moved_on: date) -> None:
        _check_admin(actor)
        self._check_open()
        if parent_id == self.organisation_id:
            raise RuleViolated("An organisation cannot be its own parent.",
                               code="parent-cycle", field="parent_id")
        if parent_id == self.parent_id:
            raise WrongState(f"The organisation already belongs to {parent_id}.",
                             code="parent-unchanged", field="parent_id")
        if not reason.strip():
            raise RuleViolated("Say why the organisation moves.", code="reason-required",
                               field="reason")
        self._moved(actor_id=actor.id, actor_role=str(actor.role), business_date=moved_on,
                    parent_id=parent_id, previous_parent_id=self.parent_id,
                    reason=reason.strip())

    @event("OrganisationMoved")
    def _moved(self, *, actor_id: str, actor_role: str, business_date: date,
               parent_id: str | None, previous_parent_id: str | None, reason: str) -> None:
        """The organisation now belongs to another parent (a school moved to another
        district). Reports as of earlier cut-offs keep rolling it up under the old one."""
        self.parent_id = parent_id

    def close(self, *, actor: Actor, reason: str, closed_on: date) -> None:
        _check_admin(actor)
        self._check_open()
        if not reason.strip():
            raise RuleViolated("Say why the organisation closes.", code="reason-required",
                               field="reason")
        self._closed(actor_id=actor.id, actor_role=str(actor.role), business_date=closed_on,
                     reason=reason.strip())

    @event("OrganisationClosed")
    def _closed(self, *, actor_id: str, actor_role: str, business_date: date,
                reason: str) -> None:
        """The organisation closed: it takes no new children and no changes. Its history
        stays, and reports keep rolling its placements up the hierarchy."""
        self.closed_on = business_date
