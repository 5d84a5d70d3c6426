"""infra/mail.py against a real SMTP server in the test process (aiosmtpd over TCP) and the
outbox folder of the embedded default."""

from __future__ import annotations

import email
import smtplib
import ssl
import stat
from email.policy import default as default_policy
from pathlib import Path

import pytest

from infra.mail import FolderMailer, SmtpMailer, compose, mailer_from_settings
from infra.settings import Settings
from tests.fixtures.smtp import SmtpHandle

LINK = "https://ledger.example/approve/abc.def"


def _digest() -> email.message.EmailMessage:
    return compose(sender="wbl-ledger <no-reply@ledger.example>",
                   to=["supervisor@employer.example"], subject="3 hour entries to approve",
                   text=f"Approve or reject: {LINK}\n", html=f'<p><a href="{LINK}">Review</a></p>')


def test_smtp_delivers_text_and_html_to_a_real_server(smtp_server: SmtpHandle) -> None:
    mailer = SmtpMailer(smtp_server.host, smtp_server.port, starttls=False)
    message_id = mailer.send(_digest())
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received.rcpt_tos == ["supervisor@employer.example"]
    assert received.mail_from == "no-reply@ledger.example"
    assert received.message["Message-ID"] == message_id
    assert received.message["Subject"] == "3 hour entries to approve"
    body = received.message.get_body(("plain",))
    html = received.message.get_body(("html",))
    assert body is not None and LINK in body.get_content()
    assert html is not None and f'href="{LINK}"' in html.get_content()


def test_smtp_with_starttls_and_sign_in(smtp_server_starttls: SmtpHandle) -> None:
    server = smtp_server_starttls
    trust = ssl.create_default_context(cafile=str(server.ca_file))
    mailer = SmtpMailer(server.host, server.port, user=server.user, password=server.password,
                        ssl_context=trust)
    mailer.send(_digest())
    assert len(server.messages) == 1
    assert server.messages[0].authenticated_as == server.user
    assert server.messages[0].over_tls
    # A wrong password is refused by the server; an untrusted certificate by the client.
    with pytest.raises(smtplib.SMTPAuthenticationError):
        SmtpMailer(server.host, server.port, user=server.user, password="wrong",
                   ssl_context=trust).send(_digest())
    with pytest.raises(ssl.SSLCertVerificationError):
        SmtpMailer(server.host, server.port, user=server.user,
                   password=server.password).send(_digest())
    # The server insists on STARTTLS: a client that skips it is refused, not delivered.
    with pytest.raises(smtplib.SMTPException):
        SmtpMailer(server.host, server.port, starttls=False).send(_digest())
    assert len(server.messages) == 1


def test_no_password_in_clear_to_a_remote_server() -> None:
    with pytest.raises(ValueError, match="STARTTLS"):
        SmtpMailer("smtp.example.org", 587, user="u", password="p", starttls=False)


def test_header_injection_is_refused() -> None:
    with pytest.raises(ValueError):
        compose(sender="a@b.example", to=["c@d.example"],
                subject="hi\r\nBcc: everyone@example.org", text="x").as_bytes()


def test_folder_mailer_writes_eml_files_only_the_owner_reads(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    mailer = mailer_from_settings(settings)
    assert isinstance(mailer, FolderMailer)
    first, second = mailer.send(_digest()), mailer.send(_digest())
    files = mailer.messages()
    assert len(files) == 2 and first != second
    assert not list(mailer.outbox.glob(".*"))  # nothing half-written left behind
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=default_policy)
    assert parsed["Message-ID"] in (first, second)
    assert LINK in parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_settings_choose_smtp(smtp_server: SmtpHandle, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, smtp_host=smtp_server.host,
                        smtp_port=smtp_server.port, smtp_starttls=False)
    mailer = mailer_from_settings(settings)
    assert isinstance(mailer, SmtpMailer)
    mailer.send(_digest())
    assert len(smtp_server.messages) == 1
