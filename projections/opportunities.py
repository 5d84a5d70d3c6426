"""Opportunities as coordinators and learners browse them.

``evolve`` is the pure fold; ``OpportunityProjection`` stores its result. Keeping
the fold pure is what makes a rebuild from the first event give exactly the live
table (DESIGN.md invariant 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Integer,
    String,
    Table,
    bindparam,
    select,
)

from domain.contract.envelope import Envelope
from projections.tables import metadata

opportunity_view = Table(
    "opportunity_view",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("organisation_id", String(100), nullable=False),
    Column("title", String(500), nullable=False),
    Column("employer_name", String(500), nullable=False),
    Column("worksite", String(500), nullable=False),
    Column("wbl_type", String(50), nullable=False),
    Column("pre_apprenticeship", Boolean, nullable=False),
    Column("occupation_code", String(20)),
    Column("career_pathway", String(200)),
    Column("paid", Boolean, nullable=False),
    Column("hourly_wage", String(20)),  # Decimal as text: exact on SQLite too
    Column("capacity", Integer, nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),
    Column("minimum_age", Integer),
    Column("hazardous", Boolean, nullable=False),
    Column("status", String(20), nullable=False),
    Column("closed_reason", String(1000)),
    Column("posted_on", Date, nullable=False),
    Column("posted_by_role", String(30), nullable=False),
    Column("version", Integer, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class OpportunityView:
    id: str
    organisation_id: str
    title: str
    employer_name: str
    worksite: str
    wbl_type: str
    pre_apprenticeship: bool
    occupation_code: str | None
    career_pathway: str | None
    paid: bool
    hourly_wage: Decimal | None
    capacity: int
    starts_on: date
    ends_on: date
    minimum_age: int | None
    hazardous: bool
    status: str
    closed_reason: str | None
    posted_on: date
    posted_by_role: str
    version: int
    position: int
    recorded_at: datetime


def evolve(view: OpportunityView | None, event: Envelope) -> OpportunityView | None:
    """The pure fold: the view after ``event``, given the view before it."""
    d = event.data
    if event.event_type == "OpportunityPosted":
        wage = d.get("hourly_wage")
        return OpportunityView(
            id=event.aggregate_id,
            organisation_id=d["organisation_id"],
            title=d["title"],
            employer_name=d["employer_name"],
            worksite=d["worksite"],
            wbl_type=d["wbl_type"],
            pre_apprenticeship=bool(d.get("pre_apprenticeship", False)),
            occupation_code=d.get("occupation_code"),
            career_pathway=d.get("career_pathway"),
            paid=bool(d["paid"]),
            hourly_wage=Decimal(wage) if wage is not None else None,
            capacity=int(d["capacity"]),
            starts_on=date.fromisoformat(d["starts_on"]),
            ends_on=date.fromisoformat(d["ends_on"]),
            minimum_age=d.get("minimum_age"),
            hazardous=bool(d.get("hazardous", False)),
            status="open",
            closed_reason=None,
            posted_on=date.fromisoformat(d["business_date"]),
            posted_by_role=d["actor_role"],
            version=event.aggregate_version,
            position=event.position,
            recorded_at=event.recorded_at,
        )
    if view is None:
        return None
    if event.event_type == "OpportunityRevised":
        wage = d.get("hourly_wage")
        view = replace(
            view, title=d["title"], employer_name=d["employer_name"], worksite=d["worksite"],
            occupation_code=d.get("occupation_code"), career_pathway=d.get("career_pathway"),
            paid=bool(d["paid"]), hourly_wage=Decimal(wage) if wage is not None else None,
            capacity=int(d["capacity"]), starts_on=date.fromisoformat(d["starts_on"]),
            ends_on=date.fromisoformat(d["ends_on"]), minimum_age=d.get("minimum_age"),
            hazardous=bool(d.get("hazardous", False)))
    if event.event_type == "OpportunityClosed":
        view = replace(view, status="closed", closed_reason=d.get("reason"))
    return replace(view, version=event.aggregate_version, position=event.position)


class OpportunityProjection:
    """Stores the fold's result, one row per opportunity."""

    name = "opportunities"
    aggregate_type = "Opportunity"

    def __init__(self, table: Table = opportunity_view) -> None:
        """``table``: ``opportunity_view``, or a rebuild's fresh copy of it."""
        self.table = table

    def apply_many(self, conn: Connection, events: Sequence[Envelope]) -> None:
        """Only opportunities' events (a few in a thousand): their rows read in one query,
        folded in memory, written in one statement each for the new and the changed (one
        query and one compiled statement per event made this projection a tenth of a
        replay's time)."""
        mine = [e for e in events if e.aggregate_type == self.aggregate_type]
        if not mine:
            return
        ids = list(dict.fromkeys(e.aggregate_id for e in mine))
        before: dict[str, OpportunityView] = {}
        for start in range(0, len(ids), 500):
            rows = conn.execute(select(self.table).where(
                self.table.c.id.in_(ids[start:start + 500]))).mappings()
            before.update((r["id"], _to_view(r)) for r in rows)
        views = dict(before)
        for event in mine:
            after = evolve(views.get(event.aggregate_id), event)
            if after is not None:
                views[event.aggregate_id] = after
        inserts = [_row(v) for i, v in views.items() if i not in before]
        updates = [{f"b_{k}": value for k, value in _row(v).items()}
                   for i, v in views.items() if i in before and v is not before[i]]
        if inserts:
            conn.execute(self.table.insert(), inserts)
        if updates:
            conn.execute(
                self.table.update()
                .where(self.table.c.id == bindparam("b_id"))
                .values({c.name: bindparam(f"b_{c.name}") for c in self.table.columns
                         if c.name != "id"}),
                updates)

    def legacy_row_table(self) -> Table | None:
        """No earlier layout kept hour entries here."""
        return None

    def apply(self, conn: Connection, event: Envelope) -> None:
        self.apply_many(conn, [event])

    @staticmethod
    def get(conn: Connection, opportunity_id: str) -> OpportunityView | None:
        row = conn.execute(
            select(opportunity_view).where(opportunity_view.c.id == opportunity_id)
        ).mappings().first()
        return _to_view(row) if row is not None else None

    @staticmethod
    def list(conn: Connection, *, organisation_id: str | None = None,
             status: str | None = None, limit: int = 100, offset: int = 0
             ) -> list[OpportunityView]:
        query = select(opportunity_view).order_by(opportunity_view.c.position)
        if organisation_id is not None:
            query = query.where(opportunity_view.c.organisation_id == organisation_id)
        if status is not None:
            query = query.where(opportunity_view.c.status == status)
        rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
        return [_to_view(r) for r in rows]


def _row(view: OpportunityView) -> dict[str, Any]:
    row = asdict(view)
    row["hourly_wage"] = str(view.hourly_wage) if view.hourly_wage is not None else None
    return row


def _to_view(row: Any) -> OpportunityView:
    values = dict(row)
    if values["hourly_wage"] is not None:
        values["hourly_wage"] = Decimal(values["hourly_wage"])
    recorded_at = values["recorded_at"]
    if recorded_at.tzinfo is None:  # SQLite returns naive datetimes
        values["recorded_at"] = recorded_at.replace(tzinfo=UTC)
    return OpportunityView(**values)
