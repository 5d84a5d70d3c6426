"""Supervisors' approval digests and reminders, and the list of hours pending approval.

Missed approvals are what users of hour trackers complain about most, and employers'
supervisors often have no account (issue 16). So each approver (the placement's supervisor,
and the proxy approver a coordinator named) with hours pending gets one email listing each
pending entry with its own signed, single-use, expiring link to ``/approvals/{token}``, where
they approve it or reject it with a reason (``services/web/routes/approval_links.py``;
decision 055). An entry is mailed once; while it stays pending longer than
``WBL_APPROVAL_REMINDER_DAYS`` it is mailed again every that many days, in a message whose
subject says it is a reminder. ``approval_digests_sent`` records what was mailed to whom
and when, so a digest run (hourly inside ``wbl run``, ``WBL_APPROVAL_DIGEST_MINUTES``, or
``wbl approvals send-digests``) never mails an entry before it is due. An approver without
a contact address on record gets nothing; coordinators see that, with every entry pending
longer than ``WBL_APPROVAL_OVERDUE_DAYS``, at ``GET /organisations/{id}/overdue-approvals``.

Where the pending entries come from: the transcripts read model says which placements have
pending minutes (``transcript_experience.pending_minutes``, indexed by organisation and
supervisor); each such placement is then read from the ledger itself, which has the exact
entries, when each was logged (``HourEntry.logged_at``) and the proxy approver. A read model
behind by a few seconds only delays a digest to the next run.

Nothing personal is logged: counts only, never an address, a person id or a link.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from sqlalchemy import Engine, delete, insert, select, tuple_, update

from domain.errors import UnknownAggregate
from domain.placement import Placement, PlacementStatus
from infra.api_tables import api_engine, approval_digests_sent
from infra.contacts import ContactAddresses, contact_addresses
from infra.mail import Mailer, compose, mailer_from_settings
from infra.passwords import LinkSigner, link_signing_key
from infra.settings import Settings
from projections.transcript import LIVE_TABLES
from services.ledger import Ledger

log = logging.getLogger(__name__)

REVIEWABLE = (PlacementStatus.ACTIVE.value, PlacementStatus.SUSPENDED.value)
"""States in which a placement's pending hours can still be approved or rejected."""

LINK_PURPOSE = "approval"
KIND_WORDS = {"on_the_job": "on-the-job learning", "related_instruction": "related instruction"}


@dataclass(frozen=True)
class PendingApproval:
    """One entry awaiting review, as the ledger holds it now."""

    placement_id: str
    organisation_id: str
    learner_id: str
    supervisor_id: str
    proxy_approver_id: str | None
    entry_id: str
    work_date: date
    minutes: int
    kind: str
    logged_at: datetime

    @property
    def approvers(self) -> tuple[str, ...]:
        return (self.supervisor_id,) if self.proxy_approver_id is None else (
            self.supervisor_id, self.proxy_approver_id)

    def waiting(self, now: datetime) -> timedelta:
        return now - self.logged_at

    def days_pending(self, now: datetime) -> int:
        """Whole days since the entry was logged (integer, never a float)."""
        return max(self.waiting(now).days, 0)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def candidate_placements(read_models: Engine, *, organisation_id: str | None = None
                         ) -> list[str]:
    """Placements the transcripts read model shows with pending minutes."""
    table = LIVE_TABLES.experience
    query = select(table.c.placement_id).where(
        table.c.pending_minutes > 0, table.c.status.in_(REVIEWABLE)
    ).order_by(table.c.placement_id)
    if organisation_id is not None:
        query = query.where(table.c.organisation_id == organisation_id)
    with read_models.connect() as conn:
        return [str(row[0]) for row in conn.execute(query)]


def pending_of(placement: Placement) -> list[PendingApproval]:
    if placement.status.value not in REVIEWABLE:
        return []
    return [PendingApproval(
        placement_id=str(placement.id), organisation_id=placement.organisation_id,
        learner_id=placement.learner_id, supervisor_id=placement.supervisor_id,
        proxy_approver_id=placement.proxy_approver_id, entry_id=e.entry_id,
        work_date=e.work_date, minutes=e.minutes, kind=e.kind.value,
        logged_at=_aware(e.logged_at)) for e in placement.pending_entries()
        if e.logged_at is not None]


def pending_approvals(ledger: Ledger, read_models: Engine, *,
                      organisation_id: str | None = None,
                      logged_before: datetime | None = None) -> list[PendingApproval]:
    """Every entry awaiting review (of one organisation's placements), oldest first; with
    ``logged_before``, only those logged before then (the overdue ones)."""
    found: list[PendingApproval] = []
    for placement_id in candidate_placements(read_models, organisation_id=organisation_id):
        try:
            placement = ledger.get_placement(UUID(placement_id))
        except (UnknownAggregate, ValueError):
            continue
        found += [p for p in pending_of(placement)
                  if logged_before is None or p.logged_at < logged_before]
    return sorted(found, key=lambda p: (p.logged_at, p.placement_id, p.entry_id))


@dataclass(frozen=True)
class Sent:
    last_sent_at: datetime
    sends: int


Key = tuple[str, str, str]
"""(recipient, placement, entry)."""


def digests_sent(engine: Engine, recipients: Iterable[str]) -> dict[Key, Sent]:
    """What was mailed to these approvers, by (recipient, placement, entry)."""
    wanted = sorted(set(recipients))
    found: dict[Key, Sent] = {}
    t = approval_digests_sent
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            for row in conn.execute(select(t).where(
                    t.c.recipient_id.in_(wanted[start:start + 500]))).mappings():
                found[(row["recipient_id"], row["placement_id"], row["entry_id"])] = Sent(
                    _aware(row["last_sent_at"]), int(row["sends"]))
    return found


@dataclass
class DigestRun:
    """What one run did (counts only: this is what is logged)."""

    messages: int = 0
    entries: int = 0
    reminders: int = 0
    without_contact: int = 0
    failed: int = 0
    pending: int = 0
    recipients: list[str] = field(default_factory=list, repr=False)
    """Who was mailed (for tests and the CLI's count; never logged)."""


def hours_text(minutes: int) -> str:
    return f"{minutes // 60} h {minutes % 60:02d} min"


class ApprovalDigests:
    """Mails approvers their pending entries, each with its own approval link."""

    def __init__(self, *, ledger: Ledger, read_models: Engine, api_engine: Engine,
                 contacts: ContactAddresses, mailer: Mailer, links: LinkSigner,
                 settings: Settings, base_url: str) -> None:
        self.ledger = ledger
        self.read_models = read_models
        self.api_engine = api_engine
        self.contacts = contacts
        self.mailer = mailer
        self.links = links
        self.settings = settings
        self.base_url = base_url.rstrip("/")

    @classmethod
    def build(cls, settings: Settings, ledger: Ledger, read_models: Engine,
              base_url: str) -> ApprovalDigests:
        """From the deployment's settings: its mailer (SMTP or the outbox folder), its link
        key, its contact addresses."""
        engine = api_engine(settings, read_models)
        return cls(ledger=ledger, read_models=read_models, api_engine=engine,
                   contacts=contact_addresses(settings, engine),
                   mailer=mailer_from_settings(settings),
                   links=LinkSigner(link_signing_key(settings)), settings=settings,
                   base_url=base_url)

    def link(self, item: PendingApproval, recipient: str) -> str:
        """A signed link to review one entry as ``recipient``, valid
        ``WBL_APPROVAL_LINK_DAYS``; its id is recorded in the event when it is used."""
        token, _ = self.links.issue(
            LINK_PURPOSE, {"p": item.placement_id, "e": item.entry_id, "s": recipient},
            self.settings.approval_link_days * 86400)
        return f"{self.base_url}/approvals/{token}"

    def send(self, now: datetime | None = None) -> DigestRun:
        """One run: every approver with entries due gets one message."""
        now = now or datetime.now(UTC)
        remind_after = timedelta(days=self.settings.approval_reminder_days)
        pending = pending_approvals(self.ledger, self.read_models)
        by_recipient: dict[str, list[PendingApproval]] = defaultdict(list)
        for item in pending:
            for approver in item.approvers:
                by_recipient[approver].append(item)
        sent = digests_sent(self.api_engine, by_recipient)
        with_address = self.contacts.known(by_recipient)
        run = DigestRun(pending=len(pending))
        for recipient in sorted(by_recipient):
            due: list[tuple[PendingApproval, bool]] = []
            for item in by_recipient[recipient]:
                before = sent.get((recipient, item.placement_id, item.entry_id))
                if before is None:
                    due.append((item, False))
                elif (item.waiting(now) >= remind_after
                      and now - before.last_sent_at >= remind_after):
                    due.append((item, True))
            if not due:
                continue
            address = self.contacts.address(recipient) if recipient in with_address else None
            if address is None:
                run.without_contact += 1
                continue
            if not self._mail(recipient, address, due, now):
                run.failed += 1
                continue
            self._record(recipient, [item for item, _ in due], sent, now)
            run.messages += 1
            run.entries += len(due)
            run.reminders += sum(1 for _, reminder in due if reminder)
            run.recipients.append(recipient)
        self._prune(now)
        log.info("approval digests sent", extra={
            "messages": run.messages, "entries": run.entries, "reminders": run.reminders,
            "without_contact": run.without_contact, "failed": run.failed,
            "pending": run.pending})
        return run

    def message_text(self, recipient: str, due: Sequence[tuple[PendingApproval, bool]],
                     now: datetime) -> tuple[str, str]:
        """The subject and the plain-text body: entries with pseudonymous ids only (the
        ledger holds no names), each with its own link."""
        reminder = any(r for _, r in due)
        count = f"{len(due)} entr{'y' if len(due) == 1 else 'ies'}"
        subject = (f"Reminder: hours still awaiting your approval ({count})" if reminder
                   else f"Hours awaiting your approval ({count})")
        days = self.settings.approval_link_days
        lines = [
            "Hello,",
            "",
            "These hours were logged by learners whose work-based learning you supervise and "
            "are waiting for your decision in wbl-ledger." if not reminder else
            "Some of these hours have waited for your decision for a while; the learners' "
            "records are not complete until you approve or reject them.",
            "",
            f"Each link opens one entry: check it, then approve it, or reject it and say why. "
            f"A link works once, for {days} days.",
            "",
        ]
        for item, is_reminder in due:
            proxy = (" (you are the proxy approver named by the coordinator)"
                     if recipient == item.proxy_approver_id else "")
            waited = item.days_pending(now)
            again = f", waiting {waited} day{'s' if waited != 1 else ''}" if is_reminder else ""
            lines += [
                f"- {item.work_date.isoformat()}: {hours_text(item.minutes)} of "
                f"{KIND_WORDS.get(item.kind, item.kind)}, learner {item.learner_id}, "
                f"placement {item.placement_id}{proxy}{again}",
                f"  {self.link(item, recipient)}",
                "",
            ]
        lines += ["If an entry is not yours to decide, ignore it and tell the placement's "
                  "coordinator.", "", "wbl-ledger"]
        return subject, "\n".join(lines) + "\n"

    def _mail(self, recipient: str, address: str,
              due: Sequence[tuple[PendingApproval, bool]], now: datetime) -> bool:
        subject, text = self.message_text(recipient, due, now)
        try:
            self.mailer.send(compose(sender=self.settings.mail_from, to=[address],
                                     subject=subject, text=text))
        except (OSError, smtplib.SMTPException, ValueError) as error:
            # The type only: an SMTP error's text can hold the address.
            log.warning("approval digest not sent", extra={"error": type(error).__name__})
            return False
        return True

    def _record(self, recipient: str, items: Sequence[PendingApproval],
                sent: dict[Key, Sent], now: datetime) -> None:
        t = approval_digests_sent
        with self.api_engine.begin() as conn:
            for item in items:
                key = (recipient, item.placement_id, item.entry_id)
                before = sent.get(key)
                if before is None:
                    conn.execute(insert(t).values(
                        recipient_id=recipient, placement_id=item.placement_id,
                        entry_id=item.entry_id, first_sent_at=now, last_sent_at=now, sends=1))
                else:
                    conn.execute(update(t).where(
                        tuple_(t.c.recipient_id, t.c.placement_id, t.c.entry_id) == key
                    ).values(last_sent_at=now, sends=before.sends + 1))

    def _prune(self, now: datetime) -> None:
        """Forget what was mailed for entries no longer reminded of: a pending entry's row is
        refreshed at every reminder, so only decided (or unmailable) entries' rows age."""
        horizon = timedelta(days=self.settings.approval_reminder_days
                            + self.settings.approval_link_days)
        with self.api_engine.begin() as conn:
            conn.execute(delete(approval_digests_sent).where(
                approval_digests_sent.c.last_sent_at < now - horizon))


def run_periodically(send: Callable[[], object], every_s: float,
                     stop: threading.Event) -> None:
    """Call ``send`` now and then every ``every_s`` seconds until ``stop`` is set; a failed
    run is logged (its type only) and the next one comes as planned."""
    while not stop.is_set():
        try:
            send()
        except Exception as error:  # a mail server or database down: try again later
            log.warning("approval digest run failed", extra={"error": type(error).__name__})
        if stop.wait(every_s):
            return


def start_schedule(digests: ApprovalDigests, every_minutes: int,
                   stop: threading.Event) -> threading.Thread:
    """The digests as a daemon thread of this process (``wbl run``), stopped with it."""
    thread = threading.Thread(target=run_periodically,
                              args=(digests.send, every_minutes * 60.0, stop),
                              name="approval-digests", daemon=True)
    thread.start()
    return thread
