"""Mail the ledger sends: supervisors' approval digests and reminders, password resets.

Two ``Mailer`` implementations behind one protocol, chosen by ``mailer_from_settings``:

- ``SmtpMailer``: a configured SMTP server (``WBL_SMTP_HOST``), STARTTLS before signing in
  unless turned off; it refuses to send a password over a plain connection to anything but
  loopback, since a submission password in clear is as good as published.
- ``FolderMailer``: the embedded default has no mail server; each message is written as an
  RFC 5322 ``.eml`` file in ``WBL_DATA_DIR/outbox`` (mode 0600: messages hold sign-in links),
  which any mail client opens, so a person trying the ledger on a laptop can follow links.

Messages are built with ``email.message.EmailMessage`` and the default policy, which refuses
a header with a line break (no header injection through a subject or an address). Nothing
here logs a message's body or addresses.
"""

from __future__ import annotations

import datetime
import os
import secrets
import smtplib
import ssl
import time
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from infra.settings import Settings

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def compose(*, sender: str, to: Sequence[str], subject: str, text: str,
            html: str | None = None) -> EmailMessage:
    """A message with a plain-text body (and an HTML alternative when given), its own
    ``Message-ID`` and ``Date``. Raises ``ValueError`` for a header with a line break."""
    if not to:
        raise ValueError("a message has at least one recipient")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.datetime.now(datetime.UTC))
    domain = sender.rpartition("@")[2].strip("> ") or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


class Mailer(Protocol):
    """Sends one message; returns its ``Message-ID`` (kept with what the mail was for)."""

    def send(self, message: EmailMessage) -> str: ...


class SmtpMailer:
    """Sends through an SMTP server, one connection per message (mail here is a few digests
    a day, not a stream; a fresh connection never inherits a broken one)."""

    def __init__(self, host: str, port: int = 587, *, user: str | None = None,
                 password: str | None = None, starttls: bool = True,
                 timeout_s: float = 30.0, ssl_context: ssl.SSLContext | None = None) -> None:
        if user and not starttls and host not in LOOPBACK:
            raise ValueError("refusing to send an SMTP password without STARTTLS to "
                             f"{host}: turn WBL_SMTP_STARTTLS on")
        self.host, self.port = host, port
        self.user, self._password = user, password
        self.starttls = starttls
        self.timeout_s = timeout_s
        self.ssl_context = ssl_context or ssl.create_default_context()

    def send(self, message: EmailMessage) -> str:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=self.ssl_context)
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self._password or "")
            smtp.send_message(message)
        return str(message["Message-ID"])


class FolderMailer:
    """Writes each message as ``<time>-<random>.eml`` in ``outbox``: written aside, then
    renamed into place, so a reader never sees half a message."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def send(self, message: EmailMessage) -> str:
        self.outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(6)}.eml"
        aside = self.outbox / f".{name}.part"
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(message.as_bytes())
        os.replace(aside, self.outbox / name)
        return str(message["Message-ID"])

    def messages(self) -> list[Path]:
        """The messages written so far, oldest first."""
        return sorted(self.outbox.glob("*.eml")) if self.outbox.exists() else []


def mailer_from_settings(settings: Settings) -> Mailer:
    """SMTP when ``WBL_SMTP_HOST`` is set, else the outbox folder in the data directory."""
    if settings.smtp_host:
        host = settings.smtp_host
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SmtpMailer(host, settings.smtp_port, user=settings.smtp_user, password=password,
                          starttls=settings.smtp_starttls)
    return FolderMailer(settings.data_dir / "outbox")
