"""infra/passwords.py: real Argon2id hashes, the throttle on a controlled clock, signed links
with single use enforced by a real database constraint."""

from __future__ import annotations

import sqlite3
import stat
import time
from pathlib import Path

import pytest
from argon2 import extract_parameters

from infra.passwords import LinkError, LinkSigner, Passwords, SignInThrottle, link_signing_key
from infra.settings import Settings

PASSWORD = "a learner's long passphrase"


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    return Passwords.from_settings(Settings())


def test_argon2id_with_the_stated_parameters(passwords: Passwords) -> None:
    stored = passwords.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify(stored, PASSWORD).ok
    assert passwords.verify(stored, PASSWORD).new_hash is None
    assert not passwords.verify(stored, PASSWORD + "!").ok
    assert not passwords.verify("not a hash", PASSWORD).ok
    assert passwords.hash(PASSWORD) != stored  # salted
    with pytest.raises(ValueError, match="at least 12"):
        passwords.hash("short")


def test_a_hash_with_older_parameters_is_upgraded_at_sign_in(passwords: Passwords) -> None:
    weak = Passwords(time_cost=1, memory_kib=8192, parallelism=1).hash(PASSWORD)
    check = passwords.verify(weak, PASSWORD)
    assert check.ok and check.new_hash is not None
    upgraded = extract_parameters(check.new_hash)
    assert (upgraded.time_cost, upgraded.memory_cost, upgraded.parallelism) == (3, 65536, 4)
    assert passwords.verify(check.new_hash, PASSWORD).new_hash is None
    assert passwords.verify(weak, "wrong password here").new_hash is None


def test_an_unknown_account_costs_a_hash_too(passwords: Passwords) -> None:
    stored = passwords.hash(PASSWORD)
    started = time.perf_counter()
    assert not passwords.verify(stored, "a wrong passphrase").ok
    known = time.perf_counter() - started
    started = time.perf_counter()
    assert not passwords.verify(None, PASSWORD).ok
    unknown = time.perf_counter() - started
    assert unknown > known * 0.3, (known, unknown)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_account_back_off_doubles_then_caps_and_success_clears() -> None:
    clock = Clock()
    throttle = SignInThrottle(free_failures=3, max_delay_s=10, clock=clock)
    for _ in range(2):
        assert throttle.retry_after("Lena", "10.0.0.1") is None
        throttle.failed("Lena", "10.0.0.1")
    assert throttle.retry_after("lena", "10.0.0.1") is None
    throttle.failed("lena ", "10.0.0.1")  # third failure: case and spaces do not matter
    assert throttle.retry_after("LENA", "10.0.0.2") == 1.0  # the account, from anywhere
    waits = []
    for _ in range(6):
        throttle.failed("lena", "10.0.0.1")
        waits.append(throttle.retry_after("lena", "10.0.0.1"))
    assert waits == [2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    clock.now += 10
    assert throttle.retry_after("lena", "10.0.0.1") is None
    assert throttle.retry_after("sam", "10.0.0.1") is None  # other accounts unaffected
    throttle.succeeded("lena")
    throttle.failed("lena", "10.0.0.1")
    assert throttle.retry_after("lena", "10.0.0.1") is None


def test_one_client_spraying_many_accounts_is_held_for_the_hour() -> None:
    clock = Clock()
    throttle = SignInThrottle(free_failures=5, client_failures_per_hour=10, clock=clock)
    for n in range(10):
        assert throttle.retry_after(f"account-{n}", "203.0.113.9") is None
        throttle.failed(f"account-{n}", "203.0.113.9")
        clock.now += 60
    wait = throttle.retry_after("account-new", "203.0.113.9")
    assert wait == pytest.approx(3600 - 600)
    assert throttle.retry_after("account-new", "198.51.100.1") is None
    clock.now += wait or 0
    assert throttle.retry_after("account-new", "203.0.113.9") is None


@pytest.fixture
def used_links(tmp_path: Path) -> sqlite3.Connection:
    """Where the caller records each link's use: one row per link id, by constraint."""
    conn = sqlite3.connect(tmp_path / "links.sqlite3")
    conn.execute("CREATE TABLE used_links (link_id TEXT PRIMARY KEY, used_at REAL)")
    return conn


def _use(conn: sqlite3.Connection, signer: LinkSigner, token: str) -> dict[str, object]:
    opened = signer.open("approval", token)
    try:
        with conn:
            conn.execute("INSERT INTO used_links VALUES (?, ?)", (opened.link_id, time.time()))
    except sqlite3.IntegrityError:
        raise LinkError("link-used") from None
    return dict(opened.data)


def test_approval_links_open_once_for_their_purpose_until_they_expire(
        tmp_path: Path, used_links: sqlite3.Connection) -> None:
    clock = Clock()
    settings = Settings(data_dir=tmp_path / "data")
    key = link_signing_key(settings)
    key_file = settings.data_dir / "link-signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key) >= 32
    assert link_signing_key(settings) == key  # made once, then read
    signer = LinkSigner(key, clock=clock)
    token, link_id = signer.issue("approval", {"entries": ["e-1", "e-2"], "supervisor": "s-9"},
                                  ttl_s=settings.approval_link_days * 86400)
    assert signer.open("approval", token).link_id == link_id
    assert _use(used_links, signer, token) == {"entries": ["e-1", "e-2"], "supervisor": "s-9"}
    with pytest.raises(LinkError) as refused:
        _use(used_links, signer, token)
    assert refused.value.code == "link-used"
    # Another purpose, a changed character, another key: refused alike.
    with pytest.raises(LinkError, match="link-invalid"):
        signer.open("password-reset", token)
    payload, signature = token.rsplit(".", 1)
    with pytest.raises(LinkError, match="link-invalid"):
        signer.open("approval", f"{payload}.{signature[:-2]}AA")
    with pytest.raises(LinkError, match="link-invalid"):
        LinkSigner(b"k" * 32, clock=clock).open("approval", token)
    # Expired after its lifetime.
    reset, _ = signer.issue("password-reset", {"account": "a-1"}, ttl_s=30 * 60)
    clock.now += 30 * 60 - 1
    assert signer.open("password-reset", reset).data == {"account": "a-1"}
    clock.now += 1
    with pytest.raises(LinkError, match="link-expired"):
        signer.open("password-reset", reset)


def test_links_signed_before_a_key_rotation_still_open() -> None:
    old, new = b"o" * 32, b"n" * 32
    token, link_id = LinkSigner(old).issue("approval", {}, ttl_s=60)
    assert LinkSigner(new, retired_keys=(old,)).open("approval", token).link_id == link_id
    with pytest.raises(LinkError):
        LinkSigner(new).open("approval", token)
    with pytest.raises(ValueError):
        LinkSigner(b"short")
