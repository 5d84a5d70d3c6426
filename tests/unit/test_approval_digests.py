"""The approval digests' schedule and wording (decision 055): a run at once and then every
period until stopped, a failed run logged and retried next time; subjects that say when a
message is a reminder; hours as whole minutes, never a fraction."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from infra.passwords import LinkSigner
from infra.settings import Settings
from services.jobs.approval_digests import (
    ApprovalDigests,
    PendingApproval,
    hours_text,
    run_periodically,
)

NOW = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)


def _item(entry_id: str, days_ago: int, proxy: str | None = None) -> PendingApproval:
    return PendingApproval(
        placement_id="5f0c3c1e-8d1e-4a53-9a3c-1f7d2b6c9e10", organisation_id="district-a",
        learner_id="lrn-1", supervisor_id="sup-1", proxy_approver_id=proxy,
        entry_id=entry_id, work_date=date(2027, 3, 1), minutes=275, kind="on_the_job",
        logged_at=NOW - timedelta(days=days_ago, hours=1))


def _digests() -> ApprovalDigests:
    none: Any = None
    return ApprovalDigests(ledger=none, read_models=none, api_engine=none, contacts=none,
                           mailer=none, links=LinkSigner(b"k" * 32), settings=Settings(),
                           base_url="https://wbl.example/")


def test_hours_are_written_in_whole_minutes() -> None:
    assert hours_text(275) == "4 h 35 min"
    assert hours_text(60) == "1 h 00 min"
    assert _item("e", 3).days_pending(NOW) == 3


def test_a_digest_lists_each_entry_with_its_own_link_and_a_reminder_says_so() -> None:
    digests = _digests()
    subject, text = digests.message_text("sup-1", [(_item("e-1", 0), False)], NOW)
    assert subject == "Hours awaiting your approval (1 entry)"
    assert text.count("https://wbl.example/approvals/") == 1
    assert "4 h 35 min of on-the-job learning, learner lrn-1" in text
    subject, text = digests.message_text(
        "sup-9", [(_item("e-1", 4, proxy="sup-9"), True), (_item("e-2", 0, proxy="sup-9"),
                                                            False)], NOW)
    assert subject == "Reminder: hours still awaiting your approval (2 entries)"
    assert text.count("https://wbl.example/approvals/") == 2
    assert "waiting 4 days" in text and "you are the proxy approver" in text


def test_the_schedule_runs_at_once_then_each_period_and_stops_when_asked() -> None:
    calls: list[float] = []

    def send() -> None:
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise OSError("mail server down")  # logged; the next run comes as planned

    stop = threading.Event()
    thread = threading.Thread(target=run_periodically, args=(send, 0.05, stop))
    thread.start()
    deadline = time.monotonic() + 5
    while len(calls) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert len(calls) >= 4
