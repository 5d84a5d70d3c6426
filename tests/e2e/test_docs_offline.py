"""The API docs work on a school's network without internet (issue 17): in a real Chromium
that may reach nothing but the service, /docs (Swagger UI) lists every operation and /redoc
renders, with every script and style served by the service itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, Route

from infra.settings import Settings
from services.api.app import create_app
from services.bootstrap import Runtime
from tests.fixtures.oidc import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    settings = Settings(data_dir=tmp_path / "data", database_url=None, jwt_secret="d" * 40)
    runtime = Runtime.build(settings, relay=False, projector=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime=runtime), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()


def _offline(page: Page, base: str) -> list[str]:
    """Let the page reach only the service; return what else it tried to load."""
    elsewhere: list[str] = []

    def only_the_service(route: Route) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_service)
    return elsewhere


def test_swagger_ui_lists_every_operation_without_internet(page: Page, service: str) -> None:
    elsewhere = _offline(page, service)
    page.goto(f"{service}/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    operations = page.locator(".opblock").count()
    spec = page.request.get(f"{service}/openapi.json").json()
    documented = sum(len(methods) for methods in spec["paths"].values())
    assert operations == documented > 50
    assert elsewhere == []


def test_redoc_renders_without_internet(page: Page, service: str) -> None:
    elsewhere = _offline(page, service)
    page.goto(f"{service}/redoc")
    page.wait_for_selector("h1", timeout=20_000)
    assert "wbl-ledger" in page.locator("h1").first.inner_text()
    # ReDoc's bundle links its maker's logo in the sidebar footer: the one thing it asks of
    # the internet, not needed to read the reference (refused here, and the page renders)
    assert [u for u in elsewhere if not u.startswith("https://cdn.redoc.ly/")] == []
