"""Settings from `PENA_`-prefixed environment variables (pydantic-settings).

Production mode refuses the development defaults for secrets and the movable clock. Only what the
kernel itself uses lives here; a service's own settings live with it (services/<name>/settings.py),
read from the same `PENA_` variables.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-not-a-secret"


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting must not print the others (secrets among them) in the error
    model_config = SettingsConfigDict(env_prefix="PENA_", env_file=".env", extra="ignore", hide_input_in_errors=True)

    environment: Literal["dev", "test", "production"] = "dev"

    # `{service}` is replaced by the service name: each service owns its own database.
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:55432/pena_{service}"
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
    relay_idle_poll_seconds: float = 5.0  # safety net under LISTEN/NOTIFY wake-ups
    scheduler_poll_seconds: float = 1.0

    # Auth: tokens are verified against a JWKS URL (production) or the local dev key pair.
    jwt_issuer: str = "pena-dev"
    jwt_audience: str = "pena"
    jwt_algorithms: list[str] = ["RS256"]
    jwks_url: str | None = None
    dev_key_dir: str | None = None  # defaults to <PENA_HOME>/keys

    # Secrets for pseudonymous NIK tokens (HMAC) and field encryption at rest (AES-GCM, 32 bytes b64).
    nik_hmac_key: str = DEV_SECRET
    field_encryption_key: str = "ZGV2LW9ubHktMzItYnl0ZS1rZXktZm9yLWFlcy1nY20="

    # Demo/test clock offset (ISO-8601 duration); production refuses it.
    clock_offset: str | None = None
    allow_clock_control: bool = False

    max_body_bytes: int = 10 * 1024 * 1024
    # multipart/form-data bodies (file uploads: the participants CSV import, where 100,000 realistic
    # rows of ~150 bytes take ~15 MB, with room for optional columns); larger answer 413 problem+json
    max_upload_bytes: int = 32 * 1024 * 1024
    max_page_size: int = 200
    rate_limit_per_minute: int = 6000

    # calendar dates of business facts ("today", "as of 31 July") are taken in this zone
    business_timezone: str = "Asia/Jakarta"

    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _refuse_inconsistent_kafka_security(self) -> Settings:
        problems = kafka_security_problems(self)
        if problems:
            raise ValueError("Kafka security settings refused: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _refuse_dev_defaults_in_production(self) -> Settings:
        if self.environment == "production":
            problems = []
            if self.nik_hmac_key == DEV_SECRET:
                problems.append("PENA_NIK_HMAC_KEY must be set")
            if self.field_encryption_key == Settings.model_fields["field_encryption_key"].default:
                problems.append("PENA_FIELD_ENCRYPTION_KEY must be set")
            if not self.jwks_url:
                problems.append("PENA_JWKS_URL must be set (the local dev key is refused)")
            if self.clock_offset or self.allow_clock_control:
                problems.append("the movable clock is refused in production")
            if problems:
                raise ValueError("production settings refused: " + "; ".join(problems))
        return self

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
