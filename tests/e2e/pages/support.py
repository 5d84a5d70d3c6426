"""What every page test does to every page it visits: axe-core (through
axe-playwright-python) for WCAG 2.2 A/AA rules, no serious or critical violation allowed, and
screenshots at a phone's 390 px and a desktop's 1280 px, kept as test artifacts in
``test-artifacts/pages/`` (or ``WBL_TEST_ARTIFACTS``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

ARTIFACTS = Path(os.environ.get("WBL_TEST_ARTIFACTS") or
                 Path(__file__).resolve().parents[3] / "test-artifacts") / "pages"
WIDTHS = (390, 1280)
AXE_OPTIONS: dict[str, Any] = {
    "resultTypes": ["violations"],
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                          "wcag22aa", "best-practice"]},
}
_axe = Axe()


def audit_page(page: Page, name: str) -> None:
    """Screenshot ``page`` at both widths and fail on any serious or critical axe finding.
    The page is left at its original viewport."""
    original = page.viewport_size or {"width": 1280, "height": 800}
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 844 if width < 600 else 800})
            page.screenshot(path=str(ARTIFACTS / f"{slug}-{width}.png"), full_page=True)
            found = _axe.run(page, options=AXE_OPTIONS).response["violations"]
            bad = [f"{v['id']} ({v['impact']}): {v['help']} at "
                   f"{[n['target'] for n in v['nodes']][:3]}"
                   for v in found if v.get("impact") in ("serious", "critical")]
            assert not bad, f"{name} at {width} px: " + "; ".join(bad)
            if width < 600:  # nothing wider than a phone's screen (WCAG 1.4.10 reflow)
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth")
                assert overflow <= 1, f"{name} scrolls sideways at {width} px by {overflow} px"
    finally:
        page.set_viewport_size(original)


def ok(response: Any) -> Any:
    """An API answer that must have succeeded, as JSON (the setup of a page test)."""
    assert response.status_code < 300, response.text
    return response.json()


def program_body(sponsor_id: str) -> dict[str, Any]:
    """An electrician apprenticeship program of ``sponsor_id``, for ``POST /programs``."""
    return {
        "sponsor_id": sponsor_id, "sponsor_name": "Acme JATC", "title": "Electrician",
        "rapids_code": "0159", "onet_code": "47-2111.00", "approach": "hybrid",
        "ojl_hours": 2000, "work_processes": {"Wiring": 1500, "Safety": 500},
        "competencies": ["Wiring basics", "Site safety"],
        "wage_schedule": [{"after_hours": 0, "hourly_wage": "18.00"}],
    }
