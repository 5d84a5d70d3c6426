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

    def apply_many(self, conn: Connection, events: Sequence[Envelope]) -> None:
        """Only opportunities' events, one by one: they are a few in a thousand."""
        for event in events:
            if event.aggregate_type == self.aggregate_type:
                self.apply(conn, event)

    def legacy_row_table(self) -> Table | None:
        """No earlier layout kept hour entries here."""
        return None

    def apply(self, conn: Connection, event: Envelope) -> None:
        if event.aggregate_type != self.aggregate_type:
            return
        before = self.get(conn, event.aggregate_id)
        after = evolve(before, event)
        if after is None:
            return
        row = asdict(after)
        row["hourly_wage"] = str(after.hourly_wage) if after.hourly_wage is not None else None
        if before is None:
            conn.execute(opportunity_view.insert().values(**row))
        else:
            conn.execute(
                opportunity_view.update().where(opportunity_view.c.id == after.id).values(**row)
            )

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


def _to_view(row: Any) -> OpportunityView:
    values = dict(row)
    if values["hourly_wage"] is not None:
        values["hourly_wage"] = Decimal(values["hourly_wage"])
    recorded_at = values["recorded_at"]
    if recorded_at.tzinfo is None:  # SQLite returns naive datetimes
        values["recorded_at"] = recorded_at.replace(tzinfo=UTC)
    return OpportunityView(**values)
