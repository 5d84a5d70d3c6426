"""The generated sections of docs/api.md: who may call what, and what every request field means.

Hand-kept copies of the authorisation table and of the request models drift from the code
(the matrix once listed a researcher endpoint as missing while two were served). So both
are generated: the matrix from ``RULES`` in services/api/authz.py, the request fields from
the app's own OpenAPI document (the pydantic ``Field`` descriptions, which /docs shows too).
``python -m services.api.docs`` rewrites the text between each pair of marker comments in
docs/api.md and leaves the rest, which is prose, alone; tests/unit/test_api_docs.py fails
when the committed file and the code disagree. The same pattern as ``python -m
infra.schemas`` for the event contract.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from domain.actor import Role
from services.api.auth import TOKEN_ROLES
from services.api.authz import ROLE_OF, RULES, SCOPE_PARAMETER, Rel, Rule, Target

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"

COMMAND = "python -m services.api.docs"

ROLE_HEADINGS: dict[Role, str] = {
    Role.LEARNER: "learner",
    Role.SUPERVISOR: "supervisor",
    Role.COORDINATOR: "coordinator",
    Role.SPONSOR: "sponsor",
    Role.GUARDIAN: "guardian",
    Role.STATE_AUDITOR: "state auditor",
    Role.RESEARCHER: "researcher",
    Role.ADMIN: "admin",
}
"""The matrix's columns: every role a token may carry, in the order people meet them."""

UNSEEN_PLACEMENT = "404 `unknown-placement`"
NOT_YOURS = "403 `not-your-record`"

# What a listed role gets when the relation its cell names does not hold: decision 033.
# A placement the actor has no part in answers exactly like an unknown id; every other
# record (organisation, opportunity, program sponsor, learner, query scope) is not
# personal data or is checked without revealing existence, and answers 403.
OUTSIDE: dict[Target, str] = {
    Target.NONE: "",
    Target.PLACEMENT: UNSEEN_PLACEMENT,
    Target.REVIEW: f"{UNSEEN_PLACEMENT}; 403 `own-hours` for hours they logged or worked",
    Target.OPPORTUNITY: NOT_YOURS,
    Target.BODY_OPPORTUNITY: NOT_YOURS,
    Target.BODY_ORGANISATION: NOT_YOURS,
    Target.BODY_SPONSOR: NOT_YOURS,
    Target.ORGANISATION: NOT_YOURS,
    Target.LEARNER: f"{NOT_YOURS}, for every other id, existing or not",
    Target.QUERY_SCOPE: f"{NOT_YOURS} (the scope parameter missing or not theirs)",
}


def _cell(rule: Rule, rel: Rel) -> str:
    """What one relation allows, in the words of the matrix's legend."""
    target = rule.target
    if rel in (Rel.AUDITOR, Rel.ADMIN, Rel.RESEARCHER, Rel.ANY) or target is Target.NONE:
        return "yes"
    if target in (Target.PLACEMENT, Target.REVIEW):
        return {Rel.OWN_LEARNER: "own", Rel.OWN_SUPERVISOR: "own",
                Rel.ORG_COORDINATOR: "org", Rel.ORG_GUARDIAN: "org",
                Rel.PROGRAM_SPONSOR: "program"}.get(rel, rel.value)
    if target is Target.ORGANISATION:
        return "own org (path)"
    if target is Target.BODY_ORGANISATION:
        return "own org (`organisation_id`)"
    if target is Target.BODY_SPONSOR:
        return "itself (`sponsor_id`)"
    if target in (Target.OPPORTUNITY, Target.BODY_OPPORTUNITY):
        return "org of the opportunity"
    if target is Target.LEARNER:
        return "themself" if rel is Rel.OWN_LEARNER else "learner registered in own org"
    if target is Target.QUERY_SCOPE:
        role = ROLE_OF[rel]
        own = "self" if role in (Role.SUPERVISOR, Role.LEARNER) else "own org"
        return f"`{SCOPE_PARAMETER[role]}`={own}"
    return rel.value  # pragma: no cover - every target is named above


def role_cell(rule: Rule, role: Role) -> str:
    """The matrix cell of one role for one rule: empty means 403 ``role-not-permitted``."""
    if rule.public:
        return "anyone"
    if Rel.ANY in rule.allowed:
        return "yes"
    cells = [_cell(rule, rel) for rel in sorted(rule.allowed) if ROLE_OF[rel] is role]
    return ", ".join(dict.fromkeys(cells))


def authorisation_matrix(rules: Mapping[str, Rule] = RULES) -> str:
    """The role x endpoint table, one row per rule, in the order of the rules table."""
    roles = [r for r in ROLE_HEADINGS if r in TOKEN_ROLES]
    head = ["endpoint", *(ROLE_HEADINGS[r] for r in roles), "a listed role outside its cell",
            "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rule in rules.items():
        outside = "no token needed" if rule.public else OUTSIDE[rule.target]
        row = [f"`{name}`", *(role_cell(rule, r) for r in roles), outside, rule.note]
        lines.append("| " + " | ".join(_escape(c) for c in row) + " |")
    return "\n".join(lines)


# -- request fields ----------------------------------------------------------------------

def _escape(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _ref_name(schema: Mapping[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _type(schema: Mapping[str, Any], components: Mapping[str, Any]) -> str:
    """A short, readable type: ``date``, ``integer 1..1440``, ``one of `a`, `b` ``..."""
    name = _ref_name(schema)
    if name is not None:
        target = components[name]
        if "enum" in target:
            return "one of " + ", ".join(f"`{v}`" for v in target["enum"])
        return f"object ({name.removesuffix('-Input')})"
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        nullable = len(options) < len(schema["anyOf"])
        numeric = {o.get("type") for o in options} == {"number", "string"}
        text = "decimal" if numeric else " or ".join(_type(o, components) for o in options)
        return f"{text} or null" if nullable else text
    kind = schema.get("type")
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if kind == "array":
        return f"list of {_type(schema.get('items', {}), components)}"
    if kind == "object":
        values = schema.get("additionalProperties")
        if isinstance(values, dict):
            return f"map of string to {_type(values, components)}"
        return "object"
    if kind == "string" and "format" in schema:
        return str(schema["format"])
    if kind == "integer":
        low, high = _bound(schema.get("minimum")), _bound(schema.get("maximum"))
        if low or high:
            return f"integer {low}..{high}"
    return str(kind or "any")


def _bound(value: object) -> str:
    """``1.0`` -> ``1``: OpenAPI hands integer bounds over as JSON numbers."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _nested(schema: Mapping[str, Any], components: Mapping[str, Any]
            ) -> tuple[str, Mapping[str, Any]] | None:
    """(suffix, object schema) of a property holding objects: ``[]`` for lists of them."""
    for option in [schema, *schema.get("anyOf", [])]:
        name = _ref_name(option)
        if name is not None and "properties" in components[name]:
            return "", components[name]
        items = option.get("items")
        if isinstance(items, dict):
            name = _ref_name(items)
            if name is not None and "properties" in components[name]:
                return "[]", components[name]
    return None


def body_fields(model: Mapping[str, Any], components: Mapping[str, Any], prefix: str = ""
                ) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """Every property of a request model, nested objects flattened (``items[].entry_id``):
    (dotted name, its schema, required)."""
    required = set(model.get("required", []))
    for name, schema in model.get("properties", {}).items():
        yield f"{prefix}{name}", schema, name in required
        nested = _nested(schema, components)
        if nested is not None:
            suffix, inner = nested
            yield from body_fields(inner, components, f"{prefix}{name}{suffix}.")


def request_bodies(openapi: Mapping[str, Any]
                   ) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """("METHOD /path", the body's model schema, body required) for every route taking JSON."""
    components = openapi.get("components", {}).get("schemas", {})
    for path, operations in openapi.get("paths", {}).items():
        for method, operation in operations.items():
            body = operation.get("requestBody")
            if not body:
                continue
            schema = body["content"]["application/json"]["schema"]
            for option in [schema, *schema.get("anyOf", [])]:
                name = _ref_name(option)
                if name is not None:
                    yield f"{method.upper()} {path}", components[name], bool(
                        body.get("required"))
                    break


def request_fields(openapi: Mapping[str, Any]) -> str:
    """One table per route with a JSON body: field, type, required or default, meaning."""
    components = openapi.get("components", {}).get("schemas", {})
    parts: list[str] = []
    for route, model, body_required in request_bodies(openapi):
        parts.append(f"### `{route}`")
        summary = model.get("description")
        if summary:
            parts.append(_escape(summary))
        if not body_required:
            parts.append("The body is optional.")
        lines = ["| field | type | required | meaning |", "|---|---|---|---|"]
        for name, schema, required in body_fields(model, components):
            need = "yes" if required else (
                f"no (default `{json.dumps(schema['default'])}`)" if "default" in schema
                else "no")
            meaning = schema.get("description") or "(not yet described)"
            lines.append("| " + " | ".join(_escape(c) for c in (
                f"`{name}`", _type(schema, components), need, meaning)) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


# -- the file -------------------------------------------------------------------------------

def _markers(name: str) -> tuple[str, str]:
    return (f"<!-- BEGIN GENERATED {name}: `{COMMAND}` writes this; do not edit by hand -->",
            f"<!-- END GENERATED {name} -->")


def sections(openapi: Mapping[str, Any]) -> dict[str, str]:
    """Name -> generated Markdown of every generated section of docs/api.md."""
    return {"authorisation-matrix": authorisation_matrix(),
            "request-fields": request_fields(openapi)}


def replace_sections(text: str, generated: Mapping[str, str]) -> str:
    """The document with the text between each pair of markers replaced.

    A missing marker is an error, not a silent append: the prose around a section says what
    it means, so the section belongs where a person put it."""
    for name, body in generated.items():
        begin, end = _markers(name)
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
        found = pattern.search(text)
        if found is None:
            raise ValueError(f"docs/api.md lacks the markers of section {name!r}: {begin}")
        text = f"{text[:found.start()]}{begin}\n\n{body}\n\n{end}{text[found.end():]}"
    return text


def generated_section(text: str, name: str) -> str:
    """The Markdown between one pair of markers (for tests that read the committed file)."""
    begin, end = _markers(name)
    start = text.index(begin) + len(begin)
    return text[start:text.index(end, start)].strip()


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document, built without a runtime (no store, no broker)."""
    from services.api.app import create_app  # imported late: the app imports every router

    return create_app().openapi()


def render(text: str, openapi: Callable[[], Mapping[str, Any]] = openapi_document) -> str:
    return replace_sections(text, sections(openapi()))


def main(argv: list[str] | None = None) -> int:
    """Rewrite docs/api.md's generated sections; ``--check`` only says whether they are stale."""
    args = sys.argv[1:] if argv is None else argv
    current = API_MD.read_text()
    updated = render(current)
    if "--check" in args:
        if updated != current:
            print(f"docs/api.md is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    if updated != current:
        API_MD.write_text(updated)
        print("docs/api.md rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
