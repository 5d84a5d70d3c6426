# ruff: noqa: E501 - the CSV fixtures are lines of real width
"""``POST /imports``: the CSV import over HTTP for a coordinator's own organisation, with
its validation report; refused files store nothing, rows naming another organisation are
refused, and the same file twice records once."""

from __future__ import annotations

from typing import Any

import pytest

from services.importing.placements import stable_id
from tests.integration.test_api_world import World, world

__all__ = ["world"]

pytestmark = pytest.mark.integration

TRACKER = """placement_ref,student_number,given_name,family_name,birth_date,title,employer_name,wbl_type,start_date,end_date,supervisor_id,organisation_id
H-1,S-9001,Rosa,Delgado,2004-04-02,CNC intern,Acme,UnpaidInternship,2025-01-13,2025-05-23,sup-1,
H-2,S-9002,Tom,Baker,2004-09-12,Job shadow,St Mary's,JobShadowing,2025-02-03,2025-02-03,sup-2,district-b
"""


def _import(w: World, who: str, content: str, **changes: Any) -> Any:
    body = {"kind": "placements", "organisation_id": "district-a", "file_name": "tracker.csv",
            "content": content, **changes}
    return w.call(who, "POST", "/imports", body)


def test_a_refused_file_stores_nothing_and_reports_each_row(world: World) -> None:
    before = world.position
    refused = _import(world, "coord_a", TRACKER)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"] == "/errors/import-refused"
    assert problem["errors"] == [{"field": "row 3: organisation_id",
                                  "kind": "not-your-organisation",
                                  "message": "This import is for district-a; the row names "
                                             "district-b."}]
    assert problem["report"]["recorded"] is False
    assert problem["report"]["rows_total"] == 2
    assert world.position == before


def test_valid_rows_are_recorded_once_and_the_other_organisation_never(world: World) -> None:
    first = _import(world, "coord_a", TRACKER, mode="valid-rows")
    assert first.status_code == 201, first.text
    report = first.json()
    assert report["recorded"] and report["rows_recorded"] == 1
    assert [(r["row"], r["rule"]) for r in report["rejected"]] == [
        (3, "not-your-organisation")]
    assert report["position"] == world.position
    again = _import(world, "coord_a", TRACKER, mode="valid-rows")
    assert again.status_code == 200 and again.json()["already_imported"], again.text
    assert world.position == report["position"]
    ledger = world.runtime.ledger
    assert ledger.exists(stable_id("district-a", "placement", "H-1"))
    assert not ledger.exists(stable_id("district-b", "placement", "H-2"))


def test_another_organisation_is_refused_before_anything_runs(world: World) -> None:
    before = world.position
    refused = _import(world, "coord_b", TRACKER)
    assert refused.status_code == 403
    assert refused.json()["type"] == "/errors/not-your-record"
    assert world.position == before
