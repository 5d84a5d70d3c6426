"""docs/api.md's authorisation matrix and request fields are generated from the code
(services/api/docs.py); these fail when the committed file and the code drift apart, when a
request field has no meaning written down, or when the rules table and the app's routes
disagree. Regenerate with ``python -m services.api.docs``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from services.api import docs
from services.api.app import create_app
from services.api.authz import ROLE_OF, RULES, Rel, Target, endpoint_key

# Redefined by another change (whether a date is a school day comes from the school's
# calendar, not the client): if they reappear in a request, describing them is that change's.
NOT_YET_DESCRIBED = frozenset({"school_day", "school_week"})


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app()


@pytest.fixture(scope="module")
def openapi(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def test_committed_api_md_matches_what_the_generator_writes(openapi: dict[str, Any]) -> None:
    current = docs.API_MD.read_text()
    assert docs.render(current, lambda: openapi) == current, (
        f"docs/api.md is stale: run `{docs.COMMAND}`")


def test_committed_matrix_is_the_rules_table() -> None:
    committed = docs.generated_section(docs.API_MD.read_text(), "authorisation-matrix")
    assert committed == docs.authorisation_matrix()


def api_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) of every HTTP route, into routers FastAPI includes lazily."""
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI >= 0.16x includes routers lazily
            inner = prefix + getattr(getattr(route, "include_context", None), "prefix", "")
            yield from api_routes(route.original_router.routes, inner)
        elif isinstance(route, APIRoute):
            yield prefix + route.path, route


def test_matrix_has_one_row_per_rule_and_every_route_with_a_rule(app: FastAPI) -> None:
    committed = docs.generated_section(docs.API_MD.read_text(), "authorisation-matrix")
    rows = re.findall(r"^\| `([A-Z]+ [^`]+)` \|", committed, re.MULTILINE)
    assert len(rows) == len(set(rows)), "an endpoint is listed twice"
    routes = {endpoint_key(method, path) for path, route in api_routes(app.routes)
              for method in route.methods}
    assert len(routes) > 40, "the app's routes were not found"
    assert set(rows) == set(RULES)
    assert routes - set(rows) == set(), "a route of the app has no row (and no rule)"
    assert set(rows) - routes == set(), "a rule names a route the app does not serve"


def test_research_routes_are_served_and_documented(app: FastAPI) -> None:
    text = docs.API_MD.read_text()
    served = {path for path, _ in api_routes(app.routes)}
    for path in ("/research/placements", "/research/learners"):
        assert path in served
        assert f"`GET {path}`" in docs.generated_section(text, "authorisation-matrix")
        assert f"`GET {path}`" in text.split("## Research exports", 1)[1]
    assert "no endpoint yet" not in text


def test_a_placement_outside_the_cell_is_404_in_the_matrix() -> None:
    """Decision 033: a placement the caller has no part in answers like an unknown id."""
    for name, rule in RULES.items():
        row = next(line for line in docs.authorisation_matrix().splitlines()
                   if line.startswith(f"| `{name}` |"))
        if rule.target in (Target.PLACEMENT, Target.REVIEW):
            assert "404 `unknown-placement`" in row
            assert "not-your-record" not in row
        else:
            assert "404" not in row


def test_a_listed_role_never_gets_not_your_record_on_a_placement() -> None:
    """docs/api.md says a role with a cell gets 404 or success on a placement, never 403
    ``not-your-record``: true while each role has exactly one relation (a role with two,
    say a sponsor that is also the organisation's coordinator, would need a new sentence)."""
    roles = list(ROLE_OF.values())
    assert len(roles) == len(set(roles))


def test_role_cells_follow_the_rules() -> None:
    for rule in RULES.values():
        for role in docs.ROLE_HEADINGS:
            cell = docs.role_cell(rule, role)
            assert bool(cell) == (rule.public or role in rule.roles)
        if Rel.ANY in rule.allowed:
            assert {docs.role_cell(rule, role) for role in docs.ROLE_HEADINGS} == {"yes"}


def test_docs_never_say_403_for_a_placement_one_may_not_see() -> None:
    text = docs.API_MD.read_text()
    for line in text.splitlines():
        if line.startswith("| 403 |"):
            assert "Never for a placement you have no part in: that is 404" in line
        if line.startswith("| 404 |"):
            assert "unknown-placement" in line and "decision 033" in line


def _request_properties(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    components = openapi["components"]["schemas"]
    found = []
    for route, model, _ in docs.request_bodies(openapi):
        for name, schema, _ in docs.body_fields(model, components):
            found.append((route, name, dict(schema)))
    return found


def test_every_route_with_a_body_is_found(openapi: dict[str, Any]) -> None:
    with_body = {f"{method.upper()} {path}" for path, operations in openapi["paths"].items()
                 for method, operation in operations.items() if "requestBody" in operation}
    assert {route for route, _, _ in docs.request_bodies(openapi)} == with_body
    assert with_body, "no request bodies found: the OpenAPI document changed shape"


def test_every_request_field_has_a_description(openapi: dict[str, Any]) -> None:
    missing = [f"{route}: {name}" for route, name, schema in _request_properties(openapi)
               if name.rsplit(".", 1)[-1] not in NOT_YET_DESCRIBED
               and not str(schema.get("description") or "").strip()]
    assert not missing, f"request fields without a description (pydantic Field): {missing}"


def test_every_request_model_refuses_unknown_fields(openapi: dict[str, Any]) -> None:
    """docs/api.md says so; it guards against mass assignment (OWASP API3)."""
    components = openapi["components"]["schemas"]
    for route, model, _ in docs.request_bodies(openapi):
        assert model.get("additionalProperties") is False, route
    for _, _, schema in _request_properties(openapi):
        nested = docs._nested(schema, components)
        if nested is not None:
            assert nested[1].get("additionalProperties") is False


def test_every_request_field_is_in_the_committed_docs(openapi: dict[str, Any]) -> None:
    section = docs.generated_section(docs.API_MD.read_text(), "request-fields")
    for route, name, _ in _request_properties(openapi):
        part = section.split(f"### `{route}`", 1)
        assert len(part) == 2, f"{route} has no section"
        assert f"| `{name}` |" in part[1].split("### ", 1)[0], f"{route}: {name}"


def test_a_missing_marker_is_an_error() -> None:
    with pytest.raises(ValueError, match="authorisation-matrix"):
        docs.replace_sections("# no markers", {"authorisation-matrix": "x"})
