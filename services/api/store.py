"""Tables the API itself keeps in the read-model database (not read models, not events).

- ``api_idempotency``: the first answer to each (actor, Idempotency-Key), see
  ``services/api/idempotency.py`` and docs/decisions/032-idempotency-store.md;
- ``organisations`` and ``people``: the registry of organisations (name, kind, parent:
  state -> district -> school, employers, sponsors) and of people as pseudonymous ids
  with a role and an organisation, no names (docs/decisions/034-organisation-registry.md).

They have their own ``MetaData`` so rebuilding projections never touches them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

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
