"""One learner's day: the minutes claimed on one date across all of their placements.

Why an aggregate: "at most 24 hours on one day for one learner across all of their
placements" spans Placement aggregates, and each Placement only guards its own entries.
Summing the learner's other placements at command time would race: two placements
logging for the same learner and day could each read the other's old total and both
pass. Instead every command that adds, removes or replaces an active hour entry also
changes this aggregate, whose id is derived from (learner, date) with ``uuid5``, and
saves both in one atomic ``save()``. Two concurrent commands for the same learner and
day therefore both try to write the same ``LearnerDay`` version (or both create version
1); the store's unique (id, version) constraint lets one through and the other is
refused as a ConcurrentChange, with nothing of it recorded. A retry re-reads the new
total and re-checks the limit. See docs/decisions/010-daily-limit-across-placements.md.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.actor import Actor
from domain.errors import RuleViolated
from domain.placement.hours import MINUTES_PER_DAY

LEARNER_DAY_NAMESPACE = UUID("6f1c3f2e-7d0b-5b8e-9a51-2f4d3c6b8a10")


class LearnerDay(Aggregate):
    """Minutes claimed by active hour entries of one learner on one date.

    Events: ``LearnerDayOpened``, ``DayMinutesClaimed``, ``DayMinutesReleased``.
    """

    @staticmethod
    def create_id(learner_id: str, business_date: date) -> UUID:
        return uuid5(LEARNER_DAY_NAMESPACE, f"learner-day/{learner_id}/{business_date.isoformat()}")

    @classmethod
    def open(cls, *, actor: Actor, learner_id: str, day: date) -> LearnerDay:
        return cls(actor_id=actor.id, actor_role=str(actor.role), learner_id=learner_id,
                   business_date=day)

    @event("LearnerDayOpened")
    def __init__(self, *, actor_id: str, actor_role: str, learner_id: str,
                 business_date: date) -> None:
        """The first hours of a learner on a date were logged: from now on every active entry
        of that learner on that date, in any placement, is counted here."""
        self.learner_id = learner_id
        self.day = business_date
        self.claims: dict[str, tuple[str, int]] = {}

    @property
    def claimed_minutes(self) -> int:
        return sum(minutes for _, minutes in self.claims.values())

    def claim(self, *, actor: Actor, placement_id: str, entry_id: str, minutes: int) -> None:
        """Nobody works more than the 1,440 minutes a day has, whatever the placements."""
        if self.claimed_minutes + minutes > MINUTES_PER_DAY:
            raise RuleViolated(
                f"The learner already has {self.claimed_minutes} minutes on {self.day} across "
                f"their placements; {minutes} more would pass 24 hours.",
                code="daily-limit-exceeded", field="minutes",
            )
        self._claimed(actor_id=actor.id, actor_role=str(actor.role), business_date=self.day,
                      placement_id=placement_id, entry_id=entry_id, minutes=minutes)

    @event("DayMinutesClaimed")
    def _claimed(self, *, actor_id: str, actor_role: str, business_date: date,
                 placement_id: str, entry_id: str, minutes: int) -> None:
        """An hour entry of a placement now counts toward the learner's 24 hours that day."""
        self.claims[entry_id] = (placement_id, minutes)

    def release(self, *, actor: Actor, entry_id: str, reason: str) -> None:
        """An entry was rejected or superseded; its minutes stop counting. Nothing happens
        when the entry's minutes were already released."""
        if entry_id not in self.claims:
            return
        self._released(actor_id=actor.id, actor_role=str(actor.role), business_date=self.day,
                       entry_id=entry_id, reason=reason)

    @event("DayMinutesReleased")
    def _released(self, *, actor_id: str, actor_role: str, business_date: date, entry_id: str,
                  reason: str) -> None:
        """An hour entry stopped counting toward the learner's day (it was rejected or
        superseded by a correction; ``reason`` says which)."""
        del self.claims[entry_id]
