"""Approval by emailed link, end to end (issue 16, decision 055), on both stores.

Real parts throughout: the ledger on SQLite and PostgreSQL, the relay and the projector over
a real Kafka-protocol broker (the digests find placements with pending hours in the
transcripts read model), the site (API and pages) over HTTPS in-process, and a real SMTP
server in the test process (aiosmtpd) that receives the digests. A link is read out of the
message received, followed (GET shows, POST acts), and the approval is recorded once with
the supervisor as actor and the link's id; a second use, an expired link, a tampered one and
a link for another supervisor's entry are refused, and so is a rejection without a reason,
with nothing stored. Reminders come after WBL_APPROVAL_REMINDER_DAYS; coordinators see
overdue approvals and name a proxy approver, who then approves by link.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import eventsourcing.domain
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from domain.actor import Role
from infra.api_tables import person_contacts, sign_in_records, used_links
from infra.passwords import LinkSigner
from infra.settings import Settings
from services.api.auth import issue_token
from services.bootstrap import Runtime
from services.jobs.approval_digests import ApprovalDigests, DigestRun
from services.web.site import create_site
from services.workers.read_waits import wait_for_position
from tests.fixtures.smtp import SmtpHandle

pytestmark = pytest.mark.integration

SECRET = "approval-links-test-secret-0123456789abcdef"
LINK_KEY = "approval-links-test-link-key-0123456789abcdef"
SITE = "https://testserver"
TODAY = date.today()
STARTS = TODAY - timedelta(days=60)
ENDS = TODAY + timedelta(days=300)
LINK = re.compile(r"https://testserver/approvals/([A-Za-z0-9_.\-]+)")

ACTORS: dict[str, tuple[str, Role, str | None]] = {
    "admin": ("adm-1", Role.ADMIN, None),
    "coord": ("coord-a", Role.COORDINATOR, "district-a"),
    "coord_b": ("coord-b", Role.COORDINATOR, "district-b"),
    "learner": ("lrn-1", Role.LEARNER, "district-a"),
    "sup-1": ("sup-1", Role.SUPERVISOR, "acme"),
    "sup-2": ("sup-2", Role.SUPERVISOR, "acme"),
    "sup-3": ("sup-3", Role.SUPERVISOR, "acme"),
}
ADDRESSES = {"sup-1": "jo.rivera@acme.example", "sup-3": "sam.okafor@acme.example"}


@dataclass
class Site:
    http: TestClient
    runtime: Runtime
    smtp: SmtpHandle
    tokens: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def call(self, who: str, method: str, path: str, body: Any = None) -> Any:
        return self.http.request(method, path, json=body, headers=self.auth(who))

    def ok(self, who: str, method: str, path: str, body: Any = None) -> Any:
        response = self.call(who, method, path, body)
        assert response.status_code < 300, (method, path, response.text)
        return response.json()

    @property
    def position(self) -> int:
        return self.runtime.ledger.recorder.max_notification_id() or 0

    def placement(self, supervisor: str = "sup-1") -> str:
        opportunity = self.ok("coord", "POST", "/opportunities", {
            "organisation_id": "district-a", "title": "Electrical intern",
            "employer_name": "Acme Electric", "worksite": "1 Volt Way",
            "wbl_type": "PaidInternship", "paid": True, "hourly_wage": "18.00",
            "capacity": 10, "starts_on": STARTS.isoformat(), "ends_on": ENDS.isoformat()})
        placement_id = str(self.ok("coord", "POST", "/placements", {
            "opportunity_id": opportunity["id"], "learner_id": "lrn-1",
            "supervisor_id": supervisor, "learner_born_on": "2000-03-04"})["id"])
        base = f"/placements/{placement_id}"
        for who, party in (("learner", "learner"), (supervisor, "employer"),
                           ("coord", "coordinator")):
            self.ok(who, "POST", f"{base}/agreement-signatures", {"party": party})
        self.ok("coord", "POST", f"{base}/start", {"started_on": STARTS.isoformat()})
        return placement_id

    def log(self, placement_id: str, day: int, minutes: int = 240) -> str:
        result = self.ok("learner", "POST", f"/placements/{placement_id}/hours", {
            "work_date": (STARTS + timedelta(days=day)).isoformat(), "minutes": minutes})
        assert wait_for_position(self.runtime.engine, placement_id, result["position"], 30)
        return str(result["created_id"])

    def digests(self) -> ApprovalDigests:
        return ApprovalDigests.build(self.runtime.settings, self.runtime.ledger,
                                     self.runtime.engine, SITE)

    def events(self, placement_id: str, name: str) -> list[Any]:
        return [e for e in self.runtime.ledger.events.get(UUID(placement_id))
                if type(e).__name__ == name]

    @property
    def api_engine(self) -> Any:
        return self.http.app.state.api_engine  # type: ignore[attr-defined]

    def records(self, kind: str) -> list[dict[str, Any]]:
        with self.api_engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(sign_in_records).where(
                sign_in_records.c.kind == kind)).mappings()]

    def link_used(self, link_id: str) -> bool:
        with self.api_engine.connect() as conn:
            return conn.execute(select(used_links).where(
                used_links.c.link_id == link_id)).first() is not None


@pytest.fixture
def site(store_settings: Settings, kafka_bootstrap: str, topic_name: str,
         smtp_server: SmtpHandle) -> Iterator[Site]:
    settings = store_settings.model_copy(update={
        "kafka_bootstrap_servers": kafka_bootstrap, "topic": topic_name,
        "jwt_secret": SecretStr(SECRET), "link_signing_key": SecretStr(LINK_KEY),
        "smtp_host": smtp_server.host, "smtp_port": smtp_server.port, "smtp_starttls": False,
        "site_url": SITE, "approval_reminder_days": 3, "approval_overdue_days": 7,
        "approval_link_days": 14, "read_wait_timeout_s": 10.0})
    runtime = Runtime.build(settings)
    runtime.start()
    app = create_site(runtime=runtime)
    try:
        with TestClient(app, base_url=SITE) as http:
            tokens = {who: issue_token(app.state.token_key, actor_id=actor_id, role=role,
                                       organisation_id=org)
                      for who, (actor_id, role, org) in ACTORS.items()}
            world = Site(http, runtime, smtp_server, tokens)
            for org, kind in (("district-a", "district"), ("district-b", "district"),
                              ("acme", "employer")):
                world.ok("admin", "POST", "/organisations", {"id": org, "name": org,
                                                             "kind": kind})
            world.ok("coord", "POST", "/organisations/district-a/people",
                     {"id": "lrn-1", "role": "learner"})
            registered = world.ok("admin", "POST", "/organisations/acme/people", {
                "id": "sup-1", "role": "supervisor", "contact_email": ADDRESSES["sup-1"]})
            assert registered["has_contact"] is True
            world.ok("admin", "POST", "/organisations/acme/people",
                     {"id": "sup-2", "role": "supervisor"})  # no address: no digest
            world.ok("admin", "POST", "/organisations/acme/people",
                     {"id": "sup-3", "role": "supervisor"})
            yield world
    finally:
        runtime.stop()


def _links(site: Site, index: int = -1) -> tuple[Any, list[str]]:
    received = site.smtp.messages[index]
    body = received.message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    return received, LINK.findall(text)


def _link_id(token: str) -> str:
    return LinkSigner(LINK_KEY.encode()).open("approval", token).link_id


def _decide(site: Site, token: str, action: str, reason: str = "",
            csrf: str | None = None) -> Any:
    if csrf is None:
        page = site.http.get(f"/approvals/{token}")
        assert page.status_code == 200, page.text
        found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
        assert found is not None
        csrf = found.group(1)
    return site.http.post(f"/approvals/{token}", data={
        "csrf_token": csrf, "action": action, "reason": reason})


def test_a_supervisor_approves_by_link_once(site: Site) -> None:
    placement_id = site.placement()
    first, second = site.log(placement_id, 1), site.log(placement_id, 2, minutes=90)
    run = site.digests().send()
    assert (run.messages, run.entries, run.reminders, run.without_contact) == (1, 2, 0, 0)

    # mail received over SMTP, to the supervisor's address only, one link per entry
    assert len(site.smtp.messages) == 1
    received, tokens = _links(site)
    assert received.rcpt_tos == [ADDRESSES["sup-1"]]
    assert received.message["Subject"] == "Hours awaiting your approval (2 entries)"
    assert len(tokens) == 2 and len(set(tokens)) == 2
    text = received.message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "4 h 00 min of on-the-job learning, learner lrn-1" in text
    assert "1 h 30 min" in text

    # GET shows the entry and acts on nothing (mail scanners prefetch links)
    token = tokens[0]
    before = site.position
    page = site.http.get(f"/approvals/{token}")
    assert page.status_code == 200, page.text
    assert (STARTS + timedelta(days=1)).isoformat() in page.text
    assert "lrn-1" in page.text and "Approve these hours" in page.text
    assert "Why do you reject these hours?" in page.text
    assert page.headers["cache-control"] == "no-store"
    site.http.get(f"/approvals/{token}")
    assert site.position == before and not site.link_used(_link_id(token))

    # POST approves: the event names the supervisor and the link
    done = _decide(site, token, "approve")
    assert done.status_code == 200, done.text
    assert "Hours approved" in done.text
    approvals = site.events(placement_id, "HoursApproved")
    assert len(approvals) == 1
    (approved,) = approvals
    assert approved.entry_id == first
    assert (approved.actor_id, approved.actor_role) == ("sup-1", "supervisor")
    assert approved.link_id == _link_id(token)
    hours = site.ok("sup-1", "GET", f"/placements/{placement_id}/hours")
    assert {e["entry_id"]: e["status"] for e in hours["entries"]} == {
        first: "approved", second: "logged"}

    # a second use is refused, by GET and by POST, and records nothing
    after = site.position
    again = site.http.get(f"/approvals/{token}")
    assert again.status_code == 410 and "link-used" in again.text
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"',
                     site.http.get(f"/approvals/{tokens[1]}").text)
    assert csrf is not None
    twice = _decide(site, token, "approve", csrf=csrf.group(1))
    assert twice.status_code == 410 and "link-used" in twice.text
    assert site.position == after
    assert len(site.events(placement_id, "HoursApproved")) == 1

    # the audit record of link uses: person and reason codes, never a token or address
    used = site.records("link-used")
    assert [(r["method"], r["person_id"], r["reason"]) for r in used] == [
        ("approval", "sup-1", "hours-approved")]
    refused = site.records("link-refused")
    assert {r["reason"] for r in refused} == {"link-used"}
    for row in used + refused:
        assert token not in str(row) and ADDRESSES["sup-1"] not in str(row)

    # the next run mails nothing: the other entry was mailed and no reminder is due
    assert site.digests().send().messages == 0
    assert len(site.smtp.messages) == 1


def test_expired_tampered_and_other_supervisors_links_are_refused(site: Site) -> None:
    placement_id = site.placement()
    entry = site.log(placement_id, 1)
    before = site.position
    data = {"p": placement_id, "e": entry, "s": "sup-1"}

    # expired: signed with the deployment's key 15 days ago, valid for 14
    past = LinkSigner(LINK_KEY.encode(), clock=lambda: time.time() - 15 * 86400)
    expired, _ = past.issue("approval", data, 14 * 86400)
    for response in (site.http.get(f"/approvals/{expired}"),
                     site.http.post(f"/approvals/{expired}", data={"action": "approve"})):
        assert response.status_code == 410 and "link-expired" in response.text

    # tampered: a changed signature, or a password-reset link, opens nothing
    signer = LinkSigner(LINK_KEY.encode())
    genuine, _ = signer.issue("approval", data, 86400)
    reset, _ = signer.issue("password-reset", {"person": "sup-1"}, 86400)
    for token in (genuine[:-3] + ("AAA" if not genuine.endswith("AAA") else "BBB"), reset):
        response = site.http.get(f"/approvals/{token}")
        assert response.status_code == 400 and "link-invalid" in response.text

    # a genuine link naming another supervisor for this entry: not theirs to decide
    other, other_id = signer.issue("approval", {**data, "s": "sup-2"}, 86400)
    page = site.http.get(f"/approvals/{other}")
    assert page.status_code == 403 and "not-your-record" in page.text
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"',
                     site.http.get(f"/approvals/{genuine}").text)
    assert csrf is not None
    posted = _decide(site, other, "approve", csrf=csrf.group(1))
    assert posted.status_code == 403 and "not-your-record" in posted.text
    assert not site.link_used(other_id)

    # a form without the pre-session token is refused
    forged = site.http.post(f"/approvals/{genuine}", data={"action": "approve",
                                                           "csrf_token": "0" * 64})
    assert forged.status_code == 403 and "csrf-token-missing" in forged.text

    assert site.position == before
    assert site.events(placement_id, "HoursApproved") == []
    assert {r["reason"] for r in site.records("link-refused")} >= {
        "link-expired", "link-invalid", "not-your-record"}


def test_a_rejection_needs_a_reason_and_a_decided_entry_is_not_decided_again(
        site: Site) -> None:
    placement_id = site.placement()
    entry, decided = site.log(placement_id, 1), site.log(placement_id, 2)
    site.digests().send()
    _, tokens = _links(site)
    token, decided_token = tokens
    before = site.position

    # no reason: refused beside the field with the rule's name; nothing stored, link unused
    blank = _decide(site, token, "reject", reason="   ")
    assert blank.status_code == 422
    assert 'class="error" id="e-reason"' in blank.text and "reason-required" in blank.text
    assert site.position == before and not site.link_used(_link_id(token))

    rejected = _decide(site, token, "reject", reason="Not on the rota that day")
    assert rejected.status_code == 200 and "Hours rejected" in rejected.text
    (event,) = site.events(placement_id, "HoursRejected")
    assert (event.entry_id, event.actor_id, event.reason, event.link_id) == (
        entry, "sup-1", "Not on the rota that day", _link_id(token))

    # approved over the API meanwhile: the link shows the domain's refusal, stores nothing
    site.ok("sup-1", "POST", f"/placements/{placement_id}/hours/{decided}/approve", {})
    after = site.position
    page = site.http.get(f"/approvals/{decided_token}")
    assert page.status_code == 409 and "entry-not-pending" in page.text
    assert site.position == after and not site.link_used(_link_id(decided_token))


def test_reminders_after_the_configured_days_and_no_digest_without_an_address(
        site: Site) -> None:
    mine, theirs = site.placement("sup-1"), site.placement("sup-2")
    site.log(mine, 1)
    site.log(theirs, 2)
    now = datetime.now(UTC)
    digests = site.digests()

    def run(days: float) -> DigestRun:
        return digests.send(now=now + timedelta(days=days))

    first = run(0)
    assert (first.messages, first.without_contact, first.recipients) == (1, 1, ["sup-1"])
    assert run(1).messages == 0  # mailed already, no reminder due yet
    reminder = run(3.5)  # pending longer than WBL_APPROVAL_REMINDER_DAYS (3)
    assert (reminder.messages, reminder.reminders) == (1, 1)
    received, tokens = _links(site)
    assert received.message["Subject"] == "Reminder: hours still awaiting your approval (1 entry)"
    assert "waiting 3 days" in received.message.get_body(  # type: ignore[union-attr]
        preferencelist=("plain",)).get_content()
    assert len(tokens) == 1
    assert run(4.5).messages == 0  # reminded a day ago
    assert run(7).messages == 1  # and again after three more days
    assert len(site.smtp.messages) == 3
    assert all(m.rcpt_tos == [ADDRESSES["sup-1"]] for m in site.smtp.messages)

    # an address recorded later: sup-2's entry is mailed at the next run
    site.ok("admin", "POST", "/organisations/acme/people/sup-2/contact",
            {"email": "pat.lee@acme.example"})
    later = run(7.1)
    assert (later.messages, later.recipients) == (1, ["sup-2"])
    with site.api_engine.connect() as conn:
        stored = conn.execute(select(person_contacts.c.ciphertext).where(
            person_contacts.c.person_id == "sup-2")).scalar_one()
    assert b"pat.lee" not in bytes(stored)  # encrypted at rest
    site.ok("admin", "POST", "/organisations/acme/people/sup-2/contact", {"email": None})
    people = site.ok("admin", "GET", "/organisations/acme/people")
    assert {p["id"]: p["has_contact"] for p in people} == {
        "sup-1": True, "sup-2": False, "sup-3": False}


def test_overdue_approvals_and_a_proxy_approver_by_link(site: Site,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    mine, theirs = site.placement("sup-1"), site.placement("sup-2")
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    with monkeypatch.context() as patched:  # entries recorded ten days ago
        patched.setattr(eventsourcing.domain, "datetime_now_with_tzinfo",
                        lambda: ten_days_ago)
        old_mine, old_theirs = site.log(mine, 1), site.log(theirs, 1)
        old_theirs_2 = site.log(theirs, 2)
    site.log(theirs, 3)  # today's: not overdue

    overdue = site.ok("coord", "GET", "/organisations/district-a/overdue-approvals")
    assert (overdue["total"], overdue["overdue_after_days"]) == (3, 7)
    items = {i["entry_id"]: i for i in overdue["items"]}
    assert set(items) == {old_mine, old_theirs, old_theirs_2}
    assert items[old_theirs]["days_pending"] == 10
    assert items[old_theirs]["minutes"] == 240
    assert (items[old_theirs]["supervisor_id"], items[old_theirs]["supervisor_has_contact"],
            items[old_theirs]["proxy_approver_id"]) == ("sup-2", False, None)
    assert items[old_mine]["supervisor_has_contact"] is True
    page = site.ok("coord", "GET",
                   "/organisations/district-a/overdue-approvals?limit=1&offset=1")
    assert (page["total"], len(page["items"])) == (3, 1)
    for who in ("coord_b", "learner", "sup-1"):
        refused = site.call(who, "GET", "/organisations/district-a/overdue-approvals")
        assert refused.status_code == 403, refused.text

    # naming a proxy: refusals name the rule and store nothing
    path = f"/placements/{theirs}/proxy-approver"
    before = site.position
    for body, code in (({"proxy_id": "lrn-1", "reason": "x"}, "proxy-not-a-supervisor"),
                       ({"proxy_id": "nobody", "reason": "x"}, "proxy-not-registered"),
                       ({"proxy_id": "sup-2", "reason": "x"}, "proxy-is-supervisor"),
                       ({"proxy_id": "sup-3", "reason": ""}, "invalid-request")):
        refused = site.call("coord", "POST", path, body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"] == f"/errors/{code}"
    assert site.call("coord_b", "POST", path, {"proxy_id": "sup-3", "reason": "x"}
                     ).status_code == 404
    assert site.call("sup-2", "POST", path, {"proxy_id": "sup-3", "reason": "x"}
                     ).status_code == 403
    assert site.position == before
    named = site.ok("coord", "POST", path, {"proxy_id": "sup-3",
                                             "reason": "Supervisor on leave"})
    (event,) = site.events(theirs, "ProxyApproverNamed")
    assert (event.actor_id, event.proxy_id, event.reason) == (
        "coord-a", "sup-3", "Supervisor on leave")
    assert named["version"] == event.originator_version
    # the employer's people are the employer's (or an admin's) to keep: a school's
    # coordinator is refused, an admin records the proxy's address
    assert site.call("coord", "POST", "/organisations/acme/people/sup-3/contact",
                     {"email": ADDRESSES["sup-3"]}).status_code == 403
    site.ok("admin", "POST", "/organisations/acme/people/sup-3/contact",
            {"email": ADDRESSES["sup-3"]})
    shown = site.ok("coord", "GET", "/organisations/district-a/overdue-approvals")
    proxied = {i["entry_id"]: i for i in shown["items"]}[old_theirs]
    assert (proxied["proxy_approver_id"], proxied["proxy_has_contact"]) == ("sup-3", True)

    # the proxy is mailed the placement's pending entries and approves one by link
    run = site.digests().send()
    assert sorted(run.recipients) == ["sup-1", "sup-3"]
    to_proxy = [m for m in site.smtp.messages if m.rcpt_tos == [ADDRESSES["sup-3"]]]
    assert len(to_proxy) == 1
    text = to_proxy[0].message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "you are the proxy approver" in text
    tokens = LINK.findall(text)
    assert len(tokens) == 3
    chosen = next(t for t in tokens
                  if LinkSigner(LINK_KEY.encode()).open("approval", t).data["e"] == old_theirs)
    page = site.http.get(f"/approvals/{chosen}")
    assert page.status_code == 200 and "proxy approver" in page.text
    done = _decide(site, chosen, "approve")
    assert done.status_code == 200, done.text
    (approved,) = site.events(theirs, "HoursApproved")
    assert (approved.entry_id, approved.actor_id, approved.link_id) == (
        old_theirs, "sup-3", _link_id(chosen))

    # the proxy may approve over the API too; another supervisor still may not
    assert site.call("sup-1", "POST",
                     f"/placements/{theirs}/hours/{old_theirs_2}/approve", {}
                     ).status_code == 404
    site.ok("sup-3", "POST", f"/placements/{theirs}/hours/{old_theirs_2}/approve", {})
    left = site.ok("coord", "GET", "/organisations/district-a/overdue-approvals")
    assert {i["entry_id"] for i in left["items"]} == {old_mine}
    assert left["items"][0]["mailings"] == 1 and left["items"][0]["last_mailed_at"]


def test_wbl_approvals_send_digests_writes_to_the_outbox_on_the_embedded_default(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without WBL_SMTP_HOST the same digest is an .eml file in WBL_DATA_DIR/outbox, and
    its link works like a mailed one."""
    from email import message_from_bytes
    from email.policy import default as default_policy

    from typer.testing import CliRunner

    from services.cli import app

    placement_id = site.placement()
    entry = site.log(placement_id, 1)
    settings = site.runtime.settings
    monkeypatch.setenv("WBL_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("WBL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WBL_LINK_SIGNING_KEY", LINK_KEY)
    monkeypatch.setenv("WBL_SITE_URL", SITE)
    monkeypatch.delenv("WBL_SMTP_HOST", raising=False)
    done = CliRunner().invoke(app, ["approvals", "send-digests"])
    assert done.exit_code == 0, done.output
    assert "1 messages sent (1 entries, 0 reminders)" in done.output
    assert ADDRESSES["sup-1"] not in done.output
    assert site.smtp.messages == []
    (written,) = sorted((settings.data_dir / "outbox").glob("*.eml"))
    assert written.stat().st_mode & 0o777 == 0o600
    message = message_from_bytes(written.read_bytes(), policy=default_policy)
    assert message["To"] == ADDRESSES["sup-1"]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    (token,) = LINK.findall(text)
    assert LinkSigner(LINK_KEY.encode()).open("approval", token).data["e"] == entry
    assert site.http.get(f"/approvals/{token}").status_code == 200
    again = CliRunner().invoke(app, ["approvals", "send-digests"])
    assert "0 messages sent" in again.output  # mailed already: not before a reminder


def test_a_store_failure_after_the_claim_gives_the_link_back(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    placement_id = site.placement()
    entry = site.log(placement_id, 1)
    token, link_id = LinkSigner(LINK_KEY.encode()).issue(
        "approval", {"p": placement_id, "e": entry, "s": "sup-1"}, 86400)
    page = site.http.get(f"/approvals/{token}")
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert csrf is not None
    before = site.position

    def unreachable(*_: Any, **__: Any) -> Any:
        raise ConnectionError("the event store went away")

    with monkeypatch.context() as patched:
        patched.setattr(site.runtime.ledger, "approve_hours", unreachable)
        with pytest.raises(ConnectionError):
            _decide(site, token, "approve", csrf=csrf.group(1))
    assert site.position == before and not site.link_used(link_id)
    done = _decide(site, token, "approve")  # the store is back: the same link works
    assert done.status_code == 200, done.text
    (approved,) = site.events(placement_id, "HoursApproved")
    assert approved.link_id == link_id
