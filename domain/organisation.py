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
from domain.child_labour import ChildLabourPolicy
from domain.errors import NotPermitted, RuleViolated, WrongState

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
