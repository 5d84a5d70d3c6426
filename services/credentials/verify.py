"""Verification anyone can ask for: ``wbl credentials verify FILE`` and
``POST /credentials/verify`` check a credential's proof, its issuer's key, its dates and its
status, and say why one fails.

This verifier knows the issuers of this deployment only (their DID documents and status
lists are its own read models): a credential naming another issuer is refused with that
reason, never fetched from the address it names (a public endpoint that fetched any URL a
caller wrote would be a request-forgery relay). Anyone without this software verifies with
any OB 3.0 verifier: docs/credentials.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from projections.audit_checkpoints import KeyRing
from projections.transcript import IN_FORCE, REISSUED, STATUS_LIST_BITS, Issuing, did_web
from services.credentials.signing import CRYPTOSUITE, ProofRefused, check_proof

CLOCK_SKEW = timedelta(minutes=5)
BADGE_TYPES = {"OpenBadgeCredential", "AchievementCredential"}


@dataclass
class Check:
    check: str
    ok: bool
    detail: str


@dataclass
class Verdict:
    verified: bool = False
    kind: str | None = None
    credential_id: str | None = None
    issuer: str | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [f"{c.check}: {c.detail}" for c in self.checks if not c.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"verified": self.verified, "kind": self.kind,
                "credential_id": self.credential_id, "issuer": self.issuer,
                "problems": self.problems,
                "checks": [{"check": c.check, "ok": c.ok, "detail": c.detail}
                           for c in self.checks]}


StatusLookup = Callable[[str, int], Mapping[str, Any] | None]
"""(issuer key, status index) -> the stored credential status row, or None."""


def _types(document: Mapping[str, Any]) -> set[str]:
    value = document.get("type")
    values = value if isinstance(value, list) else [value]
    return {v for v in values if isinstance(v, str)}


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


class Verifier:
    """Checks credentials against this deployment's key ring and status read model."""

    def __init__(self, issuing: Issuing, ring: KeyRing, status: StatusLookup) -> None:
        self.issuing = issuing
        self.ring = ring
        self.status = status
        self.issuers_prefix = f"{did_web(issuing.root)}:issuers:"

    def verify(self, document: Any, now: datetime | None = None) -> Verdict:
        verdict = Verdict()
        moment = now or datetime.now(UTC)
        if not isinstance(document, Mapping):
            verdict.checks.append(Check("format", False, "a credential is a JSON object"))
            return verdict
        self._check(document, verdict, moment)
        verdict.verified = bool(verdict.checks) and all(c.ok for c in verdict.checks)
        return verdict

    def _check(self, doc: Mapping[str, Any], verdict: Verdict, now: datetime) -> None:
        checks = verdict.checks
        types = _types(doc)
        kind = ("ClrCredential" if "ClrCredential" in types
                else "OpenBadgeCredential" if types & BADGE_TYPES else None)
        verdict.kind = kind
        verdict.credential_id = doc.get("id") if isinstance(doc.get("id"), str) else None
        if kind is None or "VerifiableCredential" not in types:
            checks.append(Check("format", False, "not an OpenBadgeCredential or a "
                                f"ClrCredential (type {sorted(types)})"))
            return
        checks.append(Check("format", True, kind))
        issuer = doc.get("issuer")
        issuer_id = issuer.get("id") if isinstance(issuer, Mapping) else issuer
        verdict.issuer = issuer_id if isinstance(issuer_id, str) else None
        key = self._issuer_key(doc, verdict)
        if key is None:
            return
        self._dates(doc, checks, now)
        if kind == "OpenBadgeCredential":
            self._status(doc, key, checks)
        else:
            self._members(doc, checks, now)

    def _issuer_key(self, doc: Mapping[str, Any], verdict: Verdict) -> Any:
        """The issuer and the key that signed: the proof's verification method must be a key
        this deployment published for that issuer; then the signature itself."""
        checks = verdict.checks
        issuer_id = verdict.issuer
        if issuer_id is None or not issuer_id.startswith(self.issuers_prefix):
            checks.append(Check("issuer", False, f"issuer {issuer_id!r} is not an issuer of "
                                "this service; verify it with its own issuer's keys"))
            return None
        proof = doc.get("proof")
        if not isinstance(proof, Mapping):
            checks.append(Check("proof", False, "the credential has no proof (it is not "
                                "signed)"))
            return None
        if proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != CRYPTOSUITE:
            checks.append(Check("proof", False, "the proof is not a DataIntegrityProof with "
                                f"cryptosuite {CRYPTOSUITE}"))
            return None
        if proof.get("proofPurpose") != "assertionMethod":
            checks.append(Check("proof", False, "the proof's purpose is not assertionMethod"))
            return None
        method = str(proof.get("verificationMethod") or "")
        did, _, kid = method.partition("#")
        if did != issuer_id:
            checks.append(Check("issuer key", False, f"the proof names key {method!r}, which "
                                "is not the issuer's"))
            return None
        key = self.ring.keys.get(kid)
        if key is None:
            checks.append(Check("issuer key", False, f"the proof names key {kid!r}, which "
                                "this issuer never published"))
            return None
        state = "current" if key is self.ring.current else "retired (still published)"
        checks.append(Check("issuer key", True, f"{kid} ({state})"))
        try:
            check_proof(doc, key)
        except ProofRefused as why:
            checks.append(Check("proof", False, str(why)))
            return None
        checks.append(Check("proof", True, f"{CRYPTOSUITE} signature verifies"))
        return issuer_id.removeprefix(self.issuers_prefix)

    @staticmethod
    def _dates(doc: Mapping[str, Any], checks: list[Check], now: datetime) -> None:
        valid_from = _instant(doc.get("validFrom"))
        if valid_from is None:
            checks.append(Check("dates", False, "validFrom is missing or not a date-time"))
            return
        if valid_from > now + CLOCK_SKEW:
            checks.append(Check("dates", False, f"not valid yet (validFrom {valid_from})"))
            return
        if "validUntil" in doc:
            until = _instant(doc.get("validUntil"))
            if until is None:
                checks.append(Check("dates", False, "validUntil is not a date-time"))
                return
            if until < now - CLOCK_SKEW:
                checks.append(Check("dates", False, f"expired (validUntil {until})"))
                return
        checks.append(Check("dates", True, f"valid from {valid_from}"))

    def _status(self, doc: Mapping[str, Any], key: str, checks: list[Check]) -> None:
        entry = doc.get("credentialStatus")
        if not isinstance(entry, Mapping):
            checks.append(Check("status", False, "no credentialStatus: its revocation cannot "
                                "be checked"))
            return
        url = str(entry.get("statusListCredential") or "")
        prefix = f"{self.issuing.root}/issuers/{key}/status/"
        try:
            if not url.startswith(prefix):
                raise ValueError
            index = int(url.removeprefix(prefix)) * STATUS_LIST_BITS + int(
                str(entry.get("statusListIndex")))
        except ValueError:
            checks.append(Check("status", False, f"the status entry does not point into the "
                                f"issuer's status lists ({url!r})"))
            return
        row = self.status(key, index)
        credential_id = str(doc.get("id") or "").removeprefix("urn:uuid:")
        if row is None or row["credential_id"] != credential_id:
            checks.append(Check("status", False, "the status entry names no credential of "
                                "this issuer"))
            return
        if row["status"] != IN_FORCE:
            verb = "reissued" if row["status"] == REISSUED else "revoked"
            checks.append(Check("status", False, f"{verb} on {row['status_changed_on']}: "
                                f"{row['status_reason']}"))
            return
        checks.append(Check("status", True, "in force (not revoked)"))

    def _members(self, doc: Mapping[str, Any], checks: list[Check], now: datetime) -> None:
        subject = doc.get("credentialSubject")
        members = subject.get("verifiableCredential") if isinstance(subject, Mapping) else None
        if not isinstance(members, list) or not members:
            checks.append(Check("credentials", False, "the CLR embeds no credential"))
            return
        for number, member in enumerate(members, start=1):
            inner = self.verify(member, now)
            name = f"credential {number} ({inner.credential_id})"
            if inner.verified:
                checks.append(Check(name, True, "verifies"))
            else:
                checks.append(Check(name, False, "; ".join(inner.problems)))
