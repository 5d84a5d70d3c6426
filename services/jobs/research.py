"""Research exports: per-placement and per-learner facts, pseudonymised.

Researchers study outcomes over years (FERPA's studies exception), so they need the same
learner under the same name in every export, and never the learner's identity. Every id of
a person (learner, supervisor) and every placement id is replaced by a keyed hash
(HMAC-SHA256) under a key the ledger keeps and the researcher never sees: the same key gives
the same pseudonym across exports, another key unlinkable ones. Birth dates are coarsened to
the year; names and student numbers are dropped (events hold no birth date nor any date
derived from one: decision 038).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from domain.contract.envelope import Envelope
from infra.key_files import kept_key
from infra.personal_data import PersonalDataVault
from projections.hour_entries import (
    APPROVED,
    LOGGED,
    ON_THE_JOB,
    REJECTED,
    Entry,
    evolve_entries,
)


def load_or_create_key(explicit: str | None, key_file: Path) -> bytes:
    if explicit:
        return base64.b64decode(explicit)
    return base64.b64decode(kept_key(key_file, base64.b64encode(os.urandom(32))))


class Pseudonymiser:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, kind: str, value: str | None) -> str | None:
        if value is None:
            return None
        digest = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind[0]}_{digest[:24]}"


@dataclass
class PlacementRow:
    placement_id: str
    learner_id: str
    supervisor_id: str
    organisation_id: str
    wbl_type: str
    pre_apprenticeship: bool
    program_id: str | None
    matched_on: date
    started_on: date | None = None
    completed_on: date | None = None
    withdrawn_on: date | None = None
    withdrawn_during_probation: bool | None = None
    entries: dict[str, Entry] = field(default_factory=dict)
    corrections: int = 0
    scores: list[int] = field(default_factory=list)
    evaluations: int = 0
    credentials: list[str] = field(default_factory=list)
    credited_minutes: int = 0


def fold(events: Iterable[Envelope]) -> dict[str, PlacementRow]:
    rows: dict[str, PlacementRow] = {}
    for event in events:
        if event.aggregate_type != "Placement":
            continue
        d = event.data
        when = date.fromisoformat(str(d["business_date"]))
        if event.event_type == "LearnerMatched":
            rows[event.aggregate_id] = PlacementRow(
                placement_id=event.aggregate_id, learner_id=str(d["learner_id"]),
                supervisor_id=str(d["supervisor_id"]), organisation_id=str(d["organisation_id"]),
                wbl_type=str(d["wbl_type"]), pre_apprenticeship=bool(d["pre_apprenticeship"]),
                program_id=d.get("program_id"), matched_on=when)
            continue
        row = rows.get(event.aggregate_id)
        if row is None:
            continue
        kind = event.event_type
        if kind == "PlacementStarted":
            row.started_on = when
        elif kind == "PlacementCompleted":
            row.completed_on = when
        elif kind == "PlacementWithdrawn":
            row.withdrawn_on, row.withdrawn_during_probation = when, bool(d["during_probation"])
        elif kind == "PlacementEvaluated":
            row.evaluations += 1
            row.scores.extend(int(v) for v in d["scores"].values())
        elif kind == "CredentialIssued":
            row.credentials.append(str(d["kind"]))
        elif kind == "PriorLearningCreditGranted":
            row.credited_minutes += int(d["minutes"])
        else:
            if kind == "HoursCorrected":
                row.corrections += 1
            after = evolve_entries(row.entries, event)
            if after is not None:
                row.entries = after
    return rows


def _minutes(entries: dict[str, Entry], status: str, kind: str | None = None) -> int:
    return sum(e.minutes for e in entries.values()
               if e.status == status and (kind is None or e.kind == kind))


def research_tables(events: Iterable[Envelope], vault: PersonalDataVault, key: bytes,
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(placements, learners) rows, every person and placement id pseudonymised."""
    alias = Pseudonymiser(key)
    rows = fold(events)
    placements = []
    per_learner: dict[str, list[PlacementRow]] = defaultdict(list)
    for row in sorted(rows.values(), key=lambda r: (r.matched_on, r.placement_id)):
        per_learner[row.learner_id].append(row)
        status = ("completed" if row.completed_on else "withdrawn" if row.withdrawn_on
                  else "active" if row.started_on else "matched")
        mean = (str((Decimal(sum(row.scores)) / len(row.scores)).quantize(Decimal("0.01")))
                if row.scores else None)
        placements.append({
            "placement": alias("placement", row.placement_id),
            "learner": alias("learner", row.learner_id),
            "supervisor": alias("supervisor", row.supervisor_id),
            "organisation_id": row.organisation_id, "wbl_type": row.wbl_type,
            "pre_apprenticeship": row.pre_apprenticeship, "program_id": row.program_id,
            "matched_on": row.matched_on.isoformat(),
            "started_on": row.started_on.isoformat() if row.started_on else None,
            "completed_on": row.completed_on.isoformat() if row.completed_on else None,
            "withdrawn_on": row.withdrawn_on.isoformat() if row.withdrawn_on else None,
            "withdrawn_during_probation": row.withdrawn_during_probation, "status": status,
            "approved_ojl_minutes": _minutes(row.entries, APPROVED, ON_THE_JOB),
            "approved_related_instruction_minutes": _minutes(row.entries, APPROVED) -
            _minutes(row.entries, APPROVED, ON_THE_JOB),
            "pending_minutes": _minutes(row.entries, LOGGED),
            "rejected_minutes": _minutes(row.entries, REJECTED),
            "credited_minutes": row.credited_minutes, "corrections": row.corrections,
            "evaluations": row.evaluations, "mean_rubric_score": mean,
            "credentials": len(row.credentials),
            "credential_kinds": ";".join(sorted(row.credentials)),
        })
    profiles = vault.profiles_as_of(set(per_learner), _far_future())
    group_names = sorted({g for p in profiles.values() if p for g in p.other_groups})
    learners = []
    for learner_id, own in sorted(per_learner.items(), key=lambda kv: alias("learner", kv[0])
                                  or ""):
        p = profiles.get(learner_id)
        learners.append({
            "learner": alias("learner", learner_id),
            "organisation_id": p.organisation_id if p else None,
            "birth_year": p.born_on.year if p else None,
            "sex": p.sex.value if p else None,
            "race_ethnicity": p.race_ethnicity.value if p else None,
            "economically_disadvantaged": p.economically_disadvantaged if p else None,
            "disability": p.disability if p else None,
            "english_learner": p.english_learner if p else None,
            "cte_concentrator": p.cte_concentrator if p else None,
            "graduation_year": p.graduated_on.year if p and p.graduated_on else None,
            **{f"group_{g}": (p.other_groups.get(g) if p else None) for g in group_names},
            "placements": len(own),
            "completed_placements": sum(1 for r in own if r.completed_on),
            "approved_minutes": sum(_minutes(r.entries, APPROVED) for r in own),
            "credentials": sum(len(r.credentials) for r in own),
        })
    return placements, learners


def _far_future() -> Any:
    from datetime import UTC, datetime

    return datetime.max.replace(tzinfo=UTC)


def write_tables(folder: Path, tables: dict[str, list[dict[str, Any]]]) -> list[Path]:
    """Each table as CSV and as Parquet; returns the files written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in tables.items():
        columns = list(rows[0]) if rows else []
        path = folder / f"{name}.csv"
        with path.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        written.append(path)
        table = pa.Table.from_pylist(rows) if rows else pa.table({})
        pq.write_table(table, folder / f"{name}.parquet")
        written.append(folder / f"{name}.parquet")
    return written
