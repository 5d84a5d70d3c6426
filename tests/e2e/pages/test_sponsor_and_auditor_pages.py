"""The sponsor's and the state auditor's pages in Chromium against a running `wbl run`, on
both stores (issue 17): a sponsor sees the apprentices of its programs with their hours and
downloads the RAPIDS export; another sponsor sees none of them; an auditor runs and keeps
the state report, downloads it, sees what changed since the previous run, and sees the audit
trail verify. Every page visited passes axe-core and is photographed at both widths."""

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

STARTS = date(2026, 9, 1)



@pytest.fixture(scope="module")
def world(site: Site) -> dict[str, Any]:
    """A district, a sponsor with a program, an apprentice with approved hours."""
    for org, kind in (("district-a", "district"), ("sponsor-a", "sponsor"),
                      ("sponsor-b", "sponsor")):
        site.organisation(org, kind)
    site.person("district-a", "coord-a", "coordinator")
    site.person("district-a", "lrn-1", "learner")
    site.person("district-a", "sup-1", "supervisor")
    site.person("sponsor-a", "spon-a", "sponsor")
    site.person("sponsor-b", "spon-b", "sponsor")
    site.person("district-a", "aud-1", "state_auditor")
    program = ok(site.call("POST", "/programs", program_body("sponsor-a"), as_="spon-a"))["id"]
    opportunity = ok(site.call("POST", "/opportunities", {
        "organisation_id": "district-a", "title": "Electrical apprentice",
        "employer_name": "Acme Electric", "worksite": "1 Volt Way",
        "wbl_type": "Apprenticeship", "paid": True, "hourly_wage": "18.00", "capacity": 5,
        "starts_on": STARTS.isoformat(), "ends_on": (STARTS + timedelta(days=300)).isoformat()},
        as_="coord-a"))["id"]
    placement = ok(site.call("POST", "/placements", {
        "opportunity_id": opportunity, "learner_id": "lrn-1", "supervisor_id": "sup-1",
        "learner_born_on": "2000-03-04", "program_id": program}, as_="coord-a"))["id"]
    for who, party in (("lrn-1", "learner"), ("sup-1", "employer"), ("coord-a", "coordinator")):
        ok(site.call("POST", f"/placements/{placement}/agreement-signatures",
                     {"party": party}, as_=who))
    ok(site.call("POST", f"/placements/{placement}/start", {"started_on": STARTS.isoformat()},
                 as_="sup-1"))
    position = 0
    for day in range(1, 4):
        entry = ok(site.call("POST", f"/placements/{placement}/hours", {
            "work_date": (STARTS + timedelta(days=day)).isoformat(), "minutes": 450,
            "allocations": {"Wiring": 450}}, as_="lrn-1"))["created_id"]
        position = ok(site.call("POST", f"/placements/{placement}/hours/{entry}/approve",
                                {}, as_="sup-1"))["position"]
    # the projector has caught up when the sponsor's query can read that position
    ok(site.call("GET", f"/apprenticeship-hours?sponsor_id=sponsor-a&min_position={position}",
                 as_="spon-a"))
    return {"placement": placement, "program": program}


def test_a_sponsor_sees_its_apprentices_and_exports_rapids(
        site: Site, world: dict[str, Any], page: Page) -> None:
    # the credentials column reads only the page's placements, within the sponsor's scope
    one = ok(site.call("GET", "/transcripts/experiences?sponsor_id=sponsor-a&placement_id="
                       f"{world['placement']}&placement_id=nope", as_="spon-a"))
    assert [e["placement_id"] for e in one] == [world["placement"]]
    assert ok(site.call("GET", "/transcripts/experiences?sponsor_id=sponsor-b&placement_id="
                        f"{world['placement']}", as_="spon-b")) == []
    site.sign_in(page, "spon-a")
    expect(page).to_have_url(site.base_url + "/sponsor")
    audit_page(page, "sponsor-apprentices")
    row = page.get_by_role("row").filter(has_text="lrn-1")
    expect(row).to_contain_text("Electrician")
    expect(row).to_contain_text("22:30")  # 3 x 7 h 30, exact
    expect(row).to_contain_text("2000:00")
    page.get_by_role("link", name="RAPIDS export").click()
    expect(page.get_by_role("heading", name="RAPIDS export")).to_be_visible()
    page.get_by_role("button", name="Show the rows").click()
    audit_page(page, "sponsor-rapids")
    expect(page.get_by_role("table")).to_contain_text("0159")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    saved = download.value.path()
    assert "0159" in Path(saved).read_text(encoding="utf-8")


def test_another_sponsor_sees_none_of_them(site: Site, world: dict[str, Any],
                                          page: Page) -> None:
    site.sign_in(page, "spon-b")
    expect(page.get_by_text("No apprentices match.")).to_be_visible()
    assert "lrn-1" not in page.content()
    # and the auditor's pages are not a sponsor's
    response = page.goto(site.base_url + "/auditor")
    assert response is not None and response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("role-not-permitted")


def _run_report(page: Page, min_cell: str = "1") -> None:
    page.get_by_label("Period name").fill("2026-27")
    page.get_by_label("First day").fill("2026-07-01")
    page.get_by_label("Last day").fill("2027-06-30")
    page.get_by_label("Smallest cell shown").fill(min_cell)
    page.get_by_role("button", name="Run the report").click()


def test_an_auditor_keeps_runs_downloads_and_compares_them(
        site: Site, world: dict[str, Any], page: Page) -> None:
    site.sign_in(page, "aud-1")
    expect(page).to_have_url(site.base_url + "/auditor")
    audit_page(page, "auditor-runs")
    # a refusal beside its field, nothing kept
    page.get_by_label("Period name").fill("2026-27")
    page.get_by_label("First day").fill("2027-07-01")
    page.get_by_label("Last day").fill("2026-06-30")
    page.get_by_role("button", name="Run the report").click()
    expect(page.locator("#e-ends_on")).to_contain_text("dates-reversed")
    audit_page(page, "auditor-runs-refused")
    assert ok(site.call("GET", "/reports/state/runs", as_="aud-1"))["total"] == 0

    _run_report(page)
    expect(page.get_by_role("heading", level=1)).to_contain_text("State report run")
    expect(page.get_by_text("first run kept")).to_be_visible()
    audit_page(page, "auditor-run")
    first_hash = page.locator("dd code").inner_text()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download JSON").click()
    kept = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert kept["content_hash"] == first_hash

    # more approved hours, then a second run: the page shows what changed
    entry = ok(site.call("POST", f"/placements/{world['placement']}/hours", {
        "work_date": (STARTS + timedelta(days=6)).isoformat(), "minutes": 120,
        "allocations": {"Safety": 120}}, as_="lrn-1"))["created_id"]
    ok(site.call("POST", f"/placements/{world['placement']}/hours/{entry}/approve", {},
                 as_="sup-1"))
    page.goto(site.base_url + "/auditor")
    _run_report(page)
    expect(page.get_by_role("table")).to_contain_text("cells changed since")
    audit_page(page, "auditor-run-difference")
    assert page.locator("dd code").inner_text() != first_hash

    page.get_by_role("link", name="Audit trail").click()
    page.get_by_role("button", name="Verify the audit trail now").click()
    expect(page.get_by_role("status")).to_contain_text("Verified")
    audit_page(page, "auditor-audit-trail")
