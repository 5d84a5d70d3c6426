"""One young learner's working week across all of their placements.

Why an aggregate: the FLSA limits for 14- and 15-year-olds (29 CFR 570.35: 3 hours on a
school day, 18 in a school week, 8 on a non-school day, 40 in a non-school week) concern
the *learner*, not one employer's record. A 15-year-old with two placements who logs 3
hours in each on one school day works 6 hours. Summing the other placements at command
time would race (two placements logging at once both read the old total); so, as
``LearnerDay`` does for the 24-hour day, every command that adds, removes or replaces an
on-the-job entry the limits apply to also changes this aggregate, whose id is derived from
(learner, Monday), and both are saved in one atomic write: of two concurrent commands, the
store lets one through and refuses the other, whose retry sees the new total.

Only on-the-job minutes of a learner under 16 on the work date are claimed here: related
instruction is schooling, not employment, and older learners have no such limits.
"""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.actor import Actor

LEARNER_WEEK_NAMESPACE = UUID("8d2e4b17-3a6c-5f90-b1d4-7c8e9f0a2b31")


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


class LearnerWeek(Aggregate):
    """On-the-job minutes of a young learner's active entries in one Monday-Sunday week.

    Events: ``LearnerWeekOpened``, ``WeekMinutesClaimed``, ``WeekMinutesReleased``.
    """

    @staticmethod
    def create_id(learner_id: str, business_date: date) -> UUID:
        """From (learner, any day of the week); the library calls it with the opening
        event's arguments, the ledger with a work date."""
        return uuid5(LEARNER_WEEK_NAMESPACE,
                     f"learner-week/{learner_id}/{monday_of(business_date).isoformat()}")

    @classmethod
    def open(cls, *, actor: Actor, learner_id: str, day: date) -> LearnerWeek:
        return cls(actor_id=actor.id, actor_role=str(actor.role), learner_id=learner_id,
                   business_date=monday_of(day))

    @event("LearnerWeekOpened")
    def __init__(self, *, actor_id: str, actor_role: str, learner_id: str,
                 business_date: date) -> None:
        """The first on-the-job hours of a learner under 16 in a week were logged: from now
        on each of their entries that week, in any placement, is counted here."""
        self.learner_id = learner_id
        self.monday = business_date
        self.claims: dict[str, tuple[str, date, int]] = {}

    def minutes(self, *, on: date | None = None, other_than_placement: str) -> int:
        """Claimed minutes of the learner's *other* placements, that day or the whole week
        (the placement counts its own entries itself, those logged before weeks were kept
        included)."""
        return sum(minutes for placement_id, day, minutes in self.claims.values()
                   if placement_id != other_than_placement and (on is None or day == on))

    def claim(self, *, actor: Actor, placement_id: str, entry_id: str, work_date: date,
              minutes: int) -> None:
        """Count an entry toward the week; the placement checked the limits before."""
        self._claimed(actor_id=actor.id, actor_role=str(actor.role), business_date=work_date,
                      placement_id=placement_id, entry_id=entry_id, minutes=minutes)

    @event("WeekMinutesClaimed")
    def _claimed(self, *, actor_id: str, actor_role: str, business_date: date,
                 placement_id: str, entry_id: str, minutes: int) -> None:
        """An on-the-job entry of a young learner now counts toward their week's limits."""
        self.claims[entry_id] = (placement_id, business_date, minutes)

    def release(self, *, actor: Actor, entry_id: str, reason: str) -> None:
        """An entry was rejected or replaced; nothing happens if it was never claimed."""
        if entry_id not in self.claims:
            return
        self._released(actor_id=actor.id, actor_role=str(actor.role),
                       business_date=self.claims[entry_id][1], entry_id=entry_id,
                       reason=reason)

    @event("WeekMinutesReleased")
    def _released(self, *, actor_id: str, actor_role: str, business_date: date, entry_id: str,
                  reason: str) -> None:
        """An entry stopped counting toward the learner's week (rejected, or replaced by an
        approved correction; ``reason`` says which)."""
        del self.claims[entry_id]
