"""The state report as a pure computation: exact figures, Perkins 5S3, suppression that
leaves no small cell derivable, and the same inputs always giving the same bytes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from domain.contract.canonical import canonical_json
from domain.contract.envelope import Envelope
from domain.learner import LearnerProfile, RaceEthnicity, Sex
from projections.state_report import (
    Organisation,
    ReportingPeriod,
    build_report,
    difference,
    to_csv_rows,
)

PERIOD = ReportingPeriod("2025-26", date(2025, 7, 1), date(2026, 6, 30))
ORGS = {
    "state": Organisation("state", "State", "state", None),
    "district": Organisation("district", "District 1", "district", "state"),
    "north": Organisation("north", "North High", "school", "district"),
    "south": Organisation("south", "South High", "school", "district"),
}


class History:
    def __init__(self) -> None:
        self.events: list[Envelope] = []
        self.versions: dict[str, int] = {}

    def add(self, aggregate_id: str, event_type: str, business_date: str, **data: Any) -> None:
        version = self.versions.get(aggregate_id, 0) + 1
        self.versions[aggregate_id] = version
        self.events.append(Envelope(
            event_id=f"{aggregate_id}/{version}", event_type=event_type,
            aggregate_type="Placement", aggregate_id=aggregate_id, aggregate_version=version,
            position=len(self.events) + 1, schema_version=1,
            recorded_at=datetime(2026, 7, 1, tzinfo=UTC),
            data={"business_date": business_date, "actor_id": "a", "actor_role": "x", **data}))

    def placement(self, pid: str, learner: str, org: str, *, started: str,
                  wbl_type: str = "PaidInternship", program: str | None = None) -> None:
        self.add(pid, "LearnerMatched", started, learner_id=learner, organisation_id=org,
                 wbl_type=wbl_type, program_id=program, pre_apprenticeship=False)
        self.add(pid, "PlacementStarted", started)

    def hours(self, pid: str, entry: str, day: str, minutes: int, outcome: str) -> None:
        self.add(pid, "HoursLogged", day, entry_id=entry, minutes=minutes, kind="on_the_job",
                 allocations={})
        if outcome == "approved":
            self.add(pid, "HoursApproved", day, entry_id=entry)
        elif outcome == "rejected":
            self.add(pid, "HoursRejected", day, entry_id=entry, reason="no")


def profile(org: str, sex: Sex, **changes: Any) -> LearnerProfile:
    return LearnerProfile(organisation_id=org, given_name="G", family_name="F",
                          born_on=date(2008, 1, 1), sex=sex,
                          race_ethnicity=RaceEthnicity.WHITE, **changes)


def world() -> tuple[History, dict[str, LearnerProfile | None]]:
    h = History()
    profiles: dict[str, LearnerProfile | None] = {}
    for n in range(24):
        org = "north" if n < 14 else "south"
        learner = f"l{n}"
        profiles[learner] = profile(org, Sex.FEMALE if n % 2 else Sex.MALE,
                                    cte_concentrator=n < 20,
                                    graduated_on=date(2026, 6, 1) if n < 20 else None)
        h.placement(f"p{n}", learner, org, started="2025-09-01")
        h.hours(f"p{n}", f"e{n}a", "2025-09-02", 240, "approved")   # counts
        h.hours(f"p{n}", f"e{n}b", "2025-09-03", 60, "rejected")    # never counts
        h.hours(f"p{n}", f"e{n}c", "2025-06-30", 120, "approved")   # before the period
    # a correction replaces what it supersedes: p0's 240 becomes 180
    h.add("p0", "HoursCorrected", "2025-09-02", entry_id="e0x", supersedes="e0a",
          minutes=180, kind="on_the_job", allocations={}, reason="typo")
    h.add("p0", "HoursApproved", "2025-09-02", entry_id="e0x")
    h.add("p1", "PlacementCompleted", "2026-05-01")
    h.add("p1", "CredentialIssued", "2026-05-02", credential_id="c1", kind="OSHA-10",
          issuer="OSHA")
    # a concentrator graduating with no placement at all
    profiles["l99"] = profile("south", Sex.MALE, cte_concentrator=True,
                              graduated_on=date(2026, 6, 1))
    return h, profiles


def report(h: History, profiles: dict[str, LearnerProfile | None],
           min_cell: int = 10) -> dict[str, Any]:
    return build_report(PERIOD, h.events, ORGS, profiles, cutoff_position=len(h.events),
                        cutoff_recorded_at="2026-07-01T00:00:00+00:00", min_cell=min_cell)


def figure(r: dict[str, Any], org: str, measure: str, dim: str = "all",
           group: str = "all") -> Any:
    (row,) = [x for x in r["figures"] if (x["organisation_id"], x["measure"], x["dimension"],
                                          x["group"]) == (org, measure, dim, group)]
    return row["value"]


def test_figures_are_exact_and_roll_up_the_hierarchy() -> None:
    h, profiles = world()
    r = report(h, profiles, min_cell=1)  # nothing small: every figure shown
    assert figure(r, "north", "participants") == 14
    assert figure(r, "south", "participants") == 10
    assert figure(r, "state", "participants") == 24
    assert figure(r, "district", "placements_started", "wbl_type", "PaidInternship") == 24
    # 24 x 240 min approved in the period, less 60 for the correction; rejected and
    # out-of-period hours never count
    assert figure(r, "state", "approved_hours") == "95.00"
    assert figure(r, "north", "approved_hours") == "55.00"
    assert figure(r, "state", "placements_completed") == 1
    assert figure(report(h, profiles, min_cell=2), "state", "placements_completed") is None
    # Perkins 5S3: 21 concentrators graduate, 20 of them took part in WBL
    (rate,) = [x for x in r["perkins_5s3"] if (x["organisation_id"], x["dimension"])
               == ("state", "all")]
    assert rate["percent"] == "95.2"


def test_same_inputs_same_bytes_and_a_difference_for_late_changes() -> None:
    h, profiles = world()
    first, again = report(h, profiles, min_cell=1), report(h, profiles, min_cell=1)
    assert canonical_json(first) == canonical_json(again)
    assert first["content_hash"] == again["content_hash"]
    h.add("p5", "HoursCorrected", "2025-09-02", entry_id="e5x", supersedes="e5a", minutes=60,
          kind="on_the_job", allocations={}, reason="late correction")
    later = report(h, profiles, min_cell=1)
    assert later["content_hash"] != first["content_hash"]
    changed = {(c["organisation_id"], c["measure"], c["dimension"], c["group"]): c
               for c in difference(first, later)}
    assert changed[("state", "approved_hours", "all", "all")]["before"] == "95.00"
    assert changed[("state", "approved_hours", "all", "all")]["after"] == "91.00"





def test_csv_marks_suppressed_cells() -> None:
    h, profiles = world()
    rows = to_csv_rows(report(h, profiles))
    assert rows[0] == ["period", "organisation_id", "organisation_name", "measure",
                       "dimension", "group", "value"]
    assert any(r[-1] == "*" for r in rows[1:])
    assert all(r[-1] == "*" or r[-1].replace(".", "").isdigit() for r in rows[1:])
