"""The coordinator's pages in a real Chromium against a running `wbl run`, on both stores
(issue 17): the main journey (post an opportunity through the form, a refusal beside its
field with nothing stored, revise it, match a learner, the agreement and who has signed, start, the
placement's timeline, what needs attention, the school calendar, an import's validation
report), and a sample of the authorisation matrix walked in the browser (a coordinator of
another school sees none of this school's learners, and a direct link to one of its
placements shows the API's refusal and nothing of the placement). Every page visited is
audited with axe-core and screenshotted at 390 and 1280 px."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from domain.calendar import school_year_of
from tests.e2e.pages.support import audit_page
from tests.fixtures.site import Site

pytestmark = pytest.mark.integration

TODAY = date.today()
STARTS = TODAY - timedelta(days=30)
ENDS = TODAY + timedelta(days=30)


@dataclass
class World:
    site: Site
    a_opportunity: str
    a_placement: str
    b_placement: str


def _ok(response: Any) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def _register(site: Site, organisation: str, person_id: str, role: str) -> None:
    """A person who acts through the API only (no sign-in, so no local account)."""
    _ok(site.call("POST", f"/organisations/{organisation}/people",
                  {"id": person_id, "role": role}))
    site.people[person_id] = (role, organisation, person_id)


def _weekday_since(first: date) -> date:
    day = TODAY - timedelta(days=2)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    assert day >= first
    return day


def _opportunity(site: Site, coordinator: str, organisation: str, title: str) -> str:
    return str(_ok(site.call("POST", "/opportunities", {
        "organisation_id": organisation, "title": title, "employer_name": "Mercy Hospital",
        "worksite": "Ward 3", "wbl_type": "UnpaidInternship", "starts_on": STARTS.isoformat(),
        "ends_on": ENDS.isoformat()}, as_=coordinator))["id"])


def _placement(site: Site, coordinator: str, opportunity: str, learner: str,
               born_on: date) -> str:
    return str(_ok(site.call("POST", "/placements", {
        "opportunity_id": opportunity, "learner_id": learner, "supervisor_id": "sup-x",
        "learner_born_on": born_on.isoformat()}, as_=coordinator))["id"])


@pytest.fixture(scope="module")
def world(site: Site) -> World:
    """Two schools. School A flags (rather than refuses) hours beyond the child-labour
    limits, and its 15-year-old learner has a started placement with a flagged entry and no
    school calendar; school B has a placement of its own."""
    for org, kind in (("school-a", "school"), ("school-b", "school"),
                      ("employer-x", "employer")):
        site.organisation(org, kind)
    site.person("school-a", "coord-a", "coordinator")
    site.person("school-b", "coord-b", "coordinator")
    for org, person, role in (("school-a", "lrn-a1", "learner"),
                              ("school-a", "lrn-a2", "learner"),
                              ("school-a", "grd-a", "guardian"),
                              ("school-b", "lrn-b1", "learner"),
                              ("employer-x", "sup-x", "supervisor")):
        _register(site, org, person, role)
    _ok(site.call("POST", "/organisations/school-a/child-labour-policy", {
        "policy": "flag", "reason": "Work experience program under WECEP"}, as_="coord-a"))
    opportunity = _opportunity(site, "coord-a", "school-a", "Hospital volunteer")
    young = _placement(site, "coord-a", opportunity, "lrn-a2",
                       TODAY - timedelta(days=365 * 15 + 20))
    for who, party in (("lrn-a2", "learner"), ("grd-a", "guardian"), ("sup-x", "employer"),
                       ("coord-a", "coordinator")):
        _ok(site.call("POST", f"/placements/{young}/agreement-signatures",
                      {"party": party, "signed_on": STARTS.isoformat()}, as_=who))
    _ok(site.call("POST", f"/placements/{young}/start", {"started_on": STARTS.isoformat()},
                  as_="coord-a"))
    _ok(site.call("POST", f"/placements/{young}/hours", {
        "work_date": _weekday_since(STARTS).isoformat(), "minutes": 300}, as_="lrn-a2"))
    b_opportunity = _opportunity(site, "coord-b", "school-b", "Library assistant")
    b_placement = _placement(site, "coord-b", b_opportunity, "lrn-b1", date(2004, 5, 1))
    return World(site, opportunity, young, b_placement)


def _until(page: Page, url: str, text: str, seconds: float = 15) -> None:
    """Open ``url`` until it shows ``text``: read models follow the ledger by a moment."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(url)
        if text in page.content() or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    expect(page.locator("main")).to_contain_text(text)


def test_a_coordinator_posts_matches_signs_starts_and_follows_up(world: World,
                                                                  page: Page) -> None:
    site = world.site
    site.sign_in(page, "coord-a")
    expect(page).to_have_url(re.compile(r"/coordinator$"))
    expect(page.get_by_role("heading", name="Placements needing attention")).to_be_visible()

    # post an opportunity: first ending before it starts (refused beside the field)
    page.get_by_role("navigation", name="Main").get_by_role("link",
                                                            name="Opportunities").click()
    audit_page(page, "coordinator-opportunities")
    page.get_by_role("link", name="Post an opportunity").click()
    audit_page(page, "coordinator-opportunity-new")
    page.get_by_label("Title", exact=True).fill("Pharmacy technician intern")
    page.get_by_label("Employer", exact=True).fill("Mercy Hospital")
    page.get_by_label("Worksite").fill("Pharmacy, Ward 1")
    page.get_by_label("Work-based-learning type (CEDS 001499)").select_option("PaidInternship")
    page.get_by_label("Paid", exact=True).check()
    page.get_by_label("Hourly wage in dollars (when paid)").fill("16.50")
    page.get_by_label("First day").fill(STARTS.isoformat())
    page.get_by_label("Last day").fill((STARTS - timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Post the opportunity").click()
    refusal = page.locator("#e-ends_on")
    expect(refusal).to_contain_text("dates-reversed")
    expect(refusal).to_contain_text("before it starts")
    expect(page.get_by_label("Last day")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Title", exact=True)).to_have_value("Pharmacy technician intern")
    audit_page(page, "coordinator-opportunity-refused")
    titles = [o["title"] for o in _ok(site.call(
        "GET", "/opportunities?organisation_id=school-a", as_="coord-a"))]
    assert "Pharmacy technician intern" not in titles, "nothing stored"

    page.get_by_label("Last day").fill(ENDS.isoformat())
    page.get_by_role("button", name="Post the opportunity").click()
    expect(page.get_by_role("status")).to_contain_text("Opportunity posted")
    expect(page.get_by_role("heading", name="Pharmacy technician intern")).to_be_visible()
    audit_page(page, "coordinator-opportunity")
    page.get_by_role("link", name="Revise the opportunity").click()
    expect(page.get_by_label("Title", exact=True)).to_have_value("Pharmacy technician intern")
    page.get_by_label("Places").fill("3")
    audit_page(page, "coordinator-opportunity-revise")
    page.get_by_role("button", name="Save the revision").click()
    expect(page.get_by_role("status")).to_contain_text("Opportunity revised")
    expect(page.locator("dl.facts dt:text-is('Places') + dd")).to_have_text("3")

    # match a learner, then the agreement: who signs and who has signed
    page.get_by_role("link", name="Match a learner").click()
    audit_page(page, "coordinator-match")
    page.get_by_label("Learner's id").fill("lrn-a1")
    page.get_by_label("Learner's date of birth").fill("2004-03-15")
    page.get_by_label("Worksite supervisor's id").fill("sup-x")
    page.get_by_role("button", name="Match the learner").click()
    expect(page.get_by_role("heading", name="Placement of lrn-a1")).to_be_visible()
    placement = page.url.split("/coordinator/placements/")[1].split("?")[0]
    agreement = page.get_by_role("table", name="Who signs, and who has signed")
    expect(agreement).to_contain_text("Coordinator")
    expect(agreement).not_to_contain_text("Parent or guardian")  # an adult: no guardian
    page.get_by_role("button", name="Sign as the coordinator").click()
    expect(page.get_by_role("status")).to_contain_text("Signed as the coordinator")
    expect(agreement.get_by_role("row", name=re.compile("^Coordinator"))).to_contain_text(
        "Signed")
    expect(agreement.get_by_role("row", name=re.compile("^Learner"))).to_contain_text(
        "Not yet")
    audit_page(page, "coordinator-placement-agreement")
    for who, party in (("lrn-a1", "learner"), ("sup-x", "employer")):
        _ok(site.call("POST", f"/placements/{placement}/agreement-signatures",
                      {"party": party}, as_=who))
    page.reload()
    page.get_by_label("First day worked").fill(STARTS.isoformat())
    page.get_by_role("button", name="Start the placement").click()
    expect(page.get_by_role("status")).to_contain_text("Placement started")

    # its timeline, from the audit trail
    page.get_by_role("link", name="Timeline of this placement (audit trail)").click()
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text("Matched learner lrn-a1")
    expect(timeline).to_contain_text("Signed the training agreement as coordinator")
    expect(timeline).to_contain_text("Started the placement")
    audit_page(page, "coordinator-timeline")

    # what needs attention: a month without hours; the minor's flagged hours, no calendar
    _until(page, site.base_url + "/coordinator", "lrn-a1")
    quiet = page.get_by_role("row", name=re.compile(r"^lrn-a1 "))
    expect(quiet).to_contain_text("no-recent-hours")
    young = page.get_by_role("row", name=re.compile(r"^lrn-a2 \(minor\)"))
    expect(young).to_contain_text("minor-flagged")
    expect(young).to_contain_text("calendar-missing")
    expect(page.locator("main")).not_to_contain_text("lrn-b1")
    audit_page(page, "coordinator-attention")

    # the school calendar: add the year (and an exception); calendar-missing goes away
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Calendar").click()
    audit_page(page, "coordinator-calendar-empty")
    years = sorted({school_year_of(STARTS), school_year_of(ENDS)})
    first = int(years[0][:4])
    page.get_by_label("School year", exact=True).fill(years[0])
    page.get_by_label("First instructional day").fill(date(first, 8, 20).isoformat())
    page.get_by_label("Last instructional day").fill(date(first + 1, 6, 10).isoformat())
    page.get_by_role("button", name="Record the year").click()
    expect(page.get_by_role("status")).to_contain_text("School year recorded")
    for later in years[1:]:  # the placement reaches the next school year too
        start = int(later[:4])
        _ok(site.call("POST", "/organisations/school-a/calendar/years", {
            "school_year": later, "first_day": date(start, 8, 20).isoformat(),
            "last_day": date(start + 1, 6, 10).isoformat()}, as_="coord-a"))
    page.get_by_label("Day", exact=True).fill(_weekday_since(STARTS).isoformat())
    page.get_by_label("Why").fill("Snow day: schools closed")
    page.get_by_role("button", name="Record the exception").click()
    expect(page.get_by_role("status")).to_contain_text("Exception recorded")
    expect(page.get_by_role("table", name="School years")).to_contain_text(years[0])
    audit_page(page, "coordinator-calendar")
    page.goto(site.base_url + "/coordinator?reason=calendar-missing")
    expect(page.locator("main")).to_contain_text("Nothing needs attention for this reason")

    # an import with its validation report; the placements list, filtered
    page.get_by_role("navigation", name="Main").get_by_role("link",
                                                            name="Imports & exports").click()
    audit_page(page, "coordinator-imports")
    tracker = ("placement_ref,student_number,given_name,family_name,birth_date,title,"
               "employer_name,wbl_type,start_date,end_date,supervisor_id\n"
               f"T-1,S-1,Rosa,Delgado,2004-04-02,Clerk,Acme,JobShadowing,{STARTS},{ENDS},sup-x\n"
               f"T-2,S-2,Tom,Baker,2004-09-12,Clerk,Acme,Daydreaming,{STARTS},{ENDS},sup-x\n")
    page.get_by_label("What the file holds").select_option("placements")
    page.get_by_label("Record").select_option("valid-rows")
    page.get_by_label("CSV file (UTF-8)").set_input_files(files=[{
        "name": "tracker.csv", "mimeType": "text/csv", "buffer": tracker.encode()}])
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("status")).to_contain_text("Recorded 1 of 2 rows")
    refused = page.get_by_role("table", name="Refused rows (the header is line 1)")
    expect(refused).to_contain_text("unknown-wbl-type")
    expect(refused.get_by_role("cell", name="3", exact=True)).to_be_visible()
    audit_page(page, "coordinator-import-report")

    page.goto(site.base_url + "/coordinator/placements?status=active")
    listed = page.get_by_role("table", name="Placements of school-a")
    expect(listed).to_contain_text("lrn-a1")
    expect(listed).not_to_contain_text("lrn-b1")
    audit_page(page, "coordinator-placements")


def test_another_schools_coordinator_sees_none_of_it(world: World, page: Page) -> None:
    site = world.site
    site.sign_in(page, "coord-b")
    _until(page, site.base_url + "/coordinator/placements", "lrn-b1")
    main = page.locator("main")
    for hidden in ("lrn-a1", "lrn-a2", "Hospital volunteer"):
        expect(main).not_to_contain_text(hidden)
    audit_page(page, "coordinator-b-placements")
    page.goto(site.base_url + "/coordinator")
    expect(main).not_to_contain_text("lrn-a2")
    page.goto(site.base_url + "/coordinator/opportunities")
    expect(main).not_to_contain_text("Hospital volunteer")

    # a direct link to school A's placement: the API's refusal, nothing of the placement
    for path in (f"/coordinator/placements/{world.a_placement}",
                 f"/coordinator/placements/{world.a_placement}/timeline"):
        response = page.goto(site.base_url + path)
        assert response is not None and response.status == 404
        expect(main).to_contain_text("unknown-placement")
        for hidden in ("lrn-a2", "sup-x", "Hospital volunteer", "school-a"):
            expect(main).not_to_contain_text(hidden)
    audit_page(page, "coordinator-b-refused")
    response = page.goto(site.base_url + f"/coordinator/opportunities/{world.a_opportunity}")
    assert response is not None and response.status == 404
    expect(main).not_to_contain_text("Hospital volunteer")
    response = page.goto(site.base_url + f"/coordinator/placements/{world.b_placement}")
    assert response is not None and response.status == 200
    expect(page.get_by_role("heading", name="Placement of lrn-b1")).to_be_visible()
