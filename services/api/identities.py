"""People who sign in through their district's identity provider, found in the ledger's
registry, and the provider access tokens the API accepts beside its own tokens.

A person is registered with ``POST /organisations/{org}/people`` (a pseudonymous id, a role,
an organisation) and, for single sign-on, the identities that are theirs: a provider's
subject (``sub``) and/or an email address. The registry keeps only keyed hashes of them
(HMAC-SHA256 under ``WBL_IDENTITY_KEY``), so it can find a person from a verified token
without keeping anyone's address. Which claims match, and when a match is refused
(unverified email, another organisation's provider, a role the provider does not state), is
``infra.identity.decide_person``. See docs/decisions/051-provider-tokens-at-the-api.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, insert, select

from domain.actor import Actor
from infra.api_tables import deactivated_people, people, person_identities
from infra.identity import (
    IdentityError,
    OidcProvider,
    Person,
    ProviderClient,
    decide_person,
    providers_from_settings,
    token_issuer,
)
from infra.key_files import kept_key
from infra.settings import Settings
from services.api.errors import ProblemError

MIN_KEY_BYTES = 32
ANY_PROVIDER = "*"


def identity_key(settings: Settings) -> bytes:
    if settings.identity_key is not None:
        key = settings.identity_key.get_secret_value().encode()
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"WBL_IDENTITY_KEY must be at least {MIN_KEY_BYTES} bytes long.")
        return key
    return kept_key(settings.data_dir / "identity-key", secrets.token_bytes(32))


def keyed_hash(key: bytes, kind: str, provider: str, value: str) -> str:
    message = f"{kind}\x00{provider}\x00{value}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def normal_email(email: str) -> str:
    return email.strip().lower()


def record_identities(conn: Connection, key: bytes, person_id: str,
                      subjects: Iterable[tuple[str, str]], email: str | None) -> None:
    """Keep the hashes of a person's provider subjects and email, in the caller's transaction
    (a clash with another person's is an ``IntegrityError`` the route answers as 409)."""
    rows = [{"kind": "subject", "provider": provider, "person_id": person_id,
             "value_hash": keyed_hash(key, "subject", provider, subject)}
            for provider, subject in subjects]
    if email:
        rows.append({"kind": "email", "provider": ANY_PROVIDER, "person_id": person_id,
                     "value_hash": keyed_hash(key, "email", ANY_PROVIDER,
                                              normal_email(email))})
    if rows:
        conn.execute(insert(person_identities), rows)


@dataclass(frozen=True)
class RegistryDirectory:
    """``infra.identity.PeopleDirectory`` over the API's registry tables."""

    engine: Engine
    key: bytes

    def _person(self, kind: str, provider: str, value: str) -> Person | None:
        digest = keyed_hash(self.key, kind, provider, value)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(people.c.id, people.c.role, people.c.organisation_id,
                       deactivated_people.c.person_id.is_(None))
                .join(person_identities, person_identities.c.person_id == people.c.id)
                .outerjoin(deactivated_people, deactivated_people.c.person_id == people.c.id)
                .where(person_identities.c.kind == kind,
                       person_identities.c.provider == provider,
                       person_identities.c.value_hash == digest)).first()
        return None if row is None else Person(id=row[0], role=row[1], organisation_id=row[2],
                                               active=bool(row[3]))

    def by_subject(self, provider: str, subject: str) -> Person | None:
        return self._person("subject", provider, subject)

    def by_email(self, email: str) -> Person | None:
        return self._person("email", ANY_PROVIDER, normal_email(email))


@dataclass
class ProviderTokens:
    """The providers whose access tokens the API accepts (those with an ``api_audience``),
    by issuer; each client caches its provider's keys."""

    directory: RegistryDirectory
    by_issuer: dict[str, tuple[OidcProvider, ProviderClient]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, directory: RegistryDirectory) -> ProviderTokens:
        tokens = cls(directory)
        for provider in providers_from_settings(settings):
            if provider.api_audience:
                tokens.by_issuer[provider.issuer] = (
                    provider, ProviderClient.from_settings(provider, settings))
        return tokens

    def issued_by_a_provider(self, token: str) -> bool:
        return token_issuer(token) in self.by_issuer

    def actor(self, token: str) -> Actor:
        """Verify a provider's access token and find its person; 401 for a token that does
        not verify, 403 for a verified person the ledger does not know (never an account
        made on the fly)."""
        issuer = token_issuer(token)
        provider, client = self.by_issuer[issuer or ""]
        try:
            claims = client.verify_access_token(token)
        except IdentityError as refused:
            raise ProblemError(401, "invalid-token", "Authentication required",
                               f"The provider's token was refused ({refused.code}).",
                               headers={"WWW-Authenticate": 'Bearer realm="wbl-ledger"'}
                               ) from None
        decision = decide_person(provider, claims, self.directory)
        if not decision.allowed and decision.reason == "person-deactivated":
            raise ProblemError(403, "person-deactivated", "This person was deactivated",
                               "Your access to this ledger was ended; ask your coordinator.")
        if not decision.allowed:
            raise ProblemError(403, "unknown-person", "Not a person of this ledger",
                               f"Signed in at {provider.name}, but no person registered here "
                               f"matches ({decision.reason}); ask your coordinator to register "
                               "you.")
        return decision.actor()

    def close(self) -> None:
        for _, client in self.by_issuer.values():
            client.close()
