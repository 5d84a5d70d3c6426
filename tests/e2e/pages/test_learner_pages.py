"""The learner's pages in Chromium against a running `wbl run`, on both stores (issue 17):
an apprentice logs a week on the timesheet (the day with 25 hours is refused beside its
field, with the rule's name, and nothing of it is stored), sees a rejected entry with its
reason, corrects and resubmits it, follows progress per work process with the chart of hours
per week, and downloads the transcript (CSV, PDF) and signed credentials (Open Badge, CLR).
Another learner's placement answers the API's 404 as a page. Every page visited passes
axe-core and is photographed at 390 px and 1280 px."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.pages.support import audit_page, ok, program_body
from tests.fixtures.site import Site

pytestmark = pytest.mark.integration

TODAY = date.today()
STARTS = TODAY - timedelta(days=45)
MONDAY = TODAY - timedelta(days=TODAY.weekday() + 14)  # a whole past week, after the start



def placement_for(site: Site, learner: str, program: str | None, *, start: bool = True
                  ) -> str:
    """An opportunity posted, the learner matched and, when asked, the agreement signed by
    everyone and the placement started: as a coordinator and the parties would, over HTTP."""
    opportunity = ok(site.call("POST", "/opportunities", {
        "organisation_id": "school-l", "title": "Electrical apprentice",
        "employer_name": "Acme Electric", "worksite": "1 Volt Way",
        "wbl_type": "Apprenticeship", "paid": True, "hourly_wage": "18.00", "capacity": 5,
        "starts_on": STARTS.isoformat(), "ends_on": (TODAY + timedelta(days=200)).isoformat()},
        as_="coord-l"))["id"]
    placement: str = ok(site.call("POST", "/placements", {
        "opportunity_id": opportunity, "learner_id": learner, "supervisor_id": "sup-l",
        "learner_born_on": "2000-03-04", "program_id": program}, as_="coord-l"))["id"]
    if start:
        for who, party in ((learner, "learner"), ("sup-l", "employer"),
                           ("coord-l", "coordinator")):
            ok(site.call("POST", f"/placements/{placement}/agreement-signatures",
                         {"party": party}, as_=who))
        ok(site.call("POST", f"/placements/{placement}/start",
                     {"started_on": STARTS.isoformat()}, as_="sup-l"))
    return placement


@pytest.fixture(scope="module")
def world(site: Site) -> dict[str, str]:
    site.organisation("school-l")
    site.organisation("sponsor-l", "sponsor")
    site.person("school-l", "lrn-l1", "learner")  # the only one who signs in here
    site.person("school-l", "coord-l", "coordinator", account=False)
    site.person("school-l", "lrn-l2", "learner", account=False)
    site.person("school-l", "sup-l", "supervisor", account=False)
    site.person("sponsor-l", "spon-l", "sponsor", account=False)
    program = ok(site.call("POST", "/programs", program_body("sponsor-l"), as_="spon-l"))["id"]
    return {"program": program, "mine": placement_for(site, "lrn-l1", program),
            "theirs": placement_for(site, "lrn-l2", program, start=False)}


def entries(site: Site, placement: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ok(site.call("GET", f"/placements/{placement}/hours",
                                                as_="lrn-l1"))["entries"]
    return found


def test_a_learner_logs_a_week_corrects_a_rejection_and_downloads_the_transcript(
        site: Site, world: dict[str, str], page: Page, tmp_path: Path) -> None:
    mine = world["mine"]
    site.sign_in(page, "lrn-l1")
    expect(page).to_have_url(site.base_url + "/learner")
    expect(page.get_by_role("heading", name="Electrical apprentice")).to_be_visible()
    audit_page(page, "learner-placements")

    # the week timesheet: two days logged, the day of 25 hours refused beside its field
    expect(page.get_by_role("link", name="Log hours at Electrical apprentice")
           ).to_have_attribute("href", f"/learner/placements/{mine}/timesheet")
    page.goto(f"{site.base_url}/learner/placements/{mine}/timesheet?week={MONDAY}")
    monday = page.get_by_role("group", name=f"Monday {MONDAY.day} ", exact=False)
    monday.get_by_label("Start").fill("08:00")
    monday.get_by_label("End").fill("12:00")
    monday.locator("summary").click()
    monday.get_by_label("Wiring (minutes)").fill("180")
    tuesday = page.get_by_role("group", name="Tuesday", exact=False)
    tuesday.get_by_label("Kind").select_option("related_instruction")
    tuesday.get_by_label("Time (h:mm)").fill("2:30")
    wednesday = page.get_by_role("group", name="Wednesday", exact=False)
    wednesday.get_by_label("Time (h:mm)").fill("25:00")
    audit_page(page, "learner-timesheet")
    page.get_by_role("button", name="Log these hours").click()

    wednesday = page.get_by_role("group", name="Wednesday", exact=False)
    time_field = wednesday.get_by_label("Time (h:mm)")
    expect(time_field).to_have_attribute("aria-invalid", "true")
    expect(time_field).to_have_value("25:00")
    expect(wednesday.locator(".error")).to_contain_text("less_than_equal")
    expect(wednesday.locator(".error")).to_contain_text("at most 24:00")
    expect(page.get_by_role("alert")).to_contain_text("nothing of them was stored")
    audit_page(page, "learner-timesheet-refused")
    logged = entries(site, mine)
    assert sorted((e["work_date"], e["kind"], e["minutes"], e["allocations"]) for e in logged
                  ) == [(MONDAY.isoformat(), "on_the_job", 240, {"Wiring": 180}),
                        ((MONDAY + timedelta(days=1)).isoformat(), "related_instruction",
                         150, {})]  # and nothing for Wednesday
    by_day = {e["work_date"]: e["entry_id"] for e in logged}

    # the supervisor rejects Monday with a reason and approves Tuesday (over the API)
    ok(site.call("POST", f"/placements/{mine}/hours/{by_day[MONDAY.isoformat()]}/reject",
                 {"reason": "You started at nine that day"}, as_="sup-l"))
    ok(site.call("POST", f"/placements/{mine}/hours/"
                 f"{by_day[(MONDAY + timedelta(days=1)).isoformat()]}/approve", {},
                 as_="sup-l"))

    page.goto(f"{site.base_url}/learner/placements/{mine}")
    expect(page.locator("ul.entries > li")).to_have_count(2)
    audit_page(page, "learner-entries")
    page.get_by_label("Status").select_option("rejected")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".reason")).to_have_text("You started at nine that day")
    audit_page(page, "learner-entries-rejected")

    # correct and resubmit
    page.get_by_role("link", name="Correct and resubmit", exact=False).click()
    expect(page.get_by_label("Start")).to_have_value("08:00")
    page.get_by_label("Start").fill("09:00")
    page.get_by_label("Time (h:mm)").fill("")
    audit_page(page, "learner-correct")
    page.get_by_role("button", name="Send the correction").click()
    expect(page.get_by_role("alert")).to_contain_text("reason")  # a correction says why
    page.get_by_label("Why you correct it").fill("I started at nine")
    page.get_by_role("button", name="Send the correction").click()
    expect(page.get_by_role("status")).to_contain_text("Your correction was sent")
    corrected = next(e for e in entries(site, mine) if e["supersedes"])
    assert (corrected["minutes"], corrected["start_time"], corrected["status"]) == (
        180, "09:00", "logged")
    position = ok(site.call("POST", f"/placements/{mine}/hours/{corrected['entry_id']}/"
                            "approve", {}, as_="sup-l"))["position"]

    # progress per work process and in total, and the chart of hours per week
    page.goto(f"{site.base_url}/learner/placements/{mine}/progress?min_position={position}")
    wiring = page.get_by_role("row", name="Wiring", exact=False)
    expect(wiring).to_contain_text("1500:00")
    expect(wiring).to_contain_text("3:00")
    expect(page.get_by_text("On-the-job hours counted: 3:00 of 2000:00")).to_be_visible()
    week = page.get_by_role("row", name=f"{MONDAY.day} {MONDAY:%b %Y}")
    expect(week).to_contain_text("5:30")
    audit_page(page, "learner-progress")

    # the transcript and the signed credentials
    ok(site.call("POST", f"/placements/{mine}/evaluations", {
        "scores": {"Wiring basics": 3}, "evaluator_role": "supervisor", "stage": "final"},
        as_="sup-l"))
    issued = ok(site.call("POST", f"/placements/{mine}/credentials", {
        "kind": "Badge", "issuer": "School L"}, as_="coord-l"))
    page.goto(f"{site.base_url}/learner/transcript?min_position={issued['position']}")
    expect(page.get_by_text("Badge from School L", exact=False)).to_be_visible()
    audit_page(page, "learner-transcript")
    downloads = {}
    for name in ("Transcript (CSV)", "Transcript (PDF)", "Comprehensive Learner Record",
                 "Open Badge"):
        with page.expect_download() as download:
            page.get_by_role("link", name=name, exact=False).click()
        downloads[name] = Path(download.value.path()).read_bytes()
    assert mine in downloads["Transcript (CSV)"].decode()
    assert downloads["Transcript (PDF)"].startswith(b"%PDF-")
    badge = json.loads(downloads["Open Badge"])
    assert "OpenBadgeCredential" in badge["type"] and badge["proof"]
    assert "ClrCredential" in json.loads(downloads["Comprehensive Learner Record"])["type"]
    verdict = ok(site.call("POST", "/credentials/verify", {"credential": badge}))
    assert verdict["verified"], verdict


def test_a_learner_cannot_open_another_learners_placement(
        site: Site, world: dict[str, str], page: Page) -> None:
    site.sign_in(page, "lrn-l1")
    theirs = world["theirs"]
    for path in ("", "/timesheet", "/progress"):
        response = page.goto(f"{site.base_url}/learner/placements/{theirs}{path}")
        assert response is not None and response.status == 404
        expect(page.get_by_role("alert")).to_contain_text("unknown-placement")
        assert "lrn-l2" not in page.content() and "Electrical" not in page.content()
    audit_page(page, "learner-not-found")
    # a supervisor's page is not for a learner
    response = page.goto(f"{site.base_url}/supervisor")
    assert response is not None and response.status == 403
