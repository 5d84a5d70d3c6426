"""People's contact addresses for mail, encrypted at rest.

The people registry keeps a person's email only as a keyed hash (decision 051): it finds
the person who signs in with that address but cannot mail them. Supervisors without an
account approve hours from emailed links (decision 055), so the ledger needs an address it
can read. It keeps one per person in ``person_contacts``, sealed with AES-256-GCM under a key
derived (HKDF-SHA256) from the personal-data master key (``WBL_PERSONAL_DATA_KEY``, or the
embedded default's kept key file), with the person id as associated data: a row copied to
another person does not open, and a copy of the table without the key mails nobody. An
address is never in an event, a log line or an API answer (the API says only whether one
is on record); clearing it deletes the row.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, delete, insert, select, update

from infra.api_tables import person_contacts
from infra.personal_data import load_or_create_master_key
from infra.settings import Settings

ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")
"""The shape the API accepts too: one @, no spaces (whether it delivers is the mail
server's answer, not ours)."""


class ContactError(ValueError):
    """An address refused (``code`` names the rule)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _derive(master_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"wbl-ledger/contact-addresses").derive(master_key)


class ContactAddresses:
    def __init__(self, engine: Engine, master_key: bytes) -> None:
        self.engine = engine
        self._aead = AESGCM(_derive(master_key))

    def _seal(self, person_id: str, address: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, address.encode(),
                                          f"contact\x00{person_id}".encode())

    def _open(self, person_id: str, sealed: bytes) -> str | None:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:],
                                      f"contact\x00{person_id}".encode()).decode()
        except InvalidTag:  # another key, or a row that is not this person's
            return None

    def record(self, person_id: str, address: str, *, by: str,
            now: datetime | None = None) -> None:
        """Record (or replace) the person's address."""
        address = address.strip()
        if len(address) > 320 or not ADDRESS.match(address):
            raise ContactError("contact-email-invalid", "An email address has one @ and no "
                               "spaces.")
        values = {"ciphertext": self._seal(person_id, address), "updated_by": by,
                  "updated_at": now or datetime.now(UTC)}
        with self.engine.begin() as conn:
            changed = conn.execute(update(person_contacts).where(
                person_contacts.c.person_id == person_id).values(**values)).rowcount
            if not changed:
                conn.execute(insert(person_contacts).values(person_id=person_id, **values))

    def forget(self, person_id: str) -> bool:
        """Forget the address; False when none was on record."""
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(person_contacts).where(
                person_contacts.c.person_id == person_id)).rowcount)

    def address(self, person_id: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(person_contacts.c.ciphertext).where(
                person_contacts.c.person_id == person_id)).first()
        return None if row is None else self._open(person_id, bytes(row[0]))

    def known(self, person_ids: Iterable[str]) -> set[str]:
        """Which of these people have an address on record (nothing is decrypted)."""
        wanted = sorted(set(person_ids))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                found |= {str(r[0]) for r in conn.execute(
                    select(person_contacts.c.person_id).where(
                        person_contacts.c.person_id.in_(wanted[start:start + 500])))}
        return found


def contact_addresses(settings: Settings, engine: Engine) -> ContactAddresses:
    """The addresses kept in ``engine`` (the API's tables), under the deployment's
    personal-data master key."""
    key = load_or_create_master_key(settings.personal_data_key,
                                    settings.data_dir / "personal-data.key")
    return ContactAddresses(engine, key)
