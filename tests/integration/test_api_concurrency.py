"""Safe retries and concurrent writers, over real HTTP (uvicorn on loopback), on SQLite
and PostgreSQL.

- the same command sent 20 times at once with one Idempotency-Key records one event and
  every caller gets the first answer;
- a key reused with another body is refused and records nothing;
- If-Match with a stale version is refused with 412 and records nothing;
- a supervisor's approval and rejection of the same entry sent at once (two sessions)
  end with exactly one decision, every time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import select, update

from infra.api_tables import idempotency
from infra.broker import free_port
from infra.settings import Settings
from services.api.app import create_app
from services.bootstrap import Runtime
from tests.integration.test_api_world import (
    SECRET,
    STARTS,
    World,
    opportunity_body,
    populate,
    tokens_for,
)

pytestmark = pytest.mark.integration


@contextmanager
def served(settings: Settings) -> Iterator[World]:
    runtime = Runtime.build(settings, relay=False, projector=False)
    app = create_app(runtime=runtime)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          limits=httpx.Limits(max_connections=64))
    try:
        world = World(client, runtime, tokens_for(runtime, app))  # type: ignore[arg-type]
        world.api_engine = app.state.api_engine  # type: ignore[attr-defined]
        populate(world)
        yield world
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()


@pytest.fixture
def live(store_settings: Settings) -> Iterator[World]:
    with served(store_settings.model_copy(update={"jwt_secret": SecretStr(SECRET)})) as world:
        yield world


def parallel(n: int, call: Any) -> list[httpx.Response]:
    barrier = threading.Barrier(n)

    def one(i: int) -> httpx.Response:
        barrier.wait()
        return call(i)  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def test_the_same_command_twenty_times_at_once_records_one_event(live: World) -> None:
    key = str(uuid.uuid4())
    body = opportunity_body(title="Twenty at once")
    before = live.position
    responses = parallel(20, lambda i: live.call("coord_a", "POST", "/opportunities", body,
                                                 **{"Idempotency-Key": key}))
    assert live.position == before + 1
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    replayed = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    assert len(replayed) == 19
    assert all(r.headers["etag"] == '"1"' for r in responses)

    again = live.call("coord_a", "POST", "/opportunities", body, **{"Idempotency-Key": key})
    assert again.status_code == 201
    assert again.json() == responses[0].json()
    assert again.headers["idempotent-replayed"] == "true"
    assert live.position == before + 1


def test_a_command_whose_answer_was_lost_is_answered_not_run_again(live: World) -> None:
    """The process died after the command committed and before it stored the answer: the
    retry takes the abandoned key over, runs the route, and the ledger answers from the
    command key stored with the events; nothing is recorded twice."""
    key = str(uuid.uuid4())
    path = f"/placements/{live.placement_id}/hours"
    body = {"work_date": (STARTS + timedelta(days=30)).isoformat(), "minutes": 45}
    first = live.call("learner", "POST", path, body, **{"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    after_first = live.position
    engine = live.api_engine  # type: ignore[attr-defined]
    row = idempotency.c.idempotency_key == key
    deadline = time.monotonic() + 10
    with engine.connect() as conn:  # the answer is stored just after it is sent
        while conn.execute(select(idempotency.c.state).where(row)).scalar() != "done":
            assert time.monotonic() < deadline, "the first answer was never stored"
            time.sleep(0.01)
            conn.rollback()
    with engine.begin() as conn:  # as the dead process left it: pending, long ago
        conn.execute(update(idempotency).where(idempotency.c.idempotency_key == key).values(
            state="pending", status=None, headers=None, body=None,
            created_at=datetime.now(UTC) - timedelta(hours=1)))

    retry = live.call("learner", "POST", path, body, **{"Idempotency-Key": key})
    assert retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert retry.headers["etag"] == first.headers["etag"]
    assert "idempotent-replayed" not in retry.headers  # run again, answered by the ledger
    assert live.position == after_first
    entries = live.ok("learner", "GET", path)["entries"]
    assert [e["entry_id"] for e in entries].count(first.json()["created_id"]) == 1
    assert sum(1 for e in entries if e["work_date"] == body["work_date"]) == 1


def test_a_key_is_per_actor_and_per_request(live: World) -> None:
    key = "same-key"
    base = f"/placements/{live.placement_id}"
    first = live.call("learner", "POST", f"{base}/hours",
                      {"work_date": "2000-01-01", "minutes": 30}, **{"Idempotency-Key": key})
    assert first.status_code == 422  # before the placement started: refused, kept
    before = live.position
    other_body = live.call("learner", "POST", f"{base}/hours",
                           {"work_date": "2000-01-02", "minutes": 30},
                           **{"Idempotency-Key": key})
    assert other_body.status_code == 422
    assert other_body.json()["type"] == "/errors/idempotency-key-reused"
    replay = live.call("learner", "POST", f"{base}/hours",
                       {"work_date": "2000-01-01", "minutes": 30}, **{"Idempotency-Key": key})
    assert replay.status_code == 422
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    # the same key from another actor is another key
    coordinator = live.call("coord_a", "POST", "/opportunities", opportunity_body(),
                            **{"Idempotency-Key": key})
    assert coordinator.status_code == 201
    assert live.position == before + 1
    bad_key = live.call("coord_a", "POST", "/opportunities", opportunity_body(),
                        **{"Idempotency-Key": "with space"})
    assert bad_key.status_code == 400
    assert bad_key.json()["type"] == "/errors/bad-idempotency-key"


def test_stale_if_match_is_refused_with_412(live: World) -> None:
    base = f"/placements/{live.placement_id}"
    version = int(live.client.get(base, headers=live.auth("supervisor")).headers["etag"]
                  .strip('"'))
    entry = live.entries[0]
    before = live.position
    stale = live.call("supervisor", "POST", f"{base}/hours/{entry}/approve", {},
                      **{"If-Match": f'"{version - 1}"'})
    assert stale.status_code == 412
    assert stale.json()["type"] == "/errors/stale-version"
    bad = live.call("supervisor", "POST", f"{base}/hours/{entry}/approve", {},
                    **{"If-Match": "yesterday"})
    assert bad.status_code == 400
    assert bad.json()["type"] == "/errors/bad-if-match"
    assert live.position == before
    fresh = live.call("supervisor", "POST", f"{base}/hours/{entry}/approve", {},
                      **{"If-Match": f'"{version}"'})
    assert fresh.status_code == 200
    assert fresh.headers["etag"] == f'"{version + 1}"'


def test_approve_and_reject_at_once_end_with_exactly_one_decision(live: World) -> None:
    base = f"/placements/{live.placement_id}"
    outcomes: dict[str, int] = {}
    for day in range(20, 30):
        entry = live.log_entry(day)
        before = live.position

        def decide(i: int, entry: str = entry) -> httpx.Response:
            if i == 0:
                return live.call("supervisor", "POST", f"{base}/hours/{entry}/approve", {})
            return live.call("supervisor", "POST", f"{base}/hours/{entry}/reject",
                             {"reason": "Not at the worksite"})

        approve, reject = parallel(2, decide)
        statuses = sorted([approve.status_code, reject.status_code])
        assert statuses[0] == 200 and statuses[1] == 409, (approve.text, reject.text)
        loser = reject if reject.status_code == 409 else approve
        assert loser.json()["type"] in ("/errors/concurrent-change",
                                         "/errors/entry-not-pending")
        placement = live.runtime.ledger.get_placement(UUID(live.placement_id))
        status = placement.entries[entry].status.value
        assert status == ("approved" if approve.status_code == 200 else "rejected")
        # an approval is one event; a rejection two (the placement's and the learner-day's)
        assert live.position == before + (1 if status == "approved" else 2)
        outcomes[status] = outcomes.get(status, 0) + 1
    assert sum(outcomes.values()) == 10


def test_two_writers_with_the_same_if_match_never_both_win(live: World) -> None:
    base = f"/placements/{live.placement_id}"
    version = int(live.client.get(base, headers=live.auth("learner")).headers["etag"]
                  .strip('"'))
    before = live.position

    def log(i: int) -> httpx.Response:
        return live.call("learner", "POST", f"{base}/hours",
                         {"work_date": (STARTS + timedelta(days=40 + i)).isoformat(),
                          "minutes": 15},
                         **{"If-Match": f'"{version}"'})

    responses = parallel(8, log)
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 1, [r.text for r in responses]
    assert all(c in (409, 412) for c in codes if c != 201)
    # one writer only: HoursLogged, and the new learner-day opened with its claim
    assert live.position == before + 3

