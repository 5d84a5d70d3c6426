"""Models and OpenAPI pieces shared by every router."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Header, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.api.errors import ProblemError
from services.ledger import CommandResult


class CommandAccepted(BaseModel):
    """What every command answers: the new version (send it back as ``If-Match``) and the
    event's position in the log (pass it as ``min_position`` to read your own write)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": "5f0c3c1e-8d1e-4a53-9a3c-1f7d2b6c9e10", "version": 4, "position": 42,
         "created_id": "a1f3d2c4-5b6e-4f70-8a9b-0c1d2e3f4a5b"}]})

    id: UUID = Field(description="The aggregate the command changed or created.")
    version: int = Field(examples=[1], description="Its new version; also the `ETag`.")
    position: int = Field(examples=[42], description="Position of the last event recorded.")
    created_id: str | None = Field(
        None, description="The hour entry, evaluation or credential the command created.")


class ProblemIssue(BaseModel):
    field: str
    message: str
    kind: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "type": "/errors/before-start", "title": "The command breaks a rule", "status": 422,
        "detail": "2027-01-03 is before the placement started (2027-01-11).",
        "instance": "/placements/5f0c3c1e-8d1e-4a53-9a3c-1f7d2b6c9e10/hours",
        "field": "work_date"}]})

    type: str = Field(examples=["/errors/dates-reversed"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = None
    errors: list[ProblemIssue] | None = None


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref":
                                                                "#/components/schemas/Problem"}}}}


PROBLEMS: dict[int, str] = {
    400: "Malformed request (JSON, If-Match, Idempotency-Key)",
    401: "No valid bearer token",
    403: "Your role or your part in the record does not allow this",
    404: "Unknown id (or a record you may not see)",
    409: "Wrong state, a concurrent change, or the first request with this key still running",
    412: "If-Match names a stale version",
    413: "Request body too large",
    422: "Invalid request or a broken rule",
    503: "Read model behind (retry)",
}

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: _problem(text) for code, text in PROBLEMS.items()
}
"""Every route declares every refusal it can answer, as problem+json."""


IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=40,
           description='The version you read (its ETag, e.g. `"3"`): the command is refused '
                       'with 412 if the record has moved on since.'),
]

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=255,
           description="Any unique string (a UUID): a retry with the same key and body "
                       "answers the first answer and records nothing new."),
]


def expected_version(if_match: str | None) -> int | None:
    """``If-Match: "3"`` (or ``3``, ``W/"3"``) -> 3; absent or ``*`` -> no check."""
    if if_match is None:
        return None
    value = if_match.strip()
    if value == "*":
        return None
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.isdigit() or len(value) > 12:
        raise ProblemError(400, "bad-if-match", "Bad If-Match",
                           'If-Match carries the ETag you read, e.g. "3".', field="If-Match")
    return int(value)


Day = Annotated[date, Field(ge=date(1900, 1, 1), le=date(2199, 12, 31))]
"""Business dates within a range every rule can compute with (ages, weeks)."""

Text = Annotated[str, Field(min_length=1, max_length=1000)]
Ident = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@-]+$",
                             description="A pseudonymous id (never a name).")]


def accepted(response: Response, result: CommandResult, location: str | None = None
             ) -> CommandAccepted:
    """Answer a command: ETag is the aggregate's new version, Location names it."""
    response.headers["ETag"] = f'"{result.version}"'
    if location is not None:
        response.headers["Location"] = location
    return CommandAccepted(id=result.aggregate_id, version=result.version,
                           position=result.position, created_id=result.created_id)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time the API writes is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
"""A timestamp that always carries its offset (RFC 3339 ``date-time``)."""
