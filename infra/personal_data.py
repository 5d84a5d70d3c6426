"""The personal-data vault: learner profiles encrypted under per-learner keys.

Why a vault and not the events: events are immutable and published to Kafka for decades;
a name or a birth date in them could never be erased. Here each learner's profile is
encrypted (AES-256-GCM) with a data key of their own, and that key is stored wrapped by
the service's master key. Deleting the learner's key (``shred``) makes every copy of the
profile unreadable, backups included: crypto-shredding (docs/privacy.md).

Pseudonymous learner ids are random UUIDs handed out here; a school's student number is
personal data too, so it is kept only inside the encrypted profile plus a keyed hash
(a blind index) to find a learner again by it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)

from domain.learner import LearnerProfile, RaceEthnicity, Sex
from infra.key_files import kept_key

metadata = MetaData()

learner_keys = Table(
    "learner_keys",
    metadata,
    Column("learner_id", String(36), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

learner_profiles = Table(
    "learner_profiles",
    metadata,
    Column("learner_id", String(36), primary_key=True),
    Column("student_index", String(64), index=True),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

learner_profile_versions = Table(
    "learner_profile_versions",
    metadata,
    Column("learner_id", String(36), primary_key=True),
    Column("valid_from", DateTime(timezone=True), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
)
"""Every version of every profile, so a report as of a past moment reads the groups as they
were then (reproducible reports); all versions share the learner's key, so shredding
erases them together."""

learner_birth_dates = Table(
    "learner_birth_dates",
    metadata,
    Column("learner_id", String(36), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
)
"""The birth date given when a learner without a profile here is matched (the API takes
it for the minimum-age and child-labour rules), under the learner's own key like a
profile: events never hold it (decision 038)."""

shredded_learners = Table(
    "shredded_learners",
    metadata,
    Column("learner_id", String(36), primary_key=True),
    Column("shredded_at", DateTime(timezone=True), nullable=False),
    Column("reason", String(500), nullable=False),
)


class LearnerShredded(LookupError):
    """The learner's key was deleted: their personal data can no longer be read."""


class UnknownLearner(LookupError):
    pass


def load_or_create_master_key(explicit: str | None, key_file: Path) -> bytes:
    """The master key from ``WBL_PERSONAL_DATA_KEY`` (base64, 32 bytes), or, for the
    embedded default, a random one kept in the data directory (mode 0600)."""
    if explicit:
        key = base64.b64decode(explicit)
    else:
        made = base64.b64encode(AESGCM.generate_key(bit_length=256))
        key = base64.b64decode(kept_key(key_file, made))
    if len(key) != 32:
        raise ValueError("The personal-data master key must be 32 bytes (base64-encoded).")
    return key


def _seal(key: bytes, plaintext: bytes, context: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context.encode())


def _open(key: bytes, sealed: bytes, context: str) -> bytes:
    return AESGCM(key).decrypt(sealed[:12], sealed[12:], context.encode())


def _to_json(profile: LearnerProfile) -> bytes:
    data = asdict(profile)
    data["born_on"] = profile.born_on.isoformat()
    data["graduated_on"] = profile.graduated_on.isoformat() if profile.graduated_on else None
    return json.dumps(data, sort_keys=True).encode()


def _from_json(raw: bytes) -> LearnerProfile:
    data: dict[str, Any] = json.loads(raw)
    data["born_on"] = date.fromisoformat(data["born_on"])
    if data.get("graduated_on"):
        data["graduated_on"] = date.fromisoformat(data["graduated_on"])
    data["sex"] = Sex(data["sex"])
    data["race_ethnicity"] = RaceEthnicity(data["race_ethnicity"])
    return LearnerProfile(**data)


class PersonalDataVault:
    def __init__(self, engine: Engine, master_key: bytes) -> None:
        self.engine = engine
        self._master = master_key
        self._index_key = hmac.new(master_key, b"student-number-index", hashlib.sha256).digest()
        metadata.create_all(engine)

    def _student_index(self, organisation_id: str, student_number: str | None) -> str | None:
        if not student_number:
            return None
        message = f"{organisation_id}\x00{student_number.strip()}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()

    def register(self, profile: LearnerProfile, *, lookup_key: str | None = None) -> str:
        """Store a new learner's profile; return their pseudonymous id.

        ``lookup_key`` replaces the student number in the blind index, for identifiers the
        ledger must be able to match but never keeps (a RAPIDS upload's SSN).
        """
        learner_id = str(uuid.uuid4())
        data_key = AESGCM.generate_key(bit_length=256)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(insert(learner_keys).values(
                learner_id=learner_id, wrapped_key=_seal(self._master, data_key, learner_id),
                created_at=now))
            conn.execute(insert(learner_profiles).values(
                learner_id=learner_id,
                student_index=self._student_index(profile.organisation_id,
                                                  lookup_key or profile.student_number),
                ciphertext=_seal(data_key, _to_json(profile), learner_id), updated_at=now))
            conn.execute(insert(learner_profile_versions).values(
                learner_id=learner_id, valid_from=now,
                ciphertext=_seal(data_key, _to_json(profile), learner_id)))
        return learner_id

    def forget_unused(self, learner_id: str) -> None:
        """Remove a profile registered for a record that was then not kept (a refused import
        row): nothing refers to it, so it goes without a shredding note."""
        with self.engine.begin() as conn:
            conn.execute(delete(learner_keys).where(learner_keys.c.learner_id == learner_id))
            conn.execute(delete(learner_profiles).where(
                learner_profiles.c.learner_id == learner_id))

    def record_birth_date(self, learner_id: str, born_on: date) -> None:
        """Keep the birth date a match was given, sealed under the learner's key (made now if
        the learner has none yet); refused for a shredded learner."""
        with self.engine.begin() as conn:
            try:
                key = self._data_key(conn, learner_id)
            except UnknownLearner:
                key = AESGCM.generate_key(bit_length=256)
                conn.execute(insert(learner_keys).values(
                    learner_id=learner_id, wrapped_key=_seal(self._master, key, learner_id),
                    created_at=datetime.now(UTC)))
            sealed = _seal(key, born_on.isoformat().encode(), f"{learner_id}:born_on")
            conn.execute(delete(learner_birth_dates).where(
                learner_birth_dates.c.learner_id == learner_id))
            conn.execute(insert(learner_birth_dates).values(learner_id=learner_id,
                                                            ciphertext=sealed))

    def birth_date(self, learner_id: str) -> date | None:
        """The learner's birth date: from their profile, else as a match recorded it; None
        when never given or erased."""
        with self.engine.connect() as conn:
            try:
                key = self._data_key(conn, learner_id)
            except (UnknownLearner, LearnerShredded):
                return None
            profile = conn.execute(select(learner_profiles.c.ciphertext).where(
                learner_profiles.c.learner_id == learner_id)).scalar()
            recorded = conn.execute(select(learner_birth_dates.c.ciphertext).where(
                learner_birth_dates.c.learner_id == learner_id)).scalar()
        if profile is not None:
            return _from_json(_open(key, profile, learner_id)).born_on
        if recorded is not None:
            return date.fromisoformat(_open(key, recorded, f"{learner_id}:born_on").decode())
        return None

    def _data_key(self, conn: Any, learner_id: str) -> bytes:
        wrapped = conn.execute(select(learner_keys.c.wrapped_key).where(
            learner_keys.c.learner_id == learner_id)).scalar()
        if wrapped is None:
            shredded = conn.execute(select(shredded_learners.c.learner_id).where(
                shredded_learners.c.learner_id == learner_id)).scalar()
            if shredded:
                raise LearnerShredded(learner_id)
            raise UnknownLearner(learner_id)
        return _open(self._master, wrapped, learner_id)

    def get(self, learner_id: str) -> LearnerProfile:
        with self.engine.connect() as conn:
            key = self._data_key(conn, learner_id)
            sealed = conn.execute(select(learner_profiles.c.ciphertext).where(
                learner_profiles.c.learner_id == learner_id)).scalar()
        if sealed is None:
            raise UnknownLearner(learner_id)
        try:
            return _from_json(_open(key, sealed, learner_id))
        except InvalidTag as error:
            raise ValueError(f"learner {learner_id}: profile fails its integrity check") from error

    def update(self, learner_id: str, profile: LearnerProfile) -> None:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            key = self._data_key(conn, learner_id)
            conn.execute(update(learner_profiles).where(
                learner_profiles.c.learner_id == learner_id).values(
                student_index=self._student_index(profile.organisation_id,
                                                  profile.student_number),
                ciphertext=_seal(key, _to_json(profile), learner_id),
                updated_at=now))
            conn.execute(insert(learner_profile_versions).values(
                learner_id=learner_id, valid_from=now,
                ciphertext=_seal(key, _to_json(profile), learner_id)))

    def profiles_as_of(self, learner_ids: set[str] | None, moment: datetime,
                       ) -> dict[str, LearnerProfile | None]:
        """Each learner's profile as it stood at ``moment`` (None: shredded, or registered
        later). ``learner_ids=None`` means every learner."""
        query = select(learner_profile_versions).where(
            learner_profile_versions.c.valid_from <= moment).order_by(
            learner_profile_versions.c.learner_id, learner_profile_versions.c.valid_from)
        latest: dict[str, bytes] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                if learner_ids is None or row["learner_id"] in learner_ids:
                    latest[row["learner_id"]] = row["ciphertext"]
            keys = {r["learner_id"]: r["wrapped_key"] for r in conn.execute(
                select(learner_keys)).mappings() if r["learner_id"] in latest}
        result: dict[str, LearnerProfile | None] = dict.fromkeys(learner_ids or (), None)
        for learner_id, sealed in latest.items():
            wrapped = keys.get(learner_id)
            if wrapped is None:
                result[learner_id] = None  # shredded
                continue
            key = _open(self._master, wrapped, learner_id)
            result[learner_id] = _from_json(_open(key, sealed, learner_id))
        return result

    def find_by_student_number(self, organisation_id: str, student_number: str) -> str | None:
        index = self._student_index(organisation_id, student_number)
        with self.engine.connect() as conn:
            found = conn.execute(select(learner_profiles.c.learner_id).where(
                learner_profiles.c.student_index == index)).scalar()
        return str(found) if found is not None else None

    def shred(self, learner_id: str, reason: str) -> None:
        """Delete the learner's key (and ciphertext): their personal data is gone for good.

        Events keep the pseudonymous id, so hours, placements and audit chains stay intact
        and verifiable; they just no longer lead to a person.
        """
        with self.engine.begin() as conn:
            self._data_key(conn, learner_id)  # unknown or already shredded: refuse
            conn.execute(delete(learner_keys).where(learner_keys.c.learner_id == learner_id))
            conn.execute(delete(learner_profiles).where(
                learner_profiles.c.learner_id == learner_id))
            conn.execute(delete(learner_profile_versions).where(
                learner_profile_versions.c.learner_id == learner_id))
            conn.execute(delete(learner_birth_dates).where(
                learner_birth_dates.c.learner_id == learner_id))
            conn.execute(insert(shredded_learners).values(
                learner_id=learner_id, shredded_at=datetime.now(UTC), reason=reason))

    def is_shredded(self, learner_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(shredded_learners.c.learner_id).where(
                shredded_learners.c.learner_id == learner_id)).scalar() is not None
