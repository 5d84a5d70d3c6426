"""Response models shared by every router."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field


class CommandAccepted(BaseModel):
    """What every command answers: the new version (send it back as ``If-Match``) and the
    event's position in the log (pass it as ``min_position`` to read your own write)."""

    id: UUID
    version: int = Field(examples=[1])
    position: int = Field(examples=[42])


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=["/errors/dates-reversed"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (400, 404, 409, 412, 413, 422)
}
