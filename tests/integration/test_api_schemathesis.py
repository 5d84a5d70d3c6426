"""The app against its own OpenAPI schema, with schemathesis generating the requests.

Every operation gets a bounded number of generated cases (valid and invalid), sent
in-process to the ASGI app over the API world of `test_api_world` (SQLite store, no
broker), with an admin's token (admins may call almost everything). For each case:

- no 5xx;
- the status code, the content type and the body are those the schema declares;
- a 4xx leaves the event store exactly as it was (nothing recorded).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.api.app import create_app
from tests.integration.test_api_world import World, api_settings, build_world

MAX_EXAMPLES = int(os.environ.get("WBL_TEST_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path: Path = tmp_path_factory.mktemp("fuzz")
    yield from build_world(api_settings(path))


def _operations() -> list[Any]:
    """Every (method, path) of the app's schema (built without a runtime: schema only)."""
    paths = create_app().openapi()["paths"]
    operations = []
    for path, item in paths.items():
        for method in item:
            key = (method.upper(), path)
            operations.append(pytest.param(*key, id=f"{key[0]} {key[1]}"))
    return operations


@pytest.fixture(scope="module")
def api_schema(fuzz_world: World) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_world.client.app)


def no_server_error(ctx: Any, response: schemathesis.Response, case: schemathesis.Case
                    ) -> bool | None:
    """``not_a_server_error``, except the one designed 5xx: 503 ``read-model-behind`` (with
    Retry-After) when a query waits for a position the read models have not reached. This
    world runs no projector, so any ``min_position`` gets it."""
    if response.status_code == 503 and response.headers.get("content-type", [""])[0].startswith(
        "application/problem+json"
    ) and b"read-model-behind" in response.content:
        return True
    return not_a_server_error(ctx, response, case)  # type: ignore[no-any-return]


CHECKS = [no_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_operation_conforms_and_refusals_record_nothing(
    api_schema: schemathesis.BaseSchema, fuzz_world: World, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    authorization = fuzz_world.auth("admin")["Authorization"]

    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              derandomize=MAX_EXAMPLES <= 12,  # the default run is the same every time
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        before = fuzz_world.position
        case.headers = {**(case.headers or {}), "Authorization": authorization}
        response = case.call_and_validate(checks=CHECKS)
        if 400 <= response.status_code < 500:
            assert fuzz_world.position == before, (
                f"{method} {path} answered {response.status_code} but recorded events")

    run()
