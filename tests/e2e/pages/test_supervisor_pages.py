"""The supervisor's pages in Chromium against a running `wbl run`, on both stores (issue 17):
one approval queue across the supervisor's placements (several entries approved at once,
the outcome of each shown; one rejected, which needs a reason: without one the rule's name
shows beside the field and nothing is stored), each learner's progress, and an evaluation
with the program's rubric. Another supervisor's entries cannot be approved or rejected
through the pages: the API's refusal is what the page shows, and the entry stays pending.
Every page visited passes axe-core and is photographed at 390 px and 1280 px."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.pages.support import audit_page, ok, program_body
from tests.fixtures.site import Site

pytestmark = pytest.mark.integration

TODAY = date.today()
STARTS = TODAY - timedelta(days=45)
MONDAY = TODAY - timedelta(days=TODAY.weekday() + 14)  # a whole past week, after the start



def started(site: Site, learner: str, supervisor: str, program: str | None) -> str:
    """Posted, matched, signed by every party and started, over HTTP."""
    opportunity = ok(site.call("POST", "/opportunities", {
        "organisation_id": "school-s", "title": "Electrical apprentice" if program else
        "Office intern", "employer_name": "Acme Electric", "worksite": "1 Volt Way",
        "wbl_type": "Apprenticeship" if program else "PaidInternship", "paid": True,
        "hourly_wage": "18.00", "capacity": 5, "starts_on": STARTS.isoformat(),
        "ends_on": (TODAY + timedelta(days=200)).isoformat()}, as_="coord-s"))["id"]
    placement: str = ok(site.call("POST", "/placements", {
        "opportunity_id": opportunity, "learner_id": learner, "supervisor_id": supervisor,
        "learner_born_on": "2000-03-04", "program_id": program}, as_="coord-s"))["id"]
    for who, party in ((learner, "learner"), (supervisor, "employer"),
                       ("coord-s", "coordinator")):
        ok(site.call("POST", f"/placements/{placement}/agreement-signatures",
                     {"party": party}, as_=who))
    ok(site.call("POST", f"/placements/{placement}/start",
                 {"started_on": STARTS.isoformat()}, as_=supervisor))
    return placement


def log(site: Site, placement: str, learner: str, day: int, minutes: int,
        **extra: Any) -> str:
    entry: str = ok(site.call("POST", f"/placements/{placement}/hours", {
        "work_date": (MONDAY + timedelta(days=day)).isoformat(), "minutes": minutes,
        **extra}, as_=learner))["created_id"]
    return entry


@pytest.fixture(scope="module")
def world(site: Site) -> dict[str, str]:
    site.organisation("school-s")
    site.organisation("sponsor-s", "sponsor")
    site.person("school-s", "sup-s1", "supervisor")  # the only one who signs in here
    site.person("school-s", "coord-s", "coordinator", account=False)
    for learner in ("lrn-s1", "lrn-s2", "lrn-s3"):
        site.person("school-s", learner, "learner", account=False)
    site.person("school-s", "sup-s2", "supervisor", account=False)
    site.person("sponsor-s", "spon-s", "sponsor", account=False)
    program = ok(site.call("POST", "/programs", program_body("sponsor-s"), as_="spon-s"))["id"]
    apprentice = started(site, "lrn-s1", "sup-s1", program)
    intern = started(site, "lrn-s2", "sup-s1", None)
    elsewhere = started(site, "lrn-s3", "sup-s2", None)
    return {
        "apprentice": apprentice, "intern": intern, "elsewhere": elsewhere,
        "mon": log(site, apprentice, "lrn-s1", 0, 480, allocations={"Wiring": 480}),
        "tue": log(site, apprentice, "lrn-s1", 1, 420, allocations={"Safety": 420}),
        "wed": log(site, apprentice, "lrn-s1", 2, 450),
        "intern_mon": log(site, intern, "lrn-s2", 0, 240),
        "theirs": log(site, elsewhere, "lrn-s3", 0, 300),
    }


def status(site: Site, placement: str, entry: str, as_: str) -> str:
    hours = ok(site.call("GET", f"/placements/{placement}/hours", as_=as_))
    found: str = next(e["status"] for e in hours["entries"] if e["entry_id"] == entry)
    return found


def test_a_supervisor_approves_several_rejects_one_and_evaluates(
        site: Site, world: dict[str, str], page: Page) -> None:
    apprentice = world["apprentice"]
    site.sign_in(page, "sup-s1")
    expect(page).to_have_url(site.base_url + "/supervisor")
    queue = page.locator("ul.entries > li")
    expect(queue).to_have_count(4)  # both of my placements, none of another supervisor's
    expect(page.get_by_text("lrn-s3")).to_have_count(0)
    audit_page(page, "supervisor-queue")

    # approve two at once; the outcome of each is shown
    page.get_by_label("Learner").select_option("lrn-s1")
    page.get_by_role("button", name="Show").click()
    expect(queue).to_have_count(3)
    page.get_by_label(f"lrn-s1 · Monday {MONDAY.day}", exact=False).check()
    page.get_by_label(f"lrn-s1 · Tuesday {(MONDAY + timedelta(days=1)).day}",
                      exact=False).check()
    page.get_by_role("button", name="Approve selected").click()
    outcome = page.locator(".outcome li")
    expect(outcome).to_have_count(2)
    expect(outcome.filter(has_text="approved")).to_have_count(2)
    expect(queue).to_have_count(2)
    audit_page(page, "supervisor-approved")
    assert status(site, apprentice, world["mon"], "sup-s1") == "approved"
    assert status(site, apprentice, world["tue"], "sup-s1") == "approved"
    approved_at = parse_qs(urlparse(page.url).query)["min_position"][0]

    # reject one: the reason is required
    page.get_by_role("link", name="Reject lrn-s1's entry of Wednesday", exact=False).click()
    audit_page(page, "supervisor-reject")
    page.get_by_role("button", name="Reject the entry").click()
    reason = page.get_by_label("Why you reject it")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#e-reason")).to_contain_text("string_too_short")
    expect(page.locator("#e-reason")).to_contain_text("Say why.")
    audit_page(page, "supervisor-reject-refused")
    assert status(site, apprentice, world["wed"], "sup-s1") == "logged"  # nothing stored
    reason.fill("Not on the rota that day")
    page.get_by_role("button", name="Reject the entry").click()
    expect(page.get_by_role("status")).to_contain_text("The entry was rejected")
    expect(queue).to_have_count(1)
    hours = ok(site.call("GET", f"/placements/{apprentice}/hours", as_="lrn-s1"))
    wednesday = next(e for e in hours["entries"] if e["entry_id"] == world["wed"])
    assert (wednesday["status"], wednesday["rejection_reason"]) == (
        "rejected", "Not on the rota that day")

    # each learner's progress
    page.goto(f"{site.base_url}/supervisor/learners?min_position={approved_at}")
    card = page.locator(".card", has_text="lrn-s1")
    expect(card).to_contain_text("15:00 of 2000:00")
    expect(page.locator(".card", has_text="lrn-s2")).to_contain_text("Office intern")
    audit_page(page, "supervisor-learners")
    card.get_by_role("link", name="Progress and evaluations").click()
    expect(page.get_by_role("row", name="Wiring", exact=False)).to_contain_text("8:00")
    expect(page.get_by_role("row", name="Safety", exact=False)).to_contain_text("7:00")
    audit_page(page, "supervisor-placement")

    # an evaluation with the program's rubric
    page.get_by_role("link", name="Evaluate").click()
    expect(page.get_by_role("group", name="Wiring basics")).to_be_visible()
    expect(page.get_by_role("group", name="Site safety")).to_be_visible()
    audit_page(page, "supervisor-evaluate")
    page.get_by_role("button", name="Record the evaluation").click()  # nothing scored
    expect(page.locator("#e-rubric")).to_contain_text("Score at least one competency.")
    audit_page(page, "supervisor-evaluate-refused")
    page.get_by_role("group", name="Wiring basics").get_by_label("3 Proficient").check()
    page.get_by_role("group", name="Site safety").get_by_label("4 Exemplary").check()
    page.get_by_label("Stage").select_option("final")
    page.get_by_label("Comments").fill("Careful and quick to learn.")
    page.get_by_role("button", name="Record the evaluation").click()
    expect(page.get_by_role("status")).to_contain_text("Your evaluation was recorded")
    expect(page.get_by_role("row", name="Site safety")).to_contain_text("4")
    audit_page(page, "supervisor-placement-evaluated")
    evaluations = ok(site.call("GET", f"/placements/{apprentice}/evaluations", as_="sup-s1"))
    assert [(e["stage"], e["scores"]) for e in evaluations["evaluations"]] == [
        ("final", {"Wiring basics": 3, "Site safety": 4})]
    assert evaluations["evaluation_completed"]


def test_a_supervisor_cannot_review_another_supervisors_entries(
        site: Site, world: dict[str, str], page: Page) -> None:
    elsewhere, theirs = world["elsewhere"], world["theirs"]
    site.sign_in(page, "sup-s1")
    # a tampered form: the queue's checkbox made to name another supervisor's entry
    box = page.locator("input[name=entry]").first
    box.evaluate(f"b => b.value = '{elsewhere}|{theirs}'")
    box.check()
    page.get_by_role("button", name="Approve selected").click()
    refused = page.locator(".outcome li.refused")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("unknown-placement")
    audit_page(page, "supervisor-outcome-refused")
    # nor by address: the API's 404, nothing about the placement revealed
    for path in (f"/supervisor/placements/{elsewhere}/entries/{theirs}/reject",
                 f"/supervisor/placements/{elsewhere}"):
        response = page.goto(site.base_url + path)
        assert response is not None and response.status == 404
        expect(page.get_by_role("alert")).to_contain_text("unknown-placement")
        assert "lrn-s3" not in page.content()
    # nor by a form posted with this session's own token
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    answer = page.request.post(
        f"{site.base_url}/supervisor/placements/{elsewhere}/entries/{theirs}/reject",
        form={"csrf_token": token, "form_id": "tampered-1", "reason": "Not yours"})
    assert answer.status == 404 and "unknown-placement" in answer.text()
    assert status(site, elsewhere, theirs, "sup-s2") == "logged"
