"""Every projection, registered once: how to make it, its live tables, how to make a fresh
copy writing into suffixed tables (rebuilds, decision 021), and which event types it folds
and which it explicitly ignores.

The live projector (``services/workers/projector.py``), rebuilds and checks
(``services/workers/rebuild.py``) and replays (``services/jobs/replay.py``) all read this one
table. ``tests/unit/test_registry.py`` fails when a catalogue event type is neither handled
nor explicitly ignored by a projection, or when a fold names an event type the catalogue
does not have: a new event type is a decision for every read model, never a silent skip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, MetaData, Table

from domain.contract.envelope import Envelope
from projections import apprenticeship_hours as hours_module
from projections import audit_trail as audit_module
from projections import opportunities as opportunities_module
from projections import transcript as transcript_module
from projections.apprenticeship_hours import ApprenticeshipHoursProjection
from projections.audit_trail import AuditTrailProjection
from projections.hour_entries import HOUR_EVENTS
from projections.opportunities import OpportunityProjection
from projections.transcript import TranscriptProjection


class Projection(Protocol):
    """What the projector, rebuilds and replays call; every projection has all of it."""

    name: str

    def apply(self, conn: Connection, event: Envelope) -> None:
        """Fold one event into the read model, in the caller's transaction."""

    def apply_many(self, conn: Connection, events: Sequence[Envelope]) -> None:
        """Fold a poll's events in order, in the caller's transaction (cheaper per event)."""

    def legacy_row_table(self) -> Table | None:
        """The row table an earlier layout kept hour entries in (decision 025), if this
        projection had one; the projector rebuilds such a table instead of migrating it."""


@dataclass(frozen=True)
class ProjectionKind:
    """One registered projection."""

    name: str
    live: Callable[[], Projection]
    live_tables: Callable[[], list[Table]]
    fresh: Callable[[MetaData, str], tuple[Projection, list[Table]]]
    handles: frozenset[str]
    """Event types its fold changes the read model for."""
    ignores: frozenset[str]
    """Event types it deliberately leaves alone (listed, so a new type is a decision)."""


def _fresh_opportunities(md: MetaData, suffix: str) -> tuple[Projection, list[Table]]:
    live = opportunities_module.opportunity_view
    table = live.to_metadata(md, name=f"{live.name}{suffix}")
    for index in list(table.indexes):  # keep index names unique across generations
        index.name = f"{index.name}{suffix}"  # type: ignore[assignment]
    return OpportunityProjection(table), [table]


def _fresh_transcripts(md: MetaData, suffix: str) -> tuple[Projection, list[Table]]:
    tables = transcript_module.make_tables(md, suffix)
    return TranscriptProjection(tables), tables.all


def _fresh_hours(md: MetaData, suffix: str) -> tuple[Projection, list[Table]]:
    tables = hours_module.make_tables(md, suffix)
    return ApprenticeshipHoursProjection(tables), tables.all


def _fresh_audit(md: MetaData, suffix: str) -> tuple[Projection, list[Table]]:
    tables = audit_module.make_tables(md, suffix)
    return AuditTrailProjection(tables), tables.all


# Event types nobody's transcript, hours or opportunity list shows: the learner's day and
# week (limits' bookkeeping), policies, calendars, the organisation registry, agreements,
# imports' provenance, proxy approvers (who may approve is read from the placement itself,
# decision 055). The audit trail records every one of them.
_BOOKKEEPING = frozenset({
    "AgreementSigned", "ChildLabourPolicyChanged", "ChildLabourPolicyChosen",
    "DayMinutesClaimed", "DayMinutesReleased", "FileImported", "LearnerDayOpened",
    "LearnerWeekOpened", "OrganisationClosed", "OrganisationMoved", "OrganisationRegistered",
    "OrganisationRenamed", "SchoolCalendarOpened", "SchoolDayExceptionRecorded",
    "SchoolYearRecorded", "WeekMinutesClaimed", "WeekMinutesReleased",
    "WorkExperienceAgreementRecorded", "ProxyApproverNamed",
})
_PLACEMENT_STATUS = frozenset({
    "LearnerMatched", "PlacementStarted", "PlacementSuspended", "PlacementReinstated",
    "PlacementCompleted", "PlacementWithdrawn", "CompetencySignedOff",
})
_CREDENTIALS = frozenset({"CredentialIssued", "CredentialReissued", "CredentialRevoked"})

REGISTRY: dict[str, ProjectionKind] = {kind.name: kind for kind in (
    ProjectionKind(
        "opportunities", OpportunityProjection,
        lambda: [opportunities_module.opportunity_view], _fresh_opportunities,
        handles=frozenset({"OpportunityPosted", "OpportunityRevised", "OpportunityClosed"}),
        ignores=_BOOKKEEPING | _PLACEMENT_STATUS | _CREDENTIALS | HOUR_EVENTS | {
            "ApprenticeshipProgramDefined", "PlacementEvaluated",
            "PriorLearningCreditGranted"}),
    ProjectionKind(
        transcript_module.NAME, TranscriptProjection,
        lambda: transcript_module.LIVE_TABLES.all, _fresh_transcripts,
        handles=_PLACEMENT_STATUS | _CREDENTIALS | HOUR_EVENTS | {
            "OpportunityPosted", "OpportunityRevised", "PlacementEvaluated"},
        # Opportunity and program facts are joined at query time (decision 022); prior
        # learning credit belongs to the apprenticeship hours, not the transcript line.
        ignores=_BOOKKEEPING | {"OpportunityClosed", "ApprenticeshipProgramDefined",
                                "PriorLearningCreditGranted"}),
    ProjectionKind(
        hours_module.NAME, ApprenticeshipHoursProjection,
        lambda: hours_module.LIVE_TABLES.all, _fresh_hours,
        handles=_PLACEMENT_STATUS | HOUR_EVENTS | {
            "ApprenticeshipProgramDefined", "PriorLearningCreditGranted"},
        ignores=_BOOKKEEPING | _CREDENTIALS | {
            "OpportunityPosted", "OpportunityRevised", "OpportunityClosed",
            "PlacementEvaluated"}),
    ProjectionKind(
        audit_module.NAME, AuditTrailProjection,
        lambda: audit_module.LIVE_TABLES.all, _fresh_audit,
        handles=audit_module.SUMMARISED, ignores=frozenset()),
)}


def default_projections() -> list[Projection]:
    """A live instance of every registered projection, in registration order."""
    return [kind.live() for kind in REGISTRY.values()]
