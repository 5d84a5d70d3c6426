"""Reads the learner's and the supervisor's pages share: one placement, its entries, its
progress with the chart of hours per week, lists fetched whole, downloads. Every read is an
API call as the signed-in person (decision 054): a placement that is not theirs answers the
API's 404, which the site shows as a page."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from services.web.api_client import Api, Refused
from services.web.deps import paging
from services.web.hours_view import parse_day, today, weekly_bars

CHART_WEEKS = 12
"""Weeks per page of the chart of hours per week."""
LIST_LIMIT = 500
"""The API's largest page of a list."""
CONCURRENT_CALLS = 8

T = TypeVar("T")


def offset_of(request: Request, name: str = "offset") -> int:
    try:
        return max(int(request.query_params.get(name, "0")), 0)
    except ValueError:
        return 0


async def gather_bounded(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Run API calls a few at a time (each is a request into the same app)."""
    gate = asyncio.Semaphore(CONCURRENT_CALLS)

    async def one(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def placement_of(api: Api, placement_id: str) -> dict[str, Any]:
    """The placement from the ledger, as this person may read it."""
    placement: dict[str, Any] = await api.get(f"/placements/{placement_id}")
    return placement


async def opportunity_of(api: Api, placement: dict[str, Any]) -> dict[str, Any] | None:
    """The placement's opportunity (its title and employer, for the page's heading)."""
    try:
        found: dict[str, Any] = await api.get(f"/opportunities/{placement['opportunity_id']}")
    except Refused:
        return None
    return found


async def entry_of(api: Api, placement_id: str, entry_id: str) -> dict[str, Any]:
    hours = await api.get(f"/placements/{placement_id}/hours")
    for entry in hours["entries"]:
        if entry["entry_id"] == entry_id:
            found: dict[str, Any] = entry
            return found
    raise Refused(404, {"type": "/errors/unknown-entry", "detail":
                        f"No hour entry {entry_id} is recorded on this placement.",
                        "field": "entry_id"})


async def every_page(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    """A list route's whole answer, page after page."""
    found: list[dict[str, Any]] = []
    while True:
        page = await api.get(path, limit=LIST_LIMIT, offset=len(found), **params)
        items = page["experiences"] if isinstance(page, dict) else page
        found += items
        if len(items) < LIST_LIMIT:
            return found


async def progress_context(request: Request, api: Api, placement_id: str
                           ) -> dict[str, Any]:
    """Progress toward the apprenticeship (the read model's, ``GET /placements/{id}/
    apprenticeship-hours``) and the chart of hours per week (the ledger's entries)."""
    placement = await placement_of(api, placement_id)
    hours = await api.get(f"/placements/{placement_id}/hours")
    try:
        progress = await api.get(f"/placements/{placement_id}/apprenticeship-hours",
                                 min_position=request.query_params.get("min_position"))
    except Refused as refused:
        if refused.status != 404:
            raise
        progress = None  # not in the read models yet: the page shows the ledger's totals
    now = today()
    ends = parse_day(placement["ends_on"]) or now
    opens = parse_day(placement.get("started_on") or placement["starts_on"])
    bars = weekly_bars(hours["entries"], first=opens, last=min(now, ends))
    offset = offset_of(request)
    shown = bars[offset:offset + CHART_WEEKS]
    return {"placement": placement, "opportunity": await opportunity_of(api, placement),
            "progress": progress, "bars": shown,
            "chart_page": paging(request, offset=offset, shown=len(shown), total=len(bars),
                                 size=CHART_WEEKS)}


def download(content: bytes, media_type: str, name: str) -> Response:
    """An attachment, named in ASCII and in UTF-8 (RFC 6266)."""
    return Response(content, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{name}\"; "
                               f"filename*=UTF-8''{quote(name, safe='')}",
        "Cache-Control": "no-store"})
