"""The pages' way to the ledger: the API's own routes, called in-process as the signed-in
person (decision 054).

Each page request gets a client whose bearer token is a ledger token for the session's
person, valid for a few minutes, and an ASGI transport into the same app: the request goes
through the API's authentication, its one authorisation table, idempotency and validation,
exactly as a request from outside would. A page therefore never shows or does what the API
would refuse this person, and a refusal comes back as the API's RFC 9457 problem, which the
page shows beside the field it names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Request

from services.api.auth import issue_token
from services.web.parts import web_parts
from services.web.sessions import Session

TOKEN_SECONDS = 300


@dataclass
class Refused(Exception):
    """The API refused: its status and problem document."""

    status: int
    problem: dict[str, Any]

    @property
    def code(self) -> str:
        return str(self.problem.get("type", "/errors/refused")).rsplit("/", 1)[-1]

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or self.problem.get("title") or "Refused.")

    def by_field(self) -> dict[str, tuple[str, str]]:
        """Field -> (rule, message), for showing each refusal beside its field."""
        found: dict[str, tuple[str, str]] = {}
        for issue in self.problem.get("errors") or []:
            name = str(issue.get("field", "")).split(".")[-1]
            found.setdefault(name, (str(issue.get("kind", self.code)),
                                    str(issue.get("message", self.detail))))
        named = self.problem.get("field")
        if named and not found:
            found[str(named).split(".")[-1]] = (self.code, self.detail)
        return found


@dataclass
class Api:
    client: httpx.AsyncClient
    positions: list[int] = field(default_factory=list)

    async def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                    json: Any = None, key: str | None = None,
                    if_match: int | None = None) -> httpx.Response:
        headers = {"idempotency-key": key} if key else {}
        if if_match is not None:  # the version the page showed: 412 if it changed since
            headers["if-match"] = f'"{if_match}"'
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        response = await self.client.request(method, path, params=clean, json=json,
                                             headers=headers)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:200]}
            raise Refused(response.status_code, problem if isinstance(problem, dict) else {})
        return response

    async def get(self, path: str, **params: Any) -> Any:
        if self.positions and "min_position" not in params:
            params["min_position"] = max(self.positions)
        return (await self._send("GET", path, params=params)).json()

    async def raw(self, path: str, **params: Any) -> httpx.Response:
        return await self._send("GET", path, params=params)

    async def post(self, path: str, body: Any = None, *, key: str | None = None,
                   if_match: int | None = None) -> Any:
        answer = (await self._send("POST", path, json=body, key=key, if_match=if_match)).json()
        if isinstance(answer, dict) and isinstance(answer.get("position"), int):
            self.positions.append(answer["position"])
        return answer


def api_for(request: Request, session: Session) -> Api:
    parts = web_parts(request)
    actor = session.actor
    token = issue_token(parts.token_key, actor_id=actor.id, role=actor.role,
                        organisation_id=actor.organisation_id, ttl_seconds=TOKEN_SECONDS)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=request.app),
                               base_url="http://pages.internal",
                               headers={"authorization": f"Bearer {token}"}, timeout=60)
    return Api(client)
