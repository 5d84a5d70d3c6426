"""Server time of every web page with 10,000 placements in the read models (issue 17's
target: p95 <= 100 ms), against the API call each page is built on, in the same run.

    python -m benchmarks.pages [--placements 10000] [--requests 60] [--store sqlite|postgres]

1. A history is written into a fresh store with the ledger in-process: ten schools of a
   district, a thousand placements each, a hundred supervisors of a hundred placements
   each, one sponsor's program for a tenth of them; every placement matched, signed by its
   three parties, started, with two days of hours logged and the first approved.
2. `wbl run` starts on that store (the embedded default, or PostgreSQL with
   WBL_BENCH_DATABASE_URL): its relay publishes the history and its projector builds the
   read models; the benchmark waits until the projections have caught up.
3. One person of each role is registered over the API and given a local account; each
   signs in through the sign-in form like a browser (cookie, CSRF token).
4. Each page is requested ``--requests`` times one after another after a warm-up, and so
   is the API route the page mostly rests on, with a bearer token: the ratio says what the
   page adds (session, its own API calls in-process, the template).

Latency is measured by this client on loopback: server time plus a loopback round trip,
so an upper bound of the server's time. Prints a table and the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from domain.actor import Actor, Role
from infra.broker import free_port
from infra.settings import Settings
from services.api.auth import TokenKey, issue_token
from services.bootstrap import build_ledger

SECRET = "bench-" + "s" * 40
PASSWORD = "a long enough bench password"
DISTRICT = "district-bench"
SPONSOR = "sponsor-bench"
STARTS = date(2026, 9, 1)


def school(i: int) -> str:
    return f"school-{i:02d}"


@dataclass
class History:
    placements: list[tuple[str, str, str, str]]  # (placement id, learner, supervisor, school)
    program_id: str
    events: int
    seconds: float


def write_history(settings: Settings, placements: int, schools: int = 10,
                  supervisors: int = 100) -> History:
    """The placements, written with the ledger's own commands (every rule checked)."""
    started = time.perf_counter()
    ledger = build_ledger(settings)
    made: list[tuple[str, str, str, str]] = []
    try:
        sponsor = Actor("spon-bench", Role.SPONSOR, SPONSOR)
        program = ledger.define_program(
            sponsor, sponsor_id=SPONSOR, sponsor_name="Bench JATC", title="Electrician",
            rapids_code="0159", onet_code="47-2111.00", approach="time_based", ojl_hours=2000,
            work_processes={"Wiring": 1500, "Safety": 500},
            wage_schedule=[{"after_hours": 0, "hourly_wage": Decimal("18.00")}]).aggregate_id
        opportunities = {}
        for s in range(schools):
            coordinator = Actor(f"coord-{s:02d}", Role.COORDINATOR, school(s))
            for kind, title in (("Apprenticeship", "Electrical apprentice"),
                                ("PaidInternship", "Machinist intern")):
                opportunities[s, kind] = ledger.post_opportunity(
                    coordinator, organisation_id=school(s), title=title,
                    employer_name=f"Employer {s}", worksite="1 Volt Way", wbl_type=kind,
                    paid=True, hourly_wage=Decimal("18.00"), capacity=placements,
                    starts_on=STARTS, ends_on=STARTS + timedelta(days=300),
                    posted_on=STARTS - timedelta(days=30)).aggregate_id
        for n in range(placements):
            s = n % schools
            coordinator = Actor(f"coord-{s:02d}", Role.COORDINATOR, school(s))
            learner = Actor(f"lrn-{n:05d}", Role.LEARNER, school(s))
            supervisor = Actor(f"sup-{n % supervisors:03d}", Role.SUPERVISOR, school(s))
            employer = Actor(f"emp-{s:02d}", Role.EMPLOYER, school(s))
            placement = ledger.match_learner(
                coordinator, opportunities[s, "Apprenticeship" if n % 10 == 0
                                           else "PaidInternship"], learner_id=learner.id,
                supervisor_id=supervisor.id, learner_born_on=date(2000, 1, 1),
                program_id=program if n % 10 == 0 else None,
                matched_on=STARTS - timedelta(days=10)).aggregate_id
            for party, actor in (("learner", learner), ("employer", employer),
                                 ("coordinator", coordinator)):
                ledger.sign_agreement(actor, placement, party=party,
                                      signed_on=STARTS - timedelta(days=5))
            ledger.start_placement(coordinator, placement, started_on=STARTS)
            entries = []
            for day in (1, 2):
                entries.append(ledger.log_hours(
                    learner, placement, work_date=STARTS + timedelta(days=day), minutes=240,
                    allocations={"Wiring": 240} if n % 10 == 0 else None).created_id)
            ledger.approve_hours(supervisor, placement, entry_id=str(entries[0]),
                                 approved_on=STARTS + timedelta(days=3))
            made.append((str(placement), learner.id, supervisor.id, school(s)))
        events = ledger.recorder.max_notification_id() or 0
    finally:
        ledger.close()
    return History(made, str(program), events, time.perf_counter() - started)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000, 1)

    return {"p50_ms": at(0.5), "p95_ms": at(0.95), "max_ms": round(ordered[-1] * 1000, 1),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 1)}


def start_service(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "--port",
                                    str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text()[-3000:])
        time.sleep(0.3)


def wait_projected(base: str, admin: dict[str, str], position: int, timeout: float) -> float:
    """Seconds until the read models hold ``position`` (read-your-writes on a query)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        answer = httpx.get(f"{base}/audit-trail?organisation_id={school(0)}&limit=1"
                           f"&min_position={position}", headers=admin, timeout=60)
        if answer.status_code == 200:
            return time.perf_counter() - started
        time.sleep(1)
    raise RuntimeError(f"the projector did not reach position {position} in {timeout} s")


def sign_in(base: str, login: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
    form = client.get("/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, form[:500]
    answer = client.post("/sign-in", data={"login": login, "password": PASSWORD,
                                           "csrf_token": token.group(1), "next": "/"})
    assert answer.status_code == 303, answer.text[:500]
    return client


def timed(get: Callable[[], httpx.Response], requests: int) -> dict[str, float]:
    for _ in range(5):
        answer = get()
        assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    samples = []
    for _ in range(requests):
        began = time.perf_counter()
        answer = get()
        samples.append(time.perf_counter() - began)
        assert answer.status_code == 200, answer.status_code
    return percentiles(samples)


@dataclass(frozen=True)
class Person:
    id: str
    role: str
    organisation: str


def register(base: str, admin: dict[str, str], env: dict[str, str], people: list[Person],
             organisations: list[tuple[str, str]]) -> None:
    with httpx.Client(base_url=base, headers=admin, timeout=60) as client:
        for org, kind in organisations:
            answer = client.post("/organisations", json={"id": org, "name": org, "kind": kind})
            assert answer.status_code in (201, 409), answer.text
        for person in people:
            answer = client.post(f"/organisations/{person.organisation}/people",
                                 json={"id": person.id, "role": person.role})
            assert answer.status_code in (201, 409), answer.text
            made = subprocess.run(
                [sys.executable, "-m", "services.cli", "users", "create", "--person-id",
                 person.id, "--login", person.id, "--password-stdin"], input=PASSWORD + "\n",
                env=env, capture_output=True, text=True, timeout=120)
            assert made.returncode == 0, made.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--placements", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--only", action="append", default=None, help="Only this role's "
                        "pages (repeatable), e.g. --only sponsor.")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="wbl-pages-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")} | {
        "WBL_DATA_DIR": str(folder / "data"), "WBL_JWT_SECRET": SECRET,
        "WBL_COOKIE_SECURE": "false", "WBL_ARGON2_MEMORY_KIB": "8192",
        "WBL_ARGON2_TIME_COST": "1", "WBL_ARGON2_PARALLELISM": "1", "WBL_LOG_LEVEL": "WARNING"}
    if args.store == "postgres":
        env["WBL_DATABASE_URL"] = os.environ.get(
            "WBL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/wbl_bench_pages")
    settings = Settings(data_dir=folder / "data", jwt_secret=SECRET,
                        database_url=env.get("WBL_DATABASE_URL"))
    history = write_history(settings, args.placements)
    print(f"history: {args.placements} placements, {history.events} events in "
          f"{history.seconds:.0f} s", file=sys.stderr)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env["WBL_SITE_URL"] = base
    service = start_service(env | {"WBL_API_PORT": str(port)}, port, folder / "wbl.log")
    key = TokenKey(SECRET.encode(), "wbl-ledger")
    admin = {"Authorization": "Bearer " + issue_token(key, actor_id="adm-bench",
                                                       role=Role.ADMIN)}
    try:
        projected = wait_projected(base, admin, history.events, timeout=3600)
        print(f"projected in {projected:.0f} s", file=sys.stderr)
        first, learner, supervisor, school0 = history.placements[0]
        people = [Person(learner, "learner", school0), Person(supervisor, "supervisor", school0),
                  Person("coord-00", "coordinator", school0),
                  Person("spon-bench", "sponsor", SPONSOR),
                  Person("aud-bench", "state_auditor", school0)]
        register(base, admin, env, people,
                 [(school(s), "school") for s in range(10)] + [(SPONSOR, "sponsor")])
        calendar = httpx.post(f"{base}/organisations/{school0}/calendar/years", json={
            "school_year": "2026-2027", "first_day": "2026-08-24", "last_day": "2027-06-11",
            "breaks": [{"name": "Winter break", "first_day": "2026-12-21",
                        "last_day": "2027-01-01"}]}, headers=admin, timeout=60)
        assert calendar.status_code < 300, calendar.text

        def bearer(person: Person) -> dict[str, str]:
            org = None if person.role == "state_auditor" else person.organisation
            return {"Authorization": "Bearer " + issue_token(
                key, actor_id=person.id, role=Role(person.role), organisation_id=org)}

        p = first
        pages: list[tuple[Person, str, str | None]] = [
            (people[0], "/learner", f"/learners/{learner}/transcript"),
            (people[0], f"/learner/placements/{p}", f"/placements/{p}"),
            (people[0], f"/learner/placements/{p}/timesheet", f"/placements/{p}/hours"),
            (people[0], f"/learner/placements/{p}/progress",
             f"/learners/{learner}/apprenticeship-hours"),
            (people[0], "/learner/transcript", f"/learners/{learner}/transcript"),
            (people[1], "/supervisor", f"/transcripts/experiences?supervisor_id={supervisor}"),
            (people[1], "/supervisor/learners",
             f"/transcripts/experiences?supervisor_id={supervisor}"),
            (people[1], f"/supervisor/placements/{p}", f"/placements/{p}/hours"),
            (people[1], f"/supervisor/placements/{p}/evaluate", f"/placements/{p}"),
            (people[2], "/coordinator",
             f"/organisations/{school0}/placements-needing-attention"),
            (people[2], "/coordinator/opportunities", f"/opportunities?organisation_id={school0}"),
            (people[2], "/coordinator/placements",
             f"/transcripts/experiences?organisation_id={school0}"),
            (people[2], f"/coordinator/placements/{p}", f"/placements/{p}"),
            (people[2], f"/coordinator/placements/{p}/timeline",
             f"/audit-trail?organisation_id={school0}&placement_id={p}"),
            (people[2], "/coordinator/calendar", f"/organisations/{school0}/calendar"),
            (people[2], "/coordinator/imports", None),
            (people[3], "/sponsor", f"/apprenticeship-hours?sponsor_id={SPONSOR}"),
            (people[3], "/sponsor/rapids", None),
            (people[3], "/sponsor/rapids?show=1", f"/exports/rapids?sponsor_id={SPONSOR}"),
            (people[4], "/auditor", "/reports/state/runs"),
            (people[4], "/auditor/audit-trail", None),
            (people[4], "/auditor/audit-trail?verify=1", "/audit-trail/verify"),
        ]
        clients = {person.id: sign_in(base, person.id) for person in people}
        api = httpx.Client(base_url=base, timeout=120)
        results = []
        for person, page, route in pages:
            if args.only and person.role not in args.only:
                continue
            requests = max(args.requests // 6, 5) if "=1" in page else args.requests
            client = clients[person.id]
            page_figures = timed(partial(client.get, page), requests)
            row: dict[str, Any] = {"role": person.role, "page": page, **page_figures,
                                   "requests": requests}
            if route is not None:
                headers = bearer(person)
                api_figures = timed(partial(api.get, route, headers=headers), requests)
                row["api_route"] = route.split("?")[0]
                row["api_p95_ms"] = api_figures["p95_ms"]
                row["page_over_api_p95"] = round(page_figures["p95_ms"]
                                                 / max(api_figures["p95_ms"], 0.1), 2)
            results.append(row)
            print(f"{person.role:14} {page[:48]:48} p50 {row['p50_ms']:7.1f}  p95 "
                  f"{row['p95_ms']:7.1f} ms   api p95 {row.get('api_p95_ms', '-')}",
                  file=sys.stderr)
    finally:
        service.terminate()
        service.wait(timeout=60)
    print(json.dumps({"placements": args.placements, "events": history.events,
                      "store": args.store, "pages": results}, indent=1))


if __name__ == "__main__":
    main()
