"""The ledger application: one method per command and per query.

It is the only thing the HTTP API and the CLI call. Each command loads the
aggregates it needs, lets them check their rules, and saves the new events in
one atomic write; the store's unique (aggregate id, version) constraint is the
optimistic-concurrency check, so two writers can never both win.

Every command takes the acting ``Actor`` and plain values, accepts
``expected_version`` (the HTTP layer maps ``If-Match`` to it; for commands that
create a record only ``None`` or ``0`` is accepted) and returns a
``CommandResult``. Business dates default to today; ``today()`` is the one
clock, passed into the domain, which never reads the time itself.

Hours and the 24-hour day across placements: ``log_hours``, ``reject_hours``
and ``correct_hours`` save the Placement together with the ``LearnerDay`` of
each date they touch, in one ``save()``; see ``domain/learner_day.py`` and
docs/decisions/010-daily-limit-across-placements.md.
"""

from __future__ import annotations

import io
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    OperationalError,
    StoredEvent,
    Transcoding,
)
from eventsourcing.utils import get_topic

from domain.actor import Actor
from domain.calendar import SchoolCalendar, SchoolDays
from domain.errors import (
    ConcurrentChange,
    RuleViolated,
    StaleVersion,
    UnknownAggregate,
    WrongState,
)
from domain.learner_day import LearnerDay
from domain.learner_week import LearnerWeek
from domain.opportunity import Opportunity
from domain.organisation import Organisation, OrganisationSettings
from domain.placement import Placement
from domain.placement.minors import ChildLabourPolicy
from domain.program import ApprenticeshipProgram
from infra.command_log import (
    CommandKey,
    insert_in_one_transaction,
    recorded_command,
    stored_originators,
)
from services.ledger.birth_dates import BirthDates, BirthDatesInMemory
from services.ledger.command_keys import command
from services.ledger.results import CommandResult
from services.ledger.staging import UnitLimits, UnitOfWork


class DateAsISO(Transcoding):
    """Business dates (a day worked, a start date) are stored as ISO strings."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


log = logging.getLogger(__name__)

LOOK_AHEAD_DAYS = 366
"""How far an import's bulk look-up of a learner's days reaches (``Ledger._look_ahead``)."""

WRITE_CHUNK_EVENTS = 5000
"""Events per insert when a unit of work's spill is copied into the store (decision 067)."""


class Ledger(Application[UUID]):
    name = "WBLLedger"

    def __init__(self, env: Any = None, birth_dates: BirthDates | None = None,
                 unit_limits: UnitLimits | None = None) -> None:
        super().__init__(env)
        self._local = threading.local()
        self.birth_dates: BirthDates = birth_dates or BirthDatesInMemory()
        self.unit_limits = unit_limits or UnitLimits()

    # -- unit of work ----------------------------------------------------------------

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """Commands in this thread are staged, not saved, until ``save_unit``."""
        if getattr(self._local, "unit", None) is not None:
            raise RuntimeError("units of work do not nest")
        unit = UnitOfWork(restore=self._restore, to_stored=self.mapper.to_stored_event,
                          from_stored=self.mapper.to_domain_event, limits=self.unit_limits)
        self._local.unit = unit
        try:
            yield unit
        finally:
            self._local.unit = None
            unit.close()

    def save_unit(self, unit: UnitOfWork, record: Aggregate | None = None, *,
                  provenance: str | None = None) -> int:
        """Save every staged aggregate (and ``record``) in one transaction; return the last
        position, or 0 when there was nothing to save.

        The staged events are moved to the unit's spill and copied from there into the
        store in chunks, within that one transaction (decision 067). ``provenance`` names
        the field of ``record``'s event (left empty by the caller) that holds the unit's
        provenance: it is encoded a row at a time, never as one list of every row."""
        unit.spill_staged()
        assert unit.spill is not None
        chunks: Iterable[Sequence[StoredEvent]] = unit.spill.chunks(WRITE_CHUNK_EVENTS)
        if record is not None:
            stored = [self._stored_with_provenance(e, unit, provenance)
                      for e in record.pending_events]
            record.pending_events.clear()
            chunks = itertools.chain(chunks, [stored])
        elif unit.spill.events == 0:
            return 0
        try:
            position = insert_in_one_transaction(self.recorder, chunks)
        except IntegrityError as error:
            raise ConcurrentChange(
                "Records this batch touches changed while it was prepared; run it again."
            ) from error
        unit.staged.clear()
        return position

    def _stored_with_provenance(self, event: Any, unit: UnitOfWork, field: str | None
                                ) -> StoredEvent:
        """``event`` as the mapper stores it (``Mapper.to_stored_event``), its empty
        ``field`` filled with the unit's provenance one row at a time. Same bytes as the
        mapper would give for the whole list (tests/integration/test_import_memory_bound.py)."""
        state = dict(vars(event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        encoded = self.mapper.transcoder.encode(state)
        if field is not None:
            if state[field] != []:
                raise ValueError(f"{field!r} is filled from the unit: leave it empty")
            empty = b'"' + field.encode() + b'":[]'
            head, tail = encoded.split(empty)  # once: a string's own quotes are escaped
            body = io.BytesIO()
            body.write(head + empty[:-1])
            for n, row in enumerate(unit.provenance_json()):
                if n:
                    body.write(b",")
                body.write(row)
            body.write(b"]" + tail)
            encoded = body.getvalue()
            del body
        if self.mapper.compressor:
            encoded = self.mapper.compressor.compress(encoded)
        if self.mapper.cipher:
            encoded = self.mapper.cipher.encrypt(encoded)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version,
                           topic=get_topic(type(event)), state=encoded)

    def _get(self, aggregate_id: UUID, *, absent: bool = False) -> Any:
        """The repository's aggregate, or, inside a unit of work, this row's copy of it.
        ``absent``: the unit knows the store has no such aggregate (``_look_ahead``)."""
        unit: UnitOfWork | None = getattr(self._local, "unit", None)
        if unit is None or unit.row is None:
            return self.repository.get(aggregate_id)
        return unit.take(aggregate_id, self.repository.get, absent=absent)

    def _restore(self, aggregate_id: UUID, written: Sequence[Any], pending: Sequence[Any]
                 ) -> Aggregate:
        """An aggregate as stored plus ``written`` (a unit of work's events moved to its
        spill) and ``pending`` (those it still holds), rebuilt the way the repository
        rebuilds one from its events; only ``pending`` stay pending."""
        first = written[0] if written else pending[0] if pending else None
        stored_version = first.originator_version - 1 if first is not None else None
        aggregate: Any = (self.repository.get(aggregate_id, version=stored_version)
                          if stored_version is None or stored_version > 0 else None)
        for event in (*written, *pending):
            aggregate = event.mutate(aggregate)
        aggregate.pending_events.clear()
        aggregate.pending_events.extend(pending)
        return cast(Aggregate, aggregate)

    def exists(self, aggregate_id: UUID) -> bool:
        try:
            self._get(aggregate_id)
        except AggregateNotFoundError:
            return False
        return True

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # -- helpers -------------------------------------------------------------------

    @staticmethod
    def today() -> date:
        return datetime.now(UTC).date()

    def _save_all(self, *aggregates: Aggregate, created_id: str | None = None) -> CommandResult:
        """Save atomically; a concurrent writer's event at the same version refuses ours.

        One case looks like a conflict but is not: the connection dies just after the
        database committed, the library retries, and the retry finds our own rows. Then the
        stored events are byte-for-byte ours and the command succeeded.
        """
        unit: UnitOfWork | None = getattr(self._local, "unit", None)
        if unit is not None and unit.row is not None:
            for aggregate in aggregates:
                unit.enter(aggregate)
            first = aggregates[0]
            return CommandResult(aggregate_id=first.id, version=first.version, position=0,
                                 created_id=created_id)
        pending = [event for aggregate in aggregates for event in aggregate.pending_events]
        first = aggregates[0]
        # The answer's position is the *target's* last event (the placement's, not the
        # learner's day saved beside it): a query about the target waits for exactly that
        # (read your writes; services/api/read_your_writes.py).
        own = [e for e in pending if e.originator_id == first.id] or pending
        key: str | None = getattr(self._local, "command_key", None)
        self._local.command_key = None  # one key, one save
        extra: dict[str, Any] = {}
        if key is not None and pending:
            extra["command"] = CommandKey(
                key=key, aggregate_id=str(first.id), version=first.version,
                created_id=created_id, last_originator_id=str(own[-1].originator_id),
                last_version=own[-1].originator_version)
        try:
            recordings = self.save(*aggregates, **extra)
        except (IntegrityError, OperationalError) as error:
            # PostgreSQL's pipelined insert can report a refused row as "pipeline aborted"
            # (an OperationalError) when the refusal is read after a later statement: seen
            # in a loaded CI run, for the same keyed command run concurrently. Any other
            # OperationalError is not a conflict and goes on up as it was.
            if isinstance(error, OperationalError) and "pipeline aborted" not in str(error):
                raise
            done = recorded_command(self.recorder, key) if key is not None else None
            if done is not None:  # the same keyed command, run concurrently, won
                return CommandResult.recorded(done)
            positions = self._positions_if_already_recorded(pending)
            if positions is None:
                raise ConcurrentChange(
                    "Another change was recorded at the same time; reload and try again."
                ) from error
            position = positions[(own[-1].originator_id, own[-1].originator_version)]
        else:
            targets = [r.notification.id for r in recordings
                       if r.domain_event.originator_id == own[-1].originator_id]
            position = max(targets or [r.notification.id for r in recordings] or [0])
        return CommandResult(aggregate_id=first.id, version=first.version, position=position,
                             created_id=created_id)

    def _positions_if_already_recorded(self, events: list[Any]
                                       ) -> dict[tuple[Any, int], int] | None:
        """Positions of ``events`` by (aggregate, version) if every one is already stored
        exactly as given, else None."""
        wanted = {(e.originator_id, e.originator_version): self.mapper.to_stored_event(e)
                  for e in events}
        for (originator_id, version), mine in wanted.items():
            stored = self.recorder.select_events(originator_id, gt=version - 1, lte=version)
            if len(stored) != 1 or (stored[0].topic, stored[0].state) != (mine.topic, mine.state):
                return None
        # Rare path: find the positions among the most recent notifications.
        last = self.recorder.max_notification_id() or 0
        found: dict[tuple[Any, int], int] = {}
        for n in self.recorder.select_notifications(start=max(last - 5000, 0), limit=5001,
                                                    inclusive_of_start=False):
            key = (n.originator_id, n.originator_version)
            if key in wanted:
                found[key] = n.id
        return found if len(found) == len(wanted) else None

    @staticmethod
    def _expect_new(expected_version: int | None) -> None:
        """A command that creates a record expects no version (``If-Match`` absent) or 0."""
        if expected_version not in (None, 0):
            raise StaleVersion(
                f"You expected version {expected_version} of a record this command creates."
            )

    def _load(self, kind: type[Any], aggregate_id: UUID, expected_version: int | None) -> Any:
        try:
            aggregate: Any = self._get(aggregate_id)
        except AggregateNotFoundError:
            raise UnknownAggregate(
                f"No {kind.__name__.lower()} with id {aggregate_id} is recorded.",
                code=f"unknown-{kind.__name__.lower()}",
            ) from None
        if not isinstance(aggregate, kind):
            raise UnknownAggregate(
                f"No {kind.__name__.lower()} with id {aggregate_id} is recorded.",
                code=f"unknown-{kind.__name__.lower()}",
            )
        if expected_version is not None and aggregate.version != expected_version:
            raise StaleVersion(
                f"You expected version {expected_version}, but the record is at version "
                f"{aggregate.version}; reload it and decide again."
            )
        return aggregate

    # -- opportunities -------------------------------------------------------------

    @command
    def post_opportunity(
        self, actor: Actor, *, expected_version: int | None = None, **details: Any
    ) -> CommandResult:
        self._expect_new(expected_version)
        details.setdefault("posted_on", self.today())
        opportunity = Opportunity.post(actor=actor, **details)
        return self._save_all(opportunity)

    @command
    def revise_opportunity(
        self,
        actor: Actor,
        opportunity_id: UUID,
        *,
        expected_version: int | None = None,
        **terms: Any,
    ) -> CommandResult:
        """Record ``OpportunityRevised``: the offer's terms for the matches still to come."""
        opportunity: Opportunity = self._load(Opportunity, opportunity_id, expected_version)
        opportunity.revise(actor=actor, revised_on=self.today(), **terms)
        return self._save_all(opportunity)

    @command
    def close_opportunity(
        self,
        actor: Actor,
        opportunity_id: UUID,
        *,
        reason: str,
        expected_version: int | None = None,
    ) -> CommandResult:
        opportunity: Opportunity = self._load(Opportunity, opportunity_id, expected_version)
        opportunity.close(actor=actor, reason=reason, closed_on=self.today())
        return self._save_all(opportunity)

    def get_opportunity(self, opportunity_id: UUID) -> Opportunity:
        opportunity: Opportunity = self._load(Opportunity, opportunity_id, None)
        return opportunity

    # -- apprenticeship programs ---------------------------------------------------

    @command
    def define_program(
        self, actor: Actor, *, expected_version: int | None = None, **details: Any
    ) -> CommandResult:
        """Details are the keyword arguments of ``ApprenticeshipProgram.define``."""
        self._expect_new(expected_version)
        details.setdefault("defined_on", self.today())
        program = ApprenticeshipProgram.define(actor=actor, **details)
        return self._save_all(program)

    def get_program(self, program_id: UUID) -> ApprenticeshipProgram:
        program: ApprenticeshipProgram = self._load(ApprenticeshipProgram, program_id, None)
        return program

    # -- organisation settings -----------------------------------------------------

    @command
    def set_child_labour_policy(
        self,
        actor: Actor,
        organisation_id: str,
        *,
        policy: ChildLabourPolicy | str,
        reason: str,
        expected_version: int | None = None,
    ) -> CommandResult:
        settings_id = OrganisationSettings.create_id(organisation_id)
        try:
            settings: OrganisationSettings = self._load(
                OrganisationSettings, settings_id, expected_version
            )
        except UnknownAggregate:
            self._expect_new(expected_version)
            settings = OrganisationSettings.choose(
                actor=actor, organisation_id=organisation_id, policy=policy, reason=reason,
                chosen_on=self.today(),
            )
        else:
            settings.change(actor=actor, policy=policy, reason=reason, changed_on=self.today())
        return self._save_all(settings)

    def child_labour_policy(self, organisation_id: str) -> ChildLabourPolicy:
        """The organisation's choice; refusing is the default, the lawful side."""
        try:
            settings: object = self._get(OrganisationSettings.create_id(organisation_id))
        except AggregateNotFoundError:
            return ChildLabourPolicy.REFUSE
        assert isinstance(settings, OrganisationSettings)
        return settings.child_labour_policy

    # -- organisations and their hierarchy (decision 047) ----------------------------

    def _organisation(self, organisation_id: str) -> Organisation | None:
        try:
            found: object = self._get(Organisation.create_id(organisation_id))
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, Organisation) else None

    def _check_parent(self, organisation_id: str, parent_id: str | None) -> None:
        """A parent must be registered and open, and must not sit below the organisation
        (a cycle would make a report's roll-up endless)."""
        if parent_id is None:
            return
        seen = {organisation_id}
        current: str | None = parent_id
        while current is not None:
            if current in seen:
                raise RuleViolated(
                    f"{parent_id} belongs (directly or not) to {organisation_id}; the move "
                    "would make a cycle.", code="parent-cycle", field="parent_id")
            seen.add(current)
            found = self._organisation(current)
            if found is None:
                raise RuleViolated(f"No organisation {current} is registered.",
                                   code="unknown-parent", field="parent_id")
            if current == parent_id and found.closed_on is not None:
                raise RuleViolated(f"Organisation {parent_id} is closed.",
                                   code="parent-closed", field="parent_id")
            current = found.parent_id

    @command
    def register_organisation(
        self, actor: Actor, *, organisation_id: str, name: str, kind: str,
        parent_id: str | None = None, registered_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        self._expect_new(expected_version)
        if self._organisation(organisation_id) is not None:
            raise WrongState(f"Organisation {organisation_id} is already registered.",
                             code="organisation-exists", field="id")
        organisation = Organisation.register(
            actor=actor, organisation_id=organisation_id, name=name, kind=kind,
            parent_id=parent_id, registered_on=registered_on or self.today())
        self._check_parent(organisation_id, parent_id)
        return self._save_all(organisation, created_id=organisation_id)

    def _registered(self, organisation_id: str, expected_version: int | None) -> Organisation:
        try:
            organisation: Organisation = self._load(
                Organisation, Organisation.create_id(organisation_id), expected_version)
        except UnknownAggregate:
            raise UnknownAggregate(f"No organisation {organisation_id} is registered.",
                                   code="unknown-organisation",
                                   field="organisation_id") from None
        return organisation

    @command
    def rename_organisation(
        self, actor: Actor, organisation_id: str, *, name: str,
        expected_version: int | None = None,
    ) -> CommandResult:
        organisation = self._registered(organisation_id, expected_version)
        organisation.rename(actor=actor, name=name, renamed_on=self.today())
        return self._save_all(organisation)

    @command
    def move_organisation(
        self, actor: Actor, organisation_id: str, *, parent_id: str | None, reason: str,
        moved_on: date | None = None, expected_version: int | None = None,
    ) -> CommandResult:
        organisation = self._registered(organisation_id, expected_version)
        organisation.move(actor=actor, parent_id=parent_id, reason=reason,
                          moved_on=moved_on or self.today())
        self._check_parent(organisation_id, parent_id)
        return self._save_all(organisation)

    @command
    def close_organisation(
        self, actor: Actor, organisation_id: str, *, reason: str,
        closed_on: date | None = None, expected_version: int | None = None,
    ) -> CommandResult:
        organisation = self._registered(organisation_id, expected_version)
        organisation.close(actor=actor, reason=reason, closed_on=closed_on or self.today())
        return self._save_all(organisation)

    def get_organisation(self, organisation_id: str) -> Organisation:
        return self._registered(organisation_id, None)

    # -- placements: match, agreement, start ---------------------------------------

    @command
    def match_learner(
        self,
        actor: Actor,
        opportunity_id: UUID,
        *,
        learner_id: str,
        supervisor_id: str,
        learner_born_on: date,
        program_id: UUID | None = None,
        matched_on: date | None = None,
        expected_version: int | None = None,
        placement_id: UUID | None = None,
    ) -> CommandResult:
        """Create a placement. The birth date is used for the age rules and kept in the
        vault (``birth_dates``), never in an event; it is kept before the event is saved,
        so a matched minor's hours can always be checked against the child-labour rules.
        ``placement_id`` is for imports, whose ids must be the same on every run."""
        self._expect_new(expected_version)
        opportunity: Opportunity = self._load(Opportunity, opportunity_id, None)
        program = None
        if program_id is not None:
            program = self._load(ApprenticeshipProgram, program_id, None)
        placement = Placement.match(
            actor=actor, opportunity=opportunity, program=program, learner_id=learner_id,
            supervisor_id=supervisor_id, learner_born_on=learner_born_on,
            matched_on=matched_on or self.today(), id=placement_id,
        )
        if placement.minor:  # an adult's birth date serves no later rule: not kept
            self.birth_dates.record_birth_date(learner_id, learner_born_on)
        return self._save_all(placement)

    @command
    def sign_agreement(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        party: str,
        signed_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        placement.sign_agreement(actor=actor, party=party, signed_on=signed_on or today,
                                 today=today)
        return self._save_all(placement)

    @command
    def start_placement(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        started_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        placement.start(actor=actor, started_on=started_on or today, today=today)
        return self._save_all(placement)

    # -- hours ---------------------------------------------------------------------

    @command
    def log_hours(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        work_date: date,
        minutes: int,
        kind: str = "on_the_job",
        start_time: str | None = None,
        end_time: str | None = None,
        allocations: dict[str, int] | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Log an entry; ``created_id`` of the result is the new entry's id.

        The placement checks its own rules; the learner's ``LearnerDay`` checks the
        24-hour day across placements; both are saved in one atomic write.
        """
        placement = self._placement(placement_id, expected_version)
        born = self._minor_birth_date(placement)
        school = self.school_days(placement.organisation_id, work_date)
        week = self._learner_week(actor, placement, work_date, kind, born)
        entry_id = placement.log_hours(
            actor=actor, work_date=work_date, minutes=minutes, kind=kind,
            start_time=start_time, end_time=end_time, allocations=allocations,
            school_day=school.school_day, school_week=school.school_week,
            calendar_missing=school.calendar_missing, today=self.today(),
            policy=self.child_labour_policy(placement.organisation_id),
            learner_born_on=born, learner_week=week,
        )
        day = self._learner_day(actor, placement.learner_id, work_date)
        day.claim(actor=actor, placement_id=str(placement.id), entry_id=entry_id,
                  minutes=minutes)
        weeks = []
        if week is not None:
            week.claim(actor=actor, placement_id=str(placement.id), entry_id=entry_id,
                       work_date=work_date, minutes=minutes)
            weeks.append(week)
        return self._save_all(placement, day, *weeks, created_id=entry_id)

    @command
    def approve_hours(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        entry_id: str,
        approved_on: date | None = None,
        expected_version: int | None = None,
        link_id: str | None = None,
    ) -> CommandResult:
        """``link_id``: the approval link followed (``services/web/routes/approval_links.py``),
        recorded in the event."""
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        replaces = placement.entry_replaced_on_approval(entry_id)
        placement.approve_hours(actor=actor, entry_id=entry_id,
                                approved_on=approved_on or today, today=today,
                                link_id=link_id)
        if replaces is None:
            return self._save_all(placement)
        # An approved correction takes the place of the approved entry it corrects: that
        # entry's minutes leave the learner's day and week now, not when it was corrected.
        released = self._release(actor, placement, replaces, "superseded")
        return self._save_all(placement, *released)

    @command
    def reject_hours(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        entry_id: str,
        reason: str,
        rejected_on: date | None = None,
        expected_version: int | None = None,
        link_id: str | None = None,
    ) -> CommandResult:
        """A rejected entry's minutes stop counting toward the learner's day; ``link_id`` as
        for ``approve_hours``."""
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        placement.reject_hours(actor=actor, entry_id=entry_id, reason=reason,
                               rejected_on=rejected_on or today, today=today, link_id=link_id)
        return self._save_all(placement, *self._release(actor, placement, entry_id,
                                                         "rejected"))

    @command
    def correct_hours(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        entry_id: str,
        reason: str,
        work_date: date,
        minutes: int,
        kind: str = "on_the_job",
        start_time: str | None = None,
        end_time: str | None = None,
        allocations: dict[str, int] | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Replace an entry by a new one; ``created_id`` is the new entry's id.

        The new entry's minutes join their day (and, for a young learner, their week) in
        the same write as the correction. The old entry's minutes leave theirs now, unless
        it is approved: an approved entry counts until the correction is approved.
        """
        placement = self._placement(placement_id, expected_version)
        old = placement.entry(entry_id)
        born = self._minor_birth_date(placement)
        school = self.school_days(placement.organisation_id, work_date)
        week = self._learner_week(actor, placement, work_date, kind, born)
        new_id = placement.correct_hours(
            actor=actor, entry_id=entry_id, reason=reason, work_date=work_date,
            minutes=minutes, kind=kind, start_time=start_time, end_time=end_time,
            allocations=allocations, school_day=school.school_day,
            school_week=school.school_week, calendar_missing=school.calendar_missing,
            today=self.today(), policy=self.child_labour_policy(placement.organisation_id),
            learner_born_on=born, learner_week=week,
        )
        stands = placement.entries[new_id].pending_over == old.entry_id
        changed: dict[UUID, Aggregate] = {}
        if not stands:
            for aggregate in self._release(actor, placement, entry_id, "superseded"):
                changed[aggregate.id] = aggregate
        day = changed.get(LearnerDay.create_id(placement.learner_id, work_date)) or (
            self._learner_day(actor, placement.learner_id, work_date))
        assert isinstance(day, LearnerDay)
        day.claim(actor=actor, placement_id=str(placement.id), entry_id=new_id,
                  minutes=minutes)
        changed[day.id] = day
        if week is not None:
            week = cast(LearnerWeek, changed.get(week.id, week))
            week.claim(actor=actor, placement_id=str(placement.id), entry_id=new_id,
                       work_date=work_date, minutes=minutes)
            changed[week.id] = week
        return self._save_all(placement, *changed.values(), created_id=new_id)

    def _release(self, actor: Actor, placement: Placement, entry_id: str, reason: str
                 ) -> list[Aggregate]:
        """The learner's day (and week, if one counted it) with the entry's minutes
        released: the aggregates to save with the command."""
        entry = placement.entry(entry_id)
        released: list[Aggregate] = []
        day = self._learner_day(actor, placement.learner_id, entry.work_date)
        if entry_id in day.claims:
            day.release(actor=actor, entry_id=entry_id, reason=reason)
            released.append(day)
        try:
            week: object = self._get(LearnerWeek.create_id(placement.learner_id,
                                                           entry.work_date))
        except AggregateNotFoundError:
            return released
        assert isinstance(week, LearnerWeek)
        if entry_id in week.claims:
            week.release(actor=actor, entry_id=entry_id, reason=reason)
            released.append(week)
        return released

    @command
    def name_proxy_approver(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        proxy_id: str,
        reason: str,
        named_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """A coordinator names someone to approve or reject the placement's hours besides
        the supervisor (``ProxyApproverNamed``)."""
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        placement.name_proxy_approver(actor=actor, proxy_id=proxy_id, reason=reason,
                                      named_on=named_on or today, today=today)
        return self._save_all(placement)

    @command
    def record_work_experience_agreement(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        signed_on: date,
        reason: str,
        expected_version: int | None = None,
    ) -> CommandResult:
        """A WECEP training agreement (29 CFR 570.36) on the placement: 23 h school weeks."""
        placement = self._placement(placement_id, expected_version)
        placement.record_work_experience_agreement(actor=actor, signed_on=signed_on,
                                                   reason=reason, today=self.today())
        return self._save_all(placement)

    # -- school calendars ------------------------------------------------------------

    def _calendar(self, actor: Actor, organisation_id: str,
                  expected_version: int | None) -> SchoolCalendar:
        try:
            calendar: SchoolCalendar = self._load(
                SchoolCalendar, SchoolCalendar.create_id(organisation_id), expected_version)
        except UnknownAggregate:
            self._expect_new(expected_version)
            calendar = SchoolCalendar.open(actor=actor, organisation_id=organisation_id,
                                           opened_on=self.today())
        return calendar

    @command
    def record_school_year(
        self,
        actor: Actor,
        organisation_id: str,
        *,
        school_year: str,
        first_day: date,
        last_day: date,
        breaks: list[dict[str, Any]],
        expected_version: int | None = None,
    ) -> CommandResult:
        calendar = self._calendar(actor, organisation_id, expected_version)
        calendar.record_year(actor=actor, school_year=school_year, first_day=first_day,
                             last_day=last_day, breaks=breaks, recorded_on=self.today())
        return self._save_all(calendar)

    @command
    def record_school_day_exception(
        self,
        actor: Actor,
        organisation_id: str,
        *,
        day: date,
        school_day: bool,
        reason: str,
        expected_version: int | None = None,
    ) -> CommandResult:
        calendar = self._calendar(actor, organisation_id, expected_version)
        calendar.record_exception(actor=actor, day=day, school_day=school_day, reason=reason,
                                  recorded_on=self.today())
        return self._save_all(calendar)

    def get_calendar(self, organisation_id: str) -> SchoolCalendar | None:
        try:
            calendar: object = self._get(SchoolCalendar.create_id(organisation_id))
        except AggregateNotFoundError:
            return None
        assert isinstance(calendar, SchoolCalendar)
        return calendar

    def school_days(self, organisation_id: str, day: date) -> SchoolDays:
        """The placement's school's calendar decides; without one, the safer reading."""
        calendar = self.get_calendar(organisation_id)
        return SchoolDays.unknown() if calendar is None else calendar.days(day)

    # -- evaluation, competencies, credentials -------------------------------------

    @command
    def evaluate_placement(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        scores: dict[str, int],
        evaluator_role: str,
        stage: str = "final",
        comments: str = "",
        evaluated_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        evaluation_id = placement.evaluate(
            actor=actor, scores=scores, evaluator_role=evaluator_role, stage=stage,
            comments=comments, evaluated_on=evaluated_on or today, today=today,
        )
        return self._save_all(placement, created_id=evaluation_id)

    @command
    def sign_off_competency(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        competency: str,
        signed_off_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        placement.sign_off_competency(actor=actor, competency=competency,
                                      signed_off_on=signed_off_on or today, today=today)
        return self._save_all(placement)

    @command
    def issue_credential(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        kind: str,
        issuer: str,
        issued_on: date | None = None,
        expires_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        credential_id = placement.issue_credential(
            actor=actor, kind=kind, issuer=issuer, issued_on=issued_on or today,
            expires_on=expires_on, today=today,
        )
        return self._save_all(placement, created_id=credential_id)

    @command
    def revoke_credential(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        credential_id: str,
        reason: str,
        revoked_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        placement.revoke_credential(actor=actor, credential_id=credential_id, reason=reason,
                                    revoked_on=revoked_on or today, today=today)
        return self._save_all(placement)

    @command
    def reissue_credential(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        credential_id: str,
        reason: str,
        reissued_on: date | None = None,
        expires_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        new_id = placement.reissue_credential(
            actor=actor, credential_id=credential_id, reason=reason,
            reissued_on=reissued_on or today, today=today, expires_on=expires_on)
        return self._save_all(placement, created_id=new_id)

    # -- status changes ------------------------------------------------------------

    @command
    def suspend_placement(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        reason: str,
        suspended_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        placement.suspend(actor=actor, reason=reason, suspended_on=suspended_on or today,
                          today=today)
        return self._save_all(placement)

    @command
    def reinstate_placement(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        reason: str,
        reinstated_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        placement.reinstate(actor=actor, reason=reason, reinstated_on=reinstated_on or today,
                            today=today)
        return self._save_all(placement)

    @command
    def withdraw_placement(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        reason: str,
        during_probation: bool = False,
        withdrawn_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        placement.withdraw(actor=actor, reason=reason, during_probation=during_probation,
                           withdrawn_on=withdrawn_on or today, today=today)
        return self._save_all(placement)

    @command
    def complete_placement(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        completed_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        placement = self._placement(placement_id, expected_version)
        today = self.today()
        placement.complete(actor=actor, completed_on=completed_on or today, today=today)
        return self._save_all(placement)

    # -- prior learning --------------------------------------------------------------

    @command
    def grant_prior_learning_credit(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        minutes: int,
        basis: str,
        work_process: str | None = None,
        granted_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Credit for prior experience or training. Pre-apprenticeship hours go through
        ``credit_pre_apprenticeship_hours``, which reads them from the source placement."""
        placement = self._placement(placement_id, expected_version)
        if basis == "pre_apprenticeship":
            raise RuleViolated(
                "Credit a pre-apprenticeship by naming its placement "
                "(credit_pre_apprenticeship_hours).", code="source-required", field="basis",
            )
        today = self.today()
        placement.grant_prior_learning_credit(
            actor=actor, minutes=minutes, basis=basis, work_process=work_process,
            granted_on=granted_on or today, today=today,
        )
        return self._save_all(placement)

    @command
    def credit_pre_apprenticeship_hours(
        self,
        actor: Actor,
        placement_id: UUID,
        *,
        source_placement_id: UUID,
        granted_on: date | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        placement = self._placement(placement_id, expected_version)
        source = self._placement(source_placement_id, None)
        today = self.today()
        placement.credit_pre_apprenticeship(actor=actor, source=source,
                                            granted_on=granted_on or today, today=today)
        return self._save_all(placement)

    # -- queries ---------------------------------------------------------------------

    def get_placement(self, placement_id: UUID) -> Placement:
        return self._placement(placement_id, None)

    def read_placement(self, placement_id: UUID) -> Placement:
        """The placement as the aggregate cache holds it, brought up to date, *not a copy*:
        for checks that only read it, such as the API's authorisation before a command.
        A copy of a placement with hundreds of entries was half of an hours command's
        time, and the command takes its own copy anyway (docs/api.md). Never change it."""
        try:
            placement: object = self.repository.get(placement_id, deepcopy_from_cache=False)
        except AggregateNotFoundError:
            placement = None
        if not isinstance(placement, Placement):
            raise UnknownAggregate(f"No placement with id {placement_id} is recorded.",
                                   code="unknown-placement")
        return placement

    def learner_minutes_on(self, learner_id: str, day: date) -> int:
        """Minutes of active entries of the learner on that date, across placements."""
        try:
            learner_day: object = self._get(LearnerDay.create_id(learner_id, day))
        except AggregateNotFoundError:
            return 0
        assert isinstance(learner_day, LearnerDay)
        return learner_day.claimed_minutes

    # -- helpers for placements --------------------------------------------------------

    def _placement(self, placement_id: UUID, expected_version: int | None) -> Placement:
        placement: Placement = self._load(Placement, placement_id, expected_version)
        return placement

    def _minor_birth_date(self, placement: Placement) -> date | None:
        """A minor's birth date, for the child-labour rules; never looked up for adults."""
        return self.birth_dates.birth_date(placement.learner_id) if placement.minor else None

    def _learner_week(self, actor: Actor, placement: Placement, work_date: date, kind: str,
                      born: date | None) -> LearnerWeek | None:
        """The young learner's week, for entries the FLSA 14-15 limits bind; else None."""
        if not placement.child_labour_applies(work_date, kind, born):
            return None
        week_id = LearnerWeek.create_id(placement.learner_id, work_date)
        absent = self._look_ahead(("week", placement.learner_id), week_id,
                                  lambda d: LearnerWeek.create_id(placement.learner_id, d),
                                  work_date)
        try:
            week: object = self._get(week_id, absent=absent)
        except AggregateNotFoundError:
            return LearnerWeek.open(actor=actor, learner_id=placement.learner_id,
                                    day=work_date)
        assert isinstance(week, LearnerWeek)
        return week

    def _look_ahead(self, series: tuple[str, str], wanted: UUID,
                    id_on: Callable[[date], UUID], day: date) -> bool:
        """Inside a unit of work (an import), ask the store once which of a learner's days
        (or weeks) of the year from ``day`` exist, instead of once per row: most rows of a
        timesheet open a day nobody has opened yet, and each of those look-ups was a query
        (decision 062). True when ``wanted`` is known not to be in the store (it may still
        be staged by an earlier row of the unit). The unit keeps one window a learner, not
        an id a day (decision 067)."""
        unit: UnitOfWork | None = getattr(self._local, "unit", None)
        if unit is None:
            return False
        known = unit.known_absent(series, day.toordinal(), wanted)
        if known is not None:
            return known
        asked = list(dict.fromkeys(
            id_on(day + timedelta(days=n)) for n in range(LOOK_AHEAD_DAYS)))
        stored = stored_originators(self.recorder, asked)
        unit.note_window(series, day.toordinal(), day.toordinal() + LOOK_AHEAD_DAYS - 1,
                         stored)
        return wanted not in stored

    def _learner_day(self, actor: Actor, learner_id: str, day: date) -> LearnerDay:
        """The learner's day, opened if this is their first entry on that date. Two writers
        opening the same day both write version 1 of the same id: one is refused."""
        day_id = LearnerDay.create_id(learner_id, day)
        absent = self._look_ahead(("day", learner_id), day_id,
                                  lambda d: LearnerDay.create_id(learner_id, d), day)
        try:
            learner_day: object = self._get(day_id, absent=absent)
        except AggregateNotFoundError:
            return LearnerDay.open(actor=actor, learner_id=learner_id, day=day)
        assert isinstance(learner_day, LearnerDay)
        return learner_day
