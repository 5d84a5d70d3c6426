"""Issue 12's defects, driven from the client's side on both stores: HTTP in, HTTP out,
through the real relay, a real Kafka-protocol broker (3 partitions) and the projector.

1. every command's ``position`` reads its own write on every read route that shows it, and a
   ``min_position`` past the end of the log is a 422 naming the rule;
2. whether a date is a school day comes from the school's calendar, never the client;
3. a 14-15-year-old's limits count every placement of the learner;
4. a correction of approved hours leaves them counted until it is approved; rejected
   minutes stay shown after a correction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from domain.actor import Role
from infra.settings import Settings
from services.api.app import create_app
from services.api.auth import issue_token
from services.bootstrap import Runtime

pytestmark = pytest.mark.integration
SECRET = "found-from-outside-secret-0123456789abcdef"
TODAY = date.today()
STARTS = TODAY - timedelta(days=70)
ENDS = TODAY + timedelta(days=200)
MONDAY = TODAY - timedelta(days=TODAY.weekday() + 21)  # a full past week, after STARTS
BORN_15 = TODAY.replace(year=TODAY.year - 15) - timedelta(days=30)  # 15 throughout

ACTORS = {
    "admin": ("adm-1", Role.ADMIN, None),
    "coord": ("coord-1", Role.COORDINATOR, "school-a"),
    "coord_b": ("coord-2", Role.COORDINATOR, "school-b"),
    "learner": ("lrn-1", Role.LEARNER, "school-a"),
    "young": ("lrn-15", Role.LEARNER, "school-a"),
    "young_b": ("lrn-15b", Role.LEARNER, "school-b"),
    "supervisor": ("sup-1", Role.SUPERVISOR, "acme"),
    "guardian": ("grd-1", Role.GUARDIAN, "school-a"),
    "guardian_b": ("grd-2", Role.GUARDIAN, "school-b"),
    "sponsor": ("spon-1", Role.SPONSOR, "sponsor-a"),
    "auditor": ("aud-1", Role.STATE_AUDITOR, None),
}


@dataclass
class Client:
    http: TestClient
    runtime: Runtime
    tokens: dict[str, str]

    def call(self, who: str, method: str, path: str, body: Any = None,
             **params: Any) -> Any:
        return self.http.request(method, path, json=body, params=params or None,
                                 headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def ok(self, who: str, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.call(who, method, path, body, **params)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json()

    def refused(self, who: str, method: str, path: str, body: Any, status: int,
                code: str) -> dict[str, Any]:
        response = self.call(who, method, path, body)
        assert response.status_code == status, response.text
        problem: dict[str, Any] = response.json()
        assert problem["type"] == f"/errors/{code}", problem
        return problem

    def placement(self, learner: str, born: str, org: str = "school-a",
                  coordinator: str = "coord", guardian: str = "guardian",
                  program_id: str | None = None) -> str:
        opportunity = self.ok(coordinator, "POST", "/opportunities", {
            "organisation_id": org, "title": "Shop assistant", "employer_name": "Acme",
            "worksite": "1 Main St", "wbl_type": "Apprenticeship" if program_id
            else "PaidInternship", "paid": True, "hourly_wage": "15.00", "capacity": 10,
            "starts_on": STARTS.isoformat(), "ends_on": ENDS.isoformat()})["id"]
        body = {"opportunity_id": opportunity, "learner_id": ACTORS[learner][0],
                "supervisor_id": "sup-1", "learner_born_on": born}
        if program_id:
            body["program_id"] = program_id
        pid: str = self.ok(coordinator, "POST", "/placements", body)["id"]
        parties = [(learner, "learner"), ("supervisor", "employer"),
                   (coordinator, "coordinator")]
        if born == BORN_15.isoformat():
            parties.append((guardian, "guardian"))
        for who, party in parties:
            self.ok(who, "POST", f"/placements/{pid}/agreement-signatures", {"party": party})
        self.ok("supervisor", "POST", f"/placements/{pid}/start",
                {"started_on": STARTS.isoformat()})
        return pid

    def school_year(self, org: str = "school-a", coordinator: str = "coord") -> None:
        first = MONDAY - timedelta(days=49)
        self.ok(coordinator, "POST", f"/organisations/{org}/calendar/years", {
            "school_year": f"{_year(MONDAY)}-{_year(MONDAY) + 1}",
            "first_day": max(first, date(_year(MONDAY), 7, 1)).isoformat(),
            "last_day": min(MONDAY + timedelta(days=60),
                            date(_year(MONDAY) + 1, 6, 30)).isoformat(),
            "breaks": []})


def _year(day: date) -> int:
    return day.year if day.month >= 7 else day.year - 1


@pytest.fixture
def client(store_settings: Settings, kafka_bootstrap: str, topic_name: str
           ) -> Iterator[Client]:
    settings = store_settings.model_copy(update={
        "kafka_bootstrap_servers": kafka_bootstrap, "topic": topic_name,
        "topic_partitions": 3, "jwt_secret": SecretStr(SECRET), "read_wait_timeout_s": 8.0})
    runtime = Runtime.build(settings)
    runtime.start()
    app = create_app(runtime=runtime)
    try:
        with TestClient(app) as http:
            key = app.state.token_key
            tokens = {name: issue_token(key, actor_id=a, role=r, organisation_id=o)
                      for name, (a, r, o) in ACTORS.items()}
            c = Client(http, runtime, tokens)
            for org, kind in (("school-a", "school"), ("school-b", "school"),
                              ("sponsor-a", "sponsor")):
                c.ok("admin", "POST", "/organisations", {"id": org, "name": org, "kind": kind})
            for org, learner in (("school-a", "lrn-1"), ("school-a", "lrn-15"),
                                 ("school-b", "lrn-15b")):
                c.ok("admin", "POST", f"/organisations/{org}/people",
                     {"id": learner, "role": "learner"})
            yield c
    finally:
        runtime.stop()


# -- 1. read your writes -----------------------------------------------------------------

def _reads(c: Client, pid: str, position: int) -> dict[str, Any]:
    """Every read route that shows a placement's hours, waited to ``position``."""
    transcript = c.ok("coord", "GET", "/learners/lrn-1/transcript", placement_id=pid,
                      min_position=position)
    (experience,) = [e for e in transcript["experiences"] if e["placement_id"] == pid]
    progress = c.ok("coord", "GET", "/learners/lrn-1/apprenticeship-hours", placement_id=pid,
                    min_position=position, include_non_apprenticeships=True)
    (hours,) = progress
    trail = c.ok("auditor", "GET", "/audit-trail", placement_id=pid, min_position=position,
                 limit=500)
    whole = c.ok("coord", "GET", "/learners/lrn-1/transcript", min_position=position)
    own = [e for e in trail if e["aggregate_id"] == pid]  # not the learner's day beside it
    return {"experience": experience, "hours": hours, "trail": own, "whole": whole}


def test_every_hours_command_reads_its_own_write_on_every_read_route(client: Client) -> None:
    c = client
    c.school_year()
    program = c.ok("sponsor", "POST", "/programs", {
        "sponsor_id": "sponsor-a", "sponsor_name": "Acme JATC", "title": "Retail",
        "rapids_code": "0159", "onet_code": "41-2031.00", "approach": "time_based",
        "ojl_hours": 2000, "work_processes": {"Sales": 2000}, "competencies": ["Till"],
        "wage_schedule": [{"after_hours": 0, "hourly_wage": "15.00"}]})["id"]
    pid = c.placement("learner", "2000-01-01", program_id=program)
    base = f"/placements/{pid}"
    work = [(MONDAY + timedelta(days=i)).isoformat() for i in range(5)]

    logged = c.ok("learner", "POST", f"{base}/hours", {"work_date": work[0], "minutes": 240})
    seen = _reads(c, pid, logged["position"])
    assert seen["experience"]["pending_minutes"] == 240
    assert seen["hours"]["pending_ojl_minutes"] == 240
    assert seen["trail"][-1]["aggregate_version"] == logged["version"]

    approved = c.ok("supervisor", "POST", f"{base}/hours/{logged['created_id']}/approve", {})
    seen = _reads(c, pid, approved["position"])
    assert seen["experience"]["approved_minutes"] == 240
    assert seen["hours"]["approved_ojl_minutes"] == 240

    second = c.ok("learner", "POST", f"{base}/hours", {"work_date": work[1], "minutes": 120})
    rejected = c.ok("supervisor", "POST", f"{base}/hours/{second['created_id']}/reject",
                    {"reason": "Not on the rota"})
    seen = _reads(c, pid, rejected["position"])
    assert seen["experience"]["rejected_minutes"] == 120
    assert seen["trail"][-1]["event_type"] == "HoursRejected"

    corrected = c.ok("learner", "POST", f"{base}/hours/{second['created_id']}/correct",
                     {"reason": "It was Wednesday", "work_date": work[2], "minutes": 120})
    seen = _reads(c, pid, corrected["position"])
    assert seen["experience"]["pending_minutes"] == 120
    assert seen["trail"][-1]["event_type"] == "HoursCorrected"

    bulk = c.ok("supervisor", "POST", "/hours/bulk-approve", {"items": [
        {"placement_id": pid, "entry_id": corrected["created_id"]}]})
    seen = _reads(c, pid, bulk["outcomes"][0]["position"])
    assert seen["experience"]["approved_minutes"] == 360

    evaluated = c.ok("supervisor", "POST", f"{base}/evaluations", {
        "scores": {"Till": 3}, "evaluator_role": "supervisor"})
    seen = _reads(c, pid, evaluated["position"])
    assert seen["experience"]["evaluations"]

    # a position already projected answers at once; one past the log's end is the caller's
    # mistake (422 naming the rule), never "the read model is behind" (503)
    assert c.call("coord", "GET", "/learners/lrn-1/transcript", placement_id=pid,
                  min_position=1).status_code == 200
    last = c.runtime.ledger.recorder.max_notification_id()
    for path in ("/learners/lrn-1/transcript", "/learners/lrn-1/apprenticeship-hours",
                 "/audit-trail"):
        who = "auditor" if path == "/audit-trail" else "coord"
        response = c.call(who, "GET", path, placement_id=pid, min_position=last + 1000)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["type"] == "/errors/min-position-beyond-log"
    gone = c.call("coord", "GET", f"/opportunities/{c.ok('coord', 'GET', base)['opportunity_id']}",
                  min_position=last + 1)
    assert gone.status_code == 422 and gone.json()["field"] == "min_position"


def test_every_placement_command_reads_its_own_write(client: Client) -> None:
    """Every command route that changes a placement or an opportunity, each followed by the
    read routes that show it, waited with the position the command answered."""
    c = client
    c.school_year()
    program = c.ok("sponsor", "POST", "/programs", {
        "sponsor_id": "sponsor-a", "sponsor_name": "Acme JATC", "title": "Retail",
        "rapids_code": "0159", "onet_code": "41-2031.00", "approach": "competency_based",
        "ojl_hours": 2000, "work_processes": {"Sales": 2000}, "competencies": ["Till"],
        "wage_schedule": [{"after_hours": 0, "hourly_wage": "15.00"}]})["id"]
    opportunity = c.ok("coord", "POST", "/opportunities", {
        "organisation_id": "school-a", "title": "Till operator", "employer_name": "Acme",
        "worksite": "1 Main St", "wbl_type": "Apprenticeship", "paid": True,
        "hourly_wage": "15.00", "capacity": 10, "starts_on": STARTS.isoformat(),
        "ends_on": ENDS.isoformat()})
    seen = c.ok("coord", "GET", f"/opportunities/{opportunity['id']}",
                min_position=opportunity["position"])
    assert seen["version"] == opportunity["version"]
    matched = c.ok("coord", "POST", "/placements", {
        "opportunity_id": opportunity["id"], "learner_id": "lrn-1", "supervisor_id": "sup-1",
        "learner_born_on": "2000-01-01", "program_id": program})
    pid = matched["id"]
    base = f"/placements/{pid}"

    def shows(result: dict[str, Any], status: str | None = None) -> dict[str, Any]:
        seen = _reads(c, pid, result["position"])
        assert seen["experience"]["version"] == result["version"], seen["experience"]
        assert seen["trail"][-1]["aggregate_version"] == result["version"]
        if status is not None:
            assert seen["experience"]["status"] == status
            assert seen["hours"]["status"] == status
        return seen

    shows(matched, "matched")
    for who, party in (("learner", "learner"), ("supervisor", "employer"),
                       ("coord", "coordinator")):
        shows(c.ok(who, "POST", f"{base}/agreement-signatures", {"party": party}))
    shows(c.ok("supervisor", "POST", f"{base}/start", {"started_on": STARTS.isoformat()}),
          "active")
    seen = shows(c.ok("sponsor", "POST", f"{base}/prior-learning-credits",
                      {"minutes": 60, "basis": "prior_training"}))
    assert seen["hours"]["prior_learning_credit_minutes"] == 60
    shows(c.ok("coord", "POST", f"{base}/work-experience-agreement",
               {"signed_on": STARTS.isoformat(), "reason": "WECEP"}))
    shows(c.ok("coord", "POST", f"{base}/suspend", {"reason": "Site closed"}), "suspended")
    shows(c.ok("coord", "POST", f"{base}/reinstate", {"reason": "Site open"}), "active")
    seen = shows(c.ok("supervisor", "POST", f"{base}/competency-sign-offs",
                      {"competency": "Till"}))
    assert seen["experience"]["competencies_signed_off"] == ["Till"]
    shows(c.ok("supervisor", "POST", f"{base}/evaluations",
               {"scores": {"Till": 4}, "evaluator_role": "supervisor"}))
    seen = shows(c.ok("coord", "POST", f"{base}/credentials",
                      {"kind": "Badge", "issuer": "School A"}))
    assert seen["experience"]["credentials"]
    shows(c.ok("coord", "POST", f"{base}/complete", {}), "completed")
    closed = c.ok("coord", "POST", f"/opportunities/{opportunity['id']}/close",
                  {"reason": "Filled"})
    seen = c.ok("coord", "GET", f"/opportunities/{opportunity['id']}",
                min_position=closed["position"])
    assert seen["version"] == closed["version"]

    other = c.placement("learner", "2000-01-01")
    withdrawn = c.ok("learner", "POST", f"/placements/{other}/withdraw",
                     {"reason": "Moved away"})
    transcript = c.ok("coord", "GET", "/learners/lrn-1/transcript", placement_id=other,
                      min_position=withdrawn["position"])
    (experience,) = [e for e in transcript["experiences"] if e["placement_id"] == other]
    assert experience["status"] == "withdrawn"


# -- 2. the school calendar decides, never the client -----------------------------------

def test_the_school_week_comes_from_the_calendar_not_the_client(client: Client) -> None:
    c = client
    c.school_year()
    pid = c.placement("young", BORN_15.isoformat())
    base = f"/placements/{pid}/hours"
    # the client may no longer say whether a day is a school day
    problem = c.refused("young", "POST", base, {
        "work_date": MONDAY.isoformat(), "minutes": 60, "school_day": False}, 422,
        "invalid-request")
    assert "school_day" in str(problem)
    day = c.ok("young", "GET", f"/organisations/school-a/calendar/days/{MONDAY.isoformat()}")
    assert day == {"day": MONDAY.isoformat(), "school_day": True, "school_week": True,
                   "calendar_missing": False}
    # 3 h on each school day (15 h), 3 h on Saturday = 18 h: the school week's limit
    for offset in range(6):
        c.ok("young", "POST", base, {
            "work_date": (MONDAY + timedelta(days=offset)).isoformat(), "minutes": 180})
    # 1 h on Sunday makes 19 h in a school week: refused, and nothing stored
    before = c.ok("coord", "GET", f"/placements/{pid}/hours")
    problem = c.refused("young", "POST", base, {
        "work_date": (MONDAY + timedelta(days=6)).isoformat(), "minutes": 60}, 422,
        "minor-school-week-limit")
    assert "18 hours" in problem["detail"]
    after = c.ok("coord", "GET", f"/placements/{pid}/hours")
    assert after == before
    # a school day allows 3 h: a fourth hour on a Tuesday is refused
    stored = c.ok("coord", "GET", f"/placements/{pid}/hours")["entries"]
    assert {e["school_day"] for e in stored if date.fromisoformat(e["work_date"]).weekday() < 5
            } == {True}
    assert all(e["school_week"] for e in stored)


def test_without_a_calendar_the_safer_reading_applies_and_is_flagged(client: Client) -> None:
    c = client
    pid = c.placement("young_b", BORN_15.isoformat(), org="school-b", coordinator="coord_b",
                      guardian="guardian_b")
    saturday = MONDAY + timedelta(days=5)
    # no calendar: a Saturday is read as a school day (3 h), not a non-school day (8 h)
    c.refused("young_b", "POST", f"/placements/{pid}/hours",
              {"work_date": saturday.isoformat(), "minutes": 240}, 422,
              "minor-school-day-limit")
    entry = c.ok("young_b", "POST", f"/placements/{pid}/hours",
                 {"work_date": saturday.isoformat(), "minutes": 180})
    (stored,) = [e for e in c.ok("coord_b", "GET", f"/placements/{pid}/hours")["entries"]
                 if e["entry_id"] == entry["created_id"]]
    assert stored["child_labour_flags"] == ["calendar-missing"]
    # once the school records its year, the same Saturday is a non-school day (8 h) ...
    c.school_year("school-b", "coord_b")
    sunday = saturday + timedelta(days=1)
    c.ok("young_b", "POST", f"/placements/{pid}/hours",
         {"work_date": sunday.isoformat(), "minutes": 300})
    # ... and a coordinator's exception, with its reason, makes a weekday a non-school day
    snow = c.ok("coord_b", "POST", "/organisations/school-b/calendar/exceptions", {
        "day": MONDAY.isoformat(), "school_day": False, "reason": "Snow day"})
    days = c.ok("young_b", "GET", f"/organisations/school-b/calendar/days/{MONDAY}")
    assert days["school_day"] is False and days["school_week"] is True
    c.ok("young_b", "POST", f"/placements/{pid}/hours",
         {"work_date": MONDAY.isoformat(), "minutes": 300})
    trail = c.ok("auditor", "GET", "/audit-trail", organisation_id="school-b", limit=500,
                 min_position=snow["position"])
    assert any(e["event_type"] == "SchoolDayExceptionRecorded" and "Snow day" in e["summary"]
               for e in trail)
    # a calendar is recorded by its own school's coordinators only
    c.refused("coord", "POST", "/organisations/school-b/calendar/exceptions", {
        "day": MONDAY.isoformat(), "school_day": True, "reason": "x"}, 403,
        "not-your-record")


# -- 3. minors' limits per learner, across placements -----------------------------------

def test_a_minors_limits_count_every_placement(client: Client) -> None:
    c = client
    c.school_year()
    first = c.placement("young", BORN_15.isoformat())
    second = c.placement("young", BORN_15.isoformat())
    tuesday = (MONDAY + timedelta(days=1)).isoformat()
    c.ok("young", "POST", f"/placements/{first}/hours", {"work_date": tuesday, "minutes": 180})
    c.refused("young", "POST", f"/placements/{second}/hours",
              {"work_date": tuesday, "minutes": 180}, 422, "minor-school-day-limit")
    # the week: 3 h a day in alternate placements, 18 h at most in all
    for offset in (0, 2, 3, 4, 5):
        pid = first if offset % 2 else second
        c.ok("young", "POST", f"/placements/{pid}/hours",
             {"work_date": (MONDAY + timedelta(days=offset)).isoformat(), "minutes": 180})
    c.refused("young", "POST", f"/placements/{second}/hours",
              {"work_date": (MONDAY + timedelta(days=6)).isoformat(), "minutes": 30}, 422,
              "minor-school-week-limit")
    # a WECEP training agreement on the placement allows 23 h in a school week
    c.ok("coord", "POST", f"/placements/{second}/work-experience-agreement", {
        "signed_on": STARTS.isoformat(), "reason": "WECEP agreement, state-approved"})
    c.ok("young", "POST", f"/placements/{second}/hours",
         {"work_date": (MONDAY + timedelta(days=6)).isoformat(), "minutes": 300})
    # rejecting an entry frees its minutes for the learner's other placement
    entries = c.ok("coord", "GET", f"/placements/{first}/hours")["entries"]
    tuesday_entry = next(e["entry_id"] for e in entries if e["work_date"] == tuesday)
    c.ok("supervisor", "POST", f"/placements/{first}/hours/{tuesday_entry}/reject",
         {"reason": "Closed that day"})
    c.ok("young", "POST", f"/placements/{second}/hours",
         {"work_date": tuesday, "minutes": 120})


# -- 4. corrections keep what was approved -----------------------------------------------

def test_a_correction_of_approved_hours_waits_for_approval(client: Client) -> None:
    c = client
    c.school_year()
    pid = c.placement("learner", "2000-01-01")
    base = f"/placements/{pid}"
    logged = c.ok("learner", "POST", f"{base}/hours",
                  {"work_date": MONDAY.isoformat(), "minutes": 240})
    c.ok("supervisor", "POST", f"{base}/hours/{logged['created_id']}/approve", {})
    corrected = c.ok("learner", "POST", f"{base}/hours/{logged['created_id']}/correct",
                     {"reason": "Worked 5 h", "work_date": MONDAY.isoformat(),
                      "minutes": 300})
    seen = _reads(c, pid, corrected["position"])
    assert seen["experience"]["approved_minutes"] == 240  # the approved hours still count
    assert seen["experience"]["pending_minutes"] == 300
    entries = {e["entry_id"]: e for e in c.ok("learner", "GET", f"{base}/hours")["entries"]}
    assert entries[logged["created_id"]]["status"] == "approved"
    assert entries[corrected["created_id"]]["pending_over"] == logged["created_id"]

    rejected = c.ok("supervisor", "POST",
                    f"{base}/hours/{corrected['created_id']}/reject", {"reason": "It was 4 h"})
    seen = _reads(c, pid, rejected["position"])
    assert seen["experience"]["approved_minutes"] == 240  # the original stands
    assert seen["experience"]["rejected_minutes"] == 300

    again = c.ok("learner", "POST", f"{base}/hours/{logged['created_id']}/correct",
                 {"reason": "4.5 h after all", "work_date": MONDAY.isoformat(),
                  "minutes": 270})
    approved = c.ok("supervisor", "POST", f"{base}/hours/{again['created_id']}/approve", {})
    seen = _reads(c, pid, approved["position"])
    assert seen["experience"]["approved_minutes"] == 270  # replaced only now
    assert seen["experience"]["rejected_minutes"] == 300  # rejected minutes stay shown
    assert "replaces approved entry" in seen["trail"][-1]["summary"]


def test_rejected_minutes_stay_shown_after_a_correction(client: Client) -> None:
    c = client
    c.school_year()
    pid = c.placement("learner", "2000-01-01")
    base = f"/placements/{pid}"
    logged = c.ok("learner", "POST", f"{base}/hours",
                  {"work_date": MONDAY.isoformat(), "minutes": 90})
    c.ok("supervisor", "POST", f"{base}/hours/{logged['created_id']}/reject",
         {"reason": "Wrong day"})
    fixed = c.ok("learner", "POST", f"{base}/hours/{logged['created_id']}/correct",
                 {"reason": "Tuesday", "work_date": (MONDAY + timedelta(days=1)).isoformat(),
                  "minutes": 90})
    seen = _reads(c, pid, fixed["position"])
    assert seen["experience"]["rejected_minutes"] == 90
    assert seen["experience"]["pending_minutes"] == 90
