"""The credentials service the API and the CLI call: signed badges and CLRs built from the
transcript read model, the issuers' DID documents and status lists, verification.

Signing happens when a credential is handed out, from the read model: the document is the
same each time (its content comes from the events), only the proof's ``created`` differs,
and a key rotation needs no re-signing of anything stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from infra.settings import Settings
from projections.audit_checkpoints import KeyRing
from projections.transcript import (
    STATUS_LIST_BITS,
    Experience,
    Issuing,
    TranscriptProjection,
    clr,
    issuer_key,
    open_badge,
)
from services.credentials import keys
from services.credentials.signing import did_document, sign, status_list_jwt, utc_now
from services.credentials.verify import Verdict, Verifier


@dataclass
class Credentials:
    settings: Settings
    engine: Engine
    key: Ed25519PrivateKey
    ring: KeyRing

    @classmethod
    def build(cls, settings: Settings, engine: Engine) -> Credentials:
        return cls(settings, engine, keys.signing_key(settings), keys.key_ring(settings))

    @property
    def issuing(self) -> Issuing:
        return Issuing(self.settings.public_url)

    # -- handing out -----------------------------------------------------------------------

    def signed_badge(self, experience: Experience, credential: dict[str, Any]
                     ) -> dict[str, Any]:
        issuing = self.issuing
        document = open_badge(experience, credential, issuing)
        return sign(document, self.key, issuing.issuer_did(str(credential["issuer"])))

    def signed_clr(self, learner_id: str, experiences: Sequence[Experience]
                   ) -> dict[str, Any] | None:
        """The learner's CLR, each credential in force signed inside it, the whole signed by
        the deployment's CLR issuer; None when the learner holds no credential in force (a
        CLR embeds at least one)."""
        badges = [self.signed_badge(e, c) for e in experiences for c in e.credentials_in_force]
        if not badges:
            return None
        issuing = self.issuing
        name = self.settings.clr_issuer_name
        document = clr(learner_id, experiences, badges, issuing, issuer=name,
                       issued_at=utc_now(), clr_id=f"urn:uuid:{uuid.uuid4()}")
        return sign(document, self.key, issuing.issuer_did(name))

    # -- what the issuers publish ---------------------------------------------------------

    def issuer_name(self, key: str) -> str | None:
        if key == issuer_key(self.settings.clr_issuer_name):
            return self.settings.clr_issuer_name
        with self.engine.connect() as conn:
            return TranscriptProjection().issuer_name(conn, key)

    def did_document(self, key: str) -> dict[str, Any] | None:
        name = self.issuer_name(key)
        if name is None:
            return None
        return did_document(self.issuing.issuer_did(name), self.ring)

    def profile(self, key: str) -> dict[str, Any] | None:
        name = self.issuer_name(key)
        return None if name is None else {
            "@context": ["https://www.w3.org/ns/credentials/v2",
                         "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
            **self.issuing.profile(name)}

    def status_list(self, key: str, number: int) -> str | None:
        name = self.issuer_name(key)
        if name is None:
            return None
        first = number * STATUS_LIST_BITS
        with self.engine.connect() as conn:
            withdrawn = TranscriptProjection().withdrawn_indices(
                conn, key, first, first + STATUS_LIST_BITS - 1)
        issuing = self.issuing
        return status_list_jwt(self.key, issuing.issuer_did(name),
                               issuing.status_list_url(name, number),
                               [i - first for i in withdrawn])

    def jwks(self) -> dict[str, Any]:
        return self.ring.jwks()

    # -- verifying ------------------------------------------------------------------------

    def verify(self, document: Any) -> Verdict:
        def lookup(key: str, index: int) -> Any:
            with self.engine.connect() as conn:
                return TranscriptProjection().status_at(conn, key, index)

        return Verifier(self.issuing, self.ring, lookup).verify(document)
