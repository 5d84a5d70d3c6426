"""Tables the API itself keeps in the read-model database (not read models, not events).

- ``api_idempotency``: the first answer to each (actor, Idempotency-Key), see
  ``services/api/idempotency.py`` and docs/decisions/032-idempotency-store.md;
- ``organisations`` and ``people``: the registry of organisations (name, kind, parent:
  state -> district -> school, employers, sponsors) and of people as pseudonymous ids
  with a role and an organisation, no names (docs/decisions/034-organisation-registry.md).
  Since decision 047 the organisations and their parents are events (the ``Organisation``
  aggregate, which reports read); this table is the API's current copy of them, written
  after each event so ``GET /organisations`` keeps answering from one indexed table.

They have their own ``MetaData`` so rebuilding projections never touches them, and on the
embedded default their own SQLite file (``api_engine``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    update,
)
from sqlalchemy.exc import IntegrityError

from infra.settings import Settings

api_metadata = MetaData()

idempotency = Table(
    "api_idempotency",
    api_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("actor_id", String(200), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(10), nullable=False),  # "pending" | "done"
    Column("status", Integer),
    Column("headers", Text),  # JSON list of [name, value]
    Column("body", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("actor_id", "idempotency_key", name="uq_api_idempotency_actor_key"),
)

organisations = Table(
    "organisations",
    api_metadata,
    Column("id", String(100), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("parent_id", String(100)),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

people = Table(
    "people",
    api_metadata,
    Column("id", String(200), primary_key=True),
    Column("role", String(30), nullable=False),
    Column("organisation_id", String(100), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

person_identities = Table(
    "person_identities",
    api_metadata,
    # ``subject`` (a provider's ``sub``) or ``email`` (an address the provider verified)
    Column("kind", String(10), primary_key=True),
    # the provider's name for a subject; ``*`` for an email (any provider that verified it)
    Column("provider", String(60), primary_key=True),
    # HMAC-SHA256 of the subject or the lower-cased email under the deployment's identity
    # key: the registry finds a person by it without keeping the address itself
    Column("value_hash", String(64), primary_key=True),
    Column("person_id", String(200), nullable=False, index=True),
)
"""How people who sign in through an identity provider are found (decision 051)."""

deactivated_people = Table(
    "deactivated_people",
    api_metadata,
    Column("person_id", String(200), primary_key=True),
    Column("deactivated_by", String(200), nullable=False),
    Column("deactivated_at", DateTime(timezone=True), nullable=False),
    Column("reason", String(500), nullable=False),
)
"""People who may no longer act: their sessions end at their next request, their provider
tokens are refused (decision 053). A row, not a column on ``people``, so existing
deployments gain it without a migration."""

local_accounts = Table(
    "local_accounts",
    api_metadata,
    # keyed hash (HMAC under the identity key) of the case-folded login name: the table
    # finds an account without keeping anyone's login in clear
    Column("login_hash", String(64), primary_key=True),
    Column("person_id", String(200), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("password_changed_at", DateTime(timezone=True), nullable=False),
)
"""Local accounts on the embedded default, for a district without an identity provider."""

web_sessions = Table(
    "web_sessions",
    api_metadata,
    # SHA-256 of the cookie's random value: a copy of this table opens no session
    Column("id_hash", String(64), primary_key=True),
    Column("person_id", String(200), nullable=False, index=True),
    Column("role", String(30), nullable=False),
    Column("organisation_id", String(100), nullable=False),
    Column("method", String(60), nullable=False),  # "local" or "oidc:<provider>"
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("end_reason", String(30)),
)
"""Signed-in people's sessions for the web pages (decision 053)."""

used_links = Table(
    "used_links",
    api_metadata,
    Column("link_id", String(64), primary_key=True),
    Column("purpose", String(30), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=False),
)
"""Emailed links already followed (password resets, approvals): a second use is refused
by this primary key."""

sign_in_records = Table(
    "sign_in_records",
    api_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    # sign-in, sign-in-refused, sign-out, session-ended, link-used, link-refused,
    # password-reset-sent, password-changed
    Column("kind", String(30), nullable=False),
    Column("method", String(60), nullable=False),
    Column("person_id", String(200)),  # pseudonymous id; None when nobody was recognised
    Column("reason", String(60)),  # a short code, never a claim, a login or an address
    Column("client", String(16)),  # first 16 hex of a keyed hash of the client address
)
"""The audit record of sign-ins, refusals, sign-outs and link uses (issue 16)."""

person_contacts = Table(
    "person_contacts",
    api_metadata,
    Column("person_id", String(200), primary_key=True),
    # AES-256-GCM of the address under a key derived from the personal-data master key,
    # bound to the person id (infra/contacts.py): a copy of the table mails nobody
    Column("ciphertext", LargeBinary, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""Where the ledger mails a person (supervisors' approval digests; decision 055). The people
registry keeps only keyed hashes of emails, which find a person but mail nobody."""

approval_digests_sent = Table(
    "approval_digests_sent",
    api_metadata,
    Column("recipient_id", String(200), primary_key=True),  # the supervisor or proxy
    Column("placement_id", String(100), primary_key=True),
    Column("entry_id", String(100), primary_key=True),
    Column("first_sent_at", DateTime(timezone=True), nullable=False),
    Column("last_sent_at", DateTime(timezone=True), nullable=False),
    Column("sends", Integer, nullable=False),  # the first digest, then each reminder
)
"""Which pending entries each approver was mailed a link for, and when: a digest does not
mail an entry again before a reminder is due (services/jobs/approval_digests.py)."""


def api_engine(settings: Settings, read_models: Engine) -> Engine:
    """Where these tables live: the read-model database on PostgreSQL; on the embedded
    default, their own SQLite file (``api.sqlite3``) beside the read models, so the
    idempotency writes of every command never wait for the projector's write lock (SQLite
    has one writer per file, and a waiting writer sleeps in its busy handler)."""
    if settings.uses_postgres:
        return read_models
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{settings.data_dir / 'api.sqlite3'}",
                           connect_args={"timeout": 10, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    api_metadata.create_all(engine)
    return engine


def copy_organisation(engine: Engine, *, organisation_id: str, name: str, kind: str,
                      parent_id: str | None, created_by: str, created_at: Any) -> None:
    """Write the current state of one organisation (from its events) into the registry
    table: an update, or an insert the first time. Running it twice changes nothing, so a
    request that recorded the event but died before this copy is repaired by its retry."""
    with engine.begin() as conn:
        changed = conn.execute(update(organisations).where(
            organisations.c.id == organisation_id).values(name=name, kind=kind,
                                                          parent_id=parent_id)).rowcount
        if changed:
            return
        try:
            with conn.begin_nested():
                conn.execute(insert(organisations).values(
                    id=organisation_id, name=name, kind=kind, parent_id=parent_id,
                    created_by=created_by, created_at=created_at))
        except IntegrityError:  # a concurrent copy of the same organisation won
            pass
