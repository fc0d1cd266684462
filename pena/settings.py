"""Settings from `PENA_`-prefixed environment variables (pydantic-settings).

Production mode refuses, when the settings are built (before any request is served): the development
defaults and template placeholders for secrets, secrets with less than 256 bits (32 bytes) of
estimated entropy, the development issuer and local dev key, example identity-provider hosts, and the
movable clock. Only what the kernel itself uses lives here; a service's own settings live with it
(services/<name>/settings.py), read from the same `PENA_` variables.
"""

from __future__ import annotations

import base64
import binascii
import os
import string
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-not-a-secret"
DEV_FIELD_ENCRYPTION_KEY = "ZGV2LW9ubHktMzItYnl0ZS1rZXktZm9yLWFlcy1nY20="
DEV_ISSUER = "pena-dev"
DEV_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:55432/pena_{service}"

# words of template and example values (deploy/k8s/secret.template.yaml, docs): never a real secret
PLACEHOLDER_MARKERS = ("replace_me", "replaceme", "changeme", "change_me", "change-me", "placeholder", "dev-only")
MIN_SECRET_BITS = 256  # 32 bytes of entropy
MIN_DISTINCT_SYMBOLS = 12  # a random 256-bit secret in any usual alphabet has far more
_HEX = set(string.hexdigits)
_BASE64 = set(string.ascii_letters + string.digits + "+/=-_")


def _estimated_bits(value: str) -> float:
    """Length times the bits per character of the smallest usual alphabet the value is written in:
    hex 4, base64 (either form) 6, other printable text 6.5. A generous upper bound for a random
    string; a human-made one has less."""
    symbols = set(value)
    per_char = 4.0 if symbols <= _HEX else 6.0 if symbols <= _BASE64 else 6.5
    return len(value.encode()) * per_char


def secret_problem(name: str, value: str | None, *, dev_default: str | None = None) -> str | None:
    """Why `value` is not acceptable as the production secret `name`, or None when it is."""
    if not value:
        return f"{name} must be set"
    if value == dev_default:
        return f"{name} must be set (the development default is public)"
    lowered = value.lower()
    if any(marker in lowered for marker in PLACEHOLDER_MARKERS):
        return f"{name} is a template placeholder"
    if len(set(value)) < MIN_DISTINCT_SYMBOLS or _estimated_bits(value) < MIN_SECRET_BITS:
        return f"{name} is too weak: use at least 32 random bytes (e.g. openssl rand -base64 48)"
    return None


def encryption_key_problem(name: str, value: str | None, *, dev_default: str | None = None) -> str | None:
    """Like `secret_problem`, for a key that must be exactly 32 random bytes, base64-encoded."""
    if not value:
        return f"{name} must be set"
    if value == dev_default:
        return f"{name} must be set (the development default is public)"
    if any(marker in value.lower() for marker in PLACEHOLDER_MARKERS):
        return f"{name} is a template placeholder"
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return f"{name} must be base64 of exactly 32 random bytes (openssl rand -base64 32)"
    if len(raw) != 32:
        return f"{name} must be base64 of exactly 32 random bytes (openssl rand -base64 32)"
    if len(set(raw)) < 16:  # 32 random bytes repeat a value a handful of times at most
        return f"{name} is not random: use openssl rand -base64 32"
    return None


def _example_host(url: str) -> bool:
    """Hosts reserved for examples and tests (RFC 2606, RFC 6761): the templates' placeholders."""
    host = (urlsplit(url).hostname or "").lower()
    labels = host.split(".")
    return "example" in labels or labels[-1] in ("test", "invalid", "localhost") or host == "localhost"


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting must not print the others (secrets among them) in the error
    model_config = SettingsConfigDict(env_prefix="PENA_", env_file=".env", extra="ignore", hide_input_in_errors=True)

    environment: Literal["dev", "test", "production"] = "dev"

    # `{service}` is replaced by the service name: each service owns its own database.
    database_url: str = DEV_DATABASE_URL
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_timeout_seconds: float = 5.0

    kafka_bootstrap: str = "127.0.0.1:9092"
    # Prefix of every topic and consumer group; tests use their own to stay isolated.
    topic_namespace: str = "pena"
    topic_partitions: int = 6
    topic_replication_factor: int = 1
    # Kafka client security, applied to every producer, consumer and admin client (pena.kafka).
    # Secrets come as values or as files (`*_FILE`: a Kubernetes Secret mounted as a volume).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_cafile: Path | None = None  # PEM; unset: the system's trusted CAs
    kafka_ssl_certfile: Path | None = None  # PEM client certificate (chain) for mTLS
    kafka_ssl_keyfile: Path | None = None  # PEM private key of the client certificate
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_key_password_file: Path | None = None
    kafka_ssl_check_hostname: bool = True

    # bus: "kafka" (one service per process) or "inprocess" (pena dev, all services in one process)
    bus: Literal["kafka", "inprocess"] = "kafka"

    consumer_max_attempts: int = 4
    consumer_backoff_seconds: float = 0.2
    # records fetched per poll: a run of events with a batch handler is applied in one transaction
    consumer_fetch_max_records: int = Field(default=500, ge=1, le=10_000)
    relay_batch_size: int = 500
    relay_idle_poll_seconds: float = 1.0  # safety net under LISTEN/NOTIFY wake-ups (pena.tables.OUTBOX_NOTIFY_SQL)
    # after a wake-up, wait this long before claiming, so one claim-publish-mark cycle carries the rows
    # of several commits (0: claim at once); a relay in its own process (`pena serve --role workers`)
    # otherwise runs one cycle per registration, as nothing else delays it
    relay_gather_seconds: float = Field(default=0.0, ge=0, le=1)
    scheduler_poll_seconds: float = 1.0
    # worker processes for the CPU-bound rows of a bulk import chunk (pena.parallel); 0 or 1: in the
    # service process itself
    worker_processes: int = Field(default=2, ge=0, le=32)

    # Auth: tokens are verified against a JWKS URL (production) or the local dev key pair.
    jwt_issuer: str = DEV_ISSUER
    jwt_audience: str = "pena"
    jwt_algorithms: list[str] = ["RS256"]
    jwks_url: str | None = None
    dev_key_dir: str | None = None  # defaults to <PENA_HOME>/keys

    # Secrets for pseudonymous NIK tokens (HMAC) and field encryption at rest (AES-GCM, 32 bytes b64).
    nik_hmac_key: str = DEV_SECRET
    field_encryption_key: str = DEV_FIELD_ENCRYPTION_KEY

    # Demo/test clock offset (ISO-8601 duration); production refuses it.
    clock_offset: str | None = None
    allow_clock_control: bool = False

    max_body_bytes: int = 10 * 1024 * 1024
    # multipart/form-data bodies (file uploads: the imports, where 1,000,000 realistic rows of ~150 bytes
    # take ~150 MB; streamed to a temporary file, never held in memory); larger answer 413 problem+json
    max_upload_bytes: int = 256 * 1024 * 1024
    max_page_size: int = 200
    # per authenticated (subject, client id), per process (pena/ratelimit.py); at most
    # rate_limit_max_subjects buckets are kept (an idle bucket expires after a minute)
    rate_limit_per_minute: int = Field(default=6000, ge=1)
    rate_limit_max_subjects: int = Field(default=50_000, ge=1)

    # Idempotency-Key answers are replayed for this long, then the key behaves as new (pena/idempotency.py)
    idempotency_ttl: timedelta = Field(default=timedelta(hours=24), gt=timedelta(0))
    # Retention of the kernel's bookkeeping rows (pena/retention.py: a scheduled job every service runs).
    # Durations as ISO 8601 (P7D, PT24H) or seconds. Inbox rows dedupe redeliveries: keep them longer
    # than Kafka keeps the topics (docs/operations.md, "Retention").
    outbox_retention: timedelta = Field(default=timedelta(days=7), gt=timedelta(0))  # after publication
    inbox_retention: timedelta = Field(default=timedelta(days=30), gt=timedelta(0))
    retention_interval: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0))
    retention_batch_size: int = Field(default=5000, ge=1, le=100_000)

    # calendar dates of business facts ("today", "as of 31 July") are taken in this zone
    business_timezone: str = "Asia/Jakarta"
    # statistical disclosure control of exports (pena/http/tabular.py): an aggregate cell counting fewer
    # persons or families than this, and every figure derived from it, is left empty and marked suppressed
    min_cell_size: int = Field(default=5, ge=1, le=1000)

    log_level: str = "INFO"
    log_json: bool = True

    # Tracing (pena/telemetry.py, docs/operations.md "Tracing"). `none`: no SDK, no spans; a caller's
    # W3C traceparent is passed on to the events unchanged. `otlp`: spans exported over OTLP/HTTP to
    # `otel_endpoint` (unset: the standard OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, else localhost:4318).
    otel_exporter: Literal["none", "otlp"] = "none"
    otel_endpoint: str | None = None
    otel_service_name: str | None = None  # default: pena-<service> (pena for several services in one process)
    # parent-based: an upstream decision is kept; new traces are kept with this probability
    otel_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    # live gauges (pena_outbox_pending, pena_consumer_lag) are refreshed this often by the runtime
    metrics_interval_seconds: float = Field(default=5.0, gt=0.0)

    @model_validator(mode="after")
    def _refuse_inconsistent_kafka_security(self) -> Settings:
        problems = kafka_security_problems(self)
        if problems:
            raise ValueError("Kafka security settings refused: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _refuse_dev_defaults_in_production(self) -> Settings:
        if self.environment == "production":
            problems = self.production_problems()
            if problems:
                raise ValueError("production settings refused: " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """Everything production refuses in these settings (empty: they may serve)."""
        problems = [
            p
            for p in (
                secret_problem("PENA_NIK_HMAC_KEY", self.nik_hmac_key, dev_default=DEV_SECRET),
                encryption_key_problem(
                    "PENA_FIELD_ENCRYPTION_KEY", self.field_encryption_key, dev_default=DEV_FIELD_ENCRYPTION_KEY
                ),
            )
            if p
        ]
        if not self.jwks_url:
            problems.append("PENA_JWKS_URL must be set (the local dev key is refused)")
        elif urlsplit(self.jwks_url).scheme != "https" or _example_host(self.jwks_url):
            problems.append("PENA_JWKS_URL must be the identity provider's https URL (not an example host)")
        if self.jwt_issuer == DEV_ISSUER or not self.jwt_issuer:
            problems.append("PENA_JWT_ISSUER must be the identity provider's issuer (the dev issuer is refused)")
        elif _example_host(self.jwt_issuer):
            problems.append("PENA_JWT_ISSUER is an example host (a template placeholder)")
        if self.database_url == DEV_DATABASE_URL:
            problems.append("PENA_DATABASE_URL must be set (the development default is refused)")
        elif any(marker in self.database_url.lower() for marker in PLACEHOLDER_MARKERS):
            problems.append("PENA_DATABASE_URL holds a template placeholder")
        if self.clock_offset or self.allow_clock_control:
            problems.append("the movable clock is refused in production")
        return problems

    def service_database_url(self, service: str) -> str:
        return self.database_url.replace("{service}", service)

    def topic(self, service: str) -> str:
        return f"{self.topic_namespace}.{service}.events"

    def dead_letter_topic(self, service: str) -> str:
        return f"{self.topic(service)}.DLT"

    def consumer_group(self, service: str) -> str:
        return f"{self.topic_namespace}.{service}"


def kafka_security_problems(settings: Settings) -> list[str]:
    """What is missing or contradictory in the Kafka security settings, one short sentence each
    (empty when they are usable). Checked when settings load, so a service refuses to start instead
    of failing later inside the Kafka client."""
    s = settings
    protocol = s.kafka_security_protocol
    sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
    problems = []
    if sasl:
        if not s.kafka_sasl_username:
            problems.append(f"PENA_KAFKA_SASL_USERNAME must be set for {protocol}")
        if s.kafka_sasl_password is None and s.kafka_sasl_password_file is None:
            problems.append(f"PENA_KAFKA_SASL_PASSWORD or PENA_KAFKA_SASL_PASSWORD_FILE must be set for {protocol}")
        if s.kafka_sasl_password is not None and s.kafka_sasl_password_file is not None:
            problems.append("set PENA_KAFKA_SASL_PASSWORD or PENA_KAFKA_SASL_PASSWORD_FILE, not both")
        if s.kafka_sasl_mechanism == "PLAIN" and not tls and s.environment == "production":
            problems.append("SASL PLAIN without TLS sends the password in clear: use SASL_SSL")
    else:
        given = [n for n in ("sasl_username", "sasl_password", "sasl_password_file") if getattr(s, f"kafka_{n}")]
        problems += [f"PENA_KAFKA_{n.upper()} is set but {protocol} does not use SASL" for n in given]
    if tls:
        if s.kafka_ssl_keyfile is not None and s.kafka_ssl_certfile is None:
            problems.append("PENA_KAFKA_SSL_KEYFILE is set without PENA_KAFKA_SSL_CERTFILE")
        if s.kafka_ssl_key_password is not None and s.kafka_ssl_key_password_file is not None:
            problems.append("set PENA_KAFKA_SSL_KEY_PASSWORD or PENA_KAFKA_SSL_KEY_PASSWORD_FILE, not both")
        if (s.kafka_ssl_key_password or s.kafka_ssl_key_password_file) and s.kafka_ssl_certfile is None:
            problems.append("a client key password is set without PENA_KAFKA_SSL_CERTFILE")
    else:
        names = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password", "ssl_key_password_file")
        given = [n for n in names if getattr(s, f"kafka_{n}")]
        problems += [f"PENA_KAFKA_{n.upper()} is set but {protocol} does not use TLS" for n in given]
    for name in ("sasl_password_file", "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password_file"):
        path: Path | None = getattr(s, f"kafka_{name}")
        if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
            problems.append(f"PENA_KAFKA_{name.upper()}: {path} is not a readable file")
    return problems


@lru_cache
def get_settings() -> Settings:
    return Settings()
