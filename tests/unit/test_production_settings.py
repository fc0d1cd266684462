"""Production settings refuse, before anything is served, placeholder, default or weak secrets, the
dev issuer and local dev key, and example identity-provider hosts; a good configuration starts."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from pena.settings import DEV_FIELD_ENCRYPTION_KEY, DEV_SECRET, Settings, encryption_key_problem, secret_problem

ROOT = Path(__file__).resolve().parents[2]


def good() -> dict[str, str]:
    return {
        "environment": "production",
        "nik_hmac_key": base64.b64encode(secrets.token_bytes(48)).decode(),
        "field_encryption_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "jwks_url": "https://sso.kemensos.go.id/realms/pena/protocol/openid-connect/certs",
        "jwt_issuer": "https://sso.kemensos.go.id/realms/pena",
        "database_url": "postgresql+asyncpg://pena:s3cret@db.kemensos.internal:5432/pena_{service}",
    }


def refused(**overrides: object) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**(good() | overrides))  # type: ignore[arg-type]
    message = str(caught.value)
    assert "production settings refused" in message
    return message


def test_a_good_production_configuration_is_accepted() -> None:
    settings = Settings(**good())  # type: ignore[arg-type]
    assert settings.environment == "production"
    assert settings.production_problems() == []
    # a hex key of 32 random bytes is as good as base64
    Settings(**(good() | {"nik_hmac_key": secrets.token_hex(32)}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("nik_hmac_key", DEV_SECRET, "PENA_NIK_HMAC_KEY must be set (the development default is public)"),
        ("nik_hmac_key", "", "PENA_NIK_HMAC_KEY must be set"),
        ("nik_hmac_key", "REPLACE_ME_random_secret_at_least_32_bytes", "PENA_NIK_HMAC_KEY is a template placeholder"),
        ("nik_hmac_key", "k" * 64, "PENA_NIK_HMAC_KEY is too weak"),
        ("nik_hmac_key", "correct horse battery", "PENA_NIK_HMAC_KEY is too weak"),
        ("nik_hmac_key", secrets.token_hex(16), "PENA_NIK_HMAC_KEY is too weak"),  # 16 bytes only
        ("nik_hmac_key", base64.b64encode(secrets.token_bytes(24)).decode(), "PENA_NIK_HMAC_KEY is too weak"),
        ("field_encryption_key", DEV_FIELD_ENCRYPTION_KEY, "PENA_FIELD_ENCRYPTION_KEY must be set"),
        (
            "field_encryption_key",
            "REPLACE_ME_base64_of_exactly_32_random_bytes",
            "PENA_FIELD_ENCRYPTION_KEY is a template placeholder",
        ),
        ("field_encryption_key", base64.b64encode(b"\x00" * 32).decode(), "PENA_FIELD_ENCRYPTION_KEY is not random"),
        ("field_encryption_key", base64.b64encode(secrets.token_bytes(16)).decode(), "exactly 32 random bytes"),
        ("field_encryption_key", "not base64 at all!", "exactly 32 random bytes"),
        ("jwks_url", "", "PENA_JWKS_URL must be set (the local dev key is refused)"),
        ("jwks_url", "https://idp.example.go.id/realms/pena/protocol/openid-connect/certs", "PENA_JWKS_URL must be"),
        ("jwks_url", "http://sso.kemensos.go.id/certs", "PENA_JWKS_URL must be the identity provider's https URL"),
        ("jwt_issuer", "pena-dev", "the dev issuer is refused"),
        ("jwt_issuer", "https://idp.example.go.id/realms/pena", "PENA_JWT_ISSUER is an example host"),
        ("database_url", "postgresql+asyncpg://pena:REPLACE_ME@db:5432/pena_{service}", "PENA_DATABASE_URL holds"),
        ("database_url", Settings.model_fields["database_url"].default, "PENA_DATABASE_URL must be set"),
    ],
)
def test_production_refuses(field: str, value: str, says: str) -> None:
    assert says in refused(**{field: value})


def test_the_secret_checks_accept_what_the_runbook_generates() -> None:
    assert secret_problem("K", base64.b64encode(secrets.token_bytes(48)).decode()) is None  # openssl rand -base64 48
    assert secret_problem("K", base64.b64encode(secrets.token_bytes(32)).decode()) is None  # openssl rand -base64 32
    assert encryption_key_problem("K", base64.b64encode(secrets.token_bytes(32)).decode()) is None


def test_the_k8s_template_and_example_config_are_refused_naming_each_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone who applies deploy/k8s as shipped (template secret, example IdP) gets a start-up
    refusal naming every value to replace, not a running service."""
    config = yaml.safe_load((ROOT / "deploy/k8s/configmap.yaml").read_text())["data"]
    secrets = yaml.safe_load_all((ROOT / "deploy/k8s/secret.template.yaml").read_text())
    secret = next(doc for doc in secrets if doc["metadata"]["name"] == "pena-secrets")["stringData"]  # the app's
    for name in [n for n in os.environ if n.startswith("PENA_")]:
        monkeypatch.delenv(name)
    for name, value in (config | secret).items():
        monkeypatch.setenv(name, str(value))
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)
    message = str(caught.value)
    named = ("PENA_NIK_HMAC_KEY", "PENA_FIELD_ENCRYPTION_KEY", "PENA_JWKS_URL", "PENA_JWT_ISSUER", "PENA_DATABASE_URL")
    assert all(name in message for name in named), message


def test_the_service_refuses_to_start_before_serving(tmp_path: Path) -> None:
    """`pena serve` with production settings and a placeholder secret exits non-zero with the reason,
    without ever listening; PENA_ENVIRONMENT unset in the image means production (deploy/Dockerfile)."""
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    assert "PENA_ENVIRONMENT=production" in dockerfile
    env = {k: v for k, v in os.environ.items() if not k.startswith("PENA_")}
    env |= {f"PENA_{k.upper()}": v for k, v in good().items()}
    env["PENA_NIK_HMAC_KEY"] = "REPLACE_ME_random_secret_at_least_32_bytes"
    pena = Path(sys.executable).parent / "pena"
    done = subprocess.run(
        [str(pena), "serve", "participants", "--port", "1"],  # port 1: it must fail before binding anything
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "production settings refused: PENA_NIK_HMAC_KEY is a template placeholder" in done.stderr
