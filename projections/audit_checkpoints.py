"""Signed checkpoints of the audit trail's global chain (decision 041).

The hash chains of ``audit_trail`` show that an entry was altered, dropped or reordered, but
someone who can write the table can also recompute every later hash, leaving a trail that
is consistent with itself. A checkpoint anchors the chain outside the table: the global
head (position, hash, chain length) signed with an Ed25519 key the database never holds,
published on its own Kafka topic. A rewrite then disagrees with the first genuine
checkpoint at or after the rewritten entry, however carefully the hashes were recomputed.

This module is pure: the document, its canonical bytes (``canonical_json`` of
``domain.contract.canonical``, the audit trail's own canonical JSON), signing, the key
ring that verifies (current and retired keys, named by their RFC 7638 JWK thumbprint), and
locating the first rewritten entry by comparing stored canonical bytes with the original
events.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from domain.contract.canonical import canonical_json
from projections.common import loads

SIGNED_FIELDS = ("position", "global_hash", "count", "created_at", "kid")
"""What the signature covers: everything in the document but the signature itself."""


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def kid_of(key: Ed25519PublicKey) -> str:
    """The key's RFC 7638 JWK thumbprint: anyone holding the public key derives the same
    name, so a checkpoint names its key without trusting a registry."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw_public(key))}
    return b64url(hashlib.sha256(canonical_json(members)).digest())


def public_jwk(key: Ed25519PublicKey, status: str) -> dict[str, str]:
    """The public key as a JWK (RFC 8037), with its kid and whether it still signs."""
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw_public(key)), "kid": kid_of(key),
            "alg": "EdDSA", "use": "sig", "status": status}


def public_key_from_x(x: str) -> Ed25519PublicKey:
    """A public key from its JWK ``x`` (base64url of the 32 raw bytes)."""
    raw = b64url_decode(x.strip())
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True)
class Checkpoint:
    """The audit trail's global chain head at one moment, signed.

    ``count`` is the number of entries the chain covers up to ``position`` (positions start
    at 1 without gaps, so it equals ``position``; kept explicit so a reader checks the
    length without knowing that rule).
    """

    position: int
    global_hash: str
    count: int
    created_at: str
    kid: str
    signature: str

    def signed_bytes(self) -> bytes:
        return canonical_json({name: getattr(self, name) for name in SIGNED_FIELDS})

    def to_json(self) -> bytes:
        return canonical_json(asdict(self))


def sign(key: Ed25519PrivateKey, *, position: int, global_hash: str, count: int,
         created_at: str) -> Checkpoint:
    unsigned = Checkpoint(position, global_hash, count, created_at,
                          kid_of(key.public_key()), "")
    signature = b64url(key.sign(unsigned.signed_bytes()))
    return Checkpoint(position, global_hash, count, created_at, unsigned.kid, signature)


class NotACheckpoint(ValueError):
    """A record on the checkpoint topic that is not a checkpoint document."""


def parse(raw: bytes | str) -> Checkpoint:
    try:
        d = loads(raw)
        return Checkpoint(position=int(d["position"]), global_hash=str(d["global_hash"]),
                          count=int(d["count"]), created_at=str(d["created_at"]),
                          kid=str(d["kid"]), signature=str(d["signature"]))
    except (ValueError, KeyError, TypeError) as error:
        raise NotACheckpoint(f"not a checkpoint: {error!r}") from error


class KeyRing:
    """The public keys whose checkpoints are trusted: the signing key's and the retired
    ones (a rotation must not make the checkpoints already published unverifiable)."""

    def __init__(self, current: Ed25519PublicKey | None,
                 retired: Iterable[Ed25519PublicKey] = ()) -> None:
        self.current = current
        self.keys: dict[str, Ed25519PublicKey] = {kid_of(k): k for k in retired}
        if current is not None:
            self.keys[kid_of(current)] = current

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        current = kid_of(self.current) if self.current is not None else None
        return {"keys": [public_jwk(k, "current" if kid == current else "retired")
                         for kid, k in self.keys.items()]}

    def knows(self, checkpoint: Checkpoint) -> bool:
        return checkpoint.kid in self.keys

    def refusal(self, checkpoint: Checkpoint) -> str | None:
        """Why ``checkpoint`` is not to be trusted, or None when its signature verifies."""
        key = self.keys.get(checkpoint.kid)
        if key is None:
            return f"signed by unknown key {checkpoint.kid!r}"
        try:
            key.verify(b64url_decode(checkpoint.signature), checkpoint.signed_bytes())
        except (InvalidSignature, ValueError):
            return f"signature does not verify with key {checkpoint.kid!r}"
        return None


@dataclass(frozen=True)
class RewrittenEntry:
    """The first entry whose stored event differs from the event on the topic."""

    position: int
    aggregate_type: str
    aggregate_id: str
    event_type: str
    detail: str


def first_rewritten(stored: Iterable[Mapping[str, Any]],
                    originals: Mapping[int, bytes], after: int, upto: int
                    ) -> RewrittenEntry | None:
    """Compare the stored entries of positions ``after + 1 .. upto`` (in position order,
    each with ``position``, ``event``, ``aggregate_type``, ``aggregate_id``, ``event_type``)
    with the canonical bytes of the original events (from the topic): the first entry
    missing or different. Names come from the original event where there is one: the
    stored columns are what may have been rewritten."""
    rows = {int(r["position"]): r for r in stored}
    for position in range(after + 1, upto + 1):
        original = originals.get(position)
        row = rows.get(position)
        if original is None:
            if row is None:
                continue  # neither copy has it: nothing to compare
            return None  # the topic lacks this event: cannot tell which entry changed
        facts = loads(original)
        name = (str(facts["aggregate_type"]), str(facts["aggregate_id"]),
                str(facts["event_type"]))
        if row is None:
            return RewrittenEntry(position, *name, "entry missing from the trail")
        if str(row["event"]).encode("utf-8") != original:
            return RewrittenEntry(position, *name,
                                  "stored event differs from the event on the topic")
    return None
