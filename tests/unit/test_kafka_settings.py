"""The mapping from PENA_KAFKA_* settings to aiokafka's connection arguments (pena.kafka.connection_options),
and the combinations refused at start-up with a one-line message. Against a real broker:
tests/kernel/test_kafka_security.py."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from pena.kafka import KafkaPublisher, KafkaSettingsError, connection_options
from pena.settings import Settings
from tests.kernel.secure_kafka import Issued, issue, make_ca


def kafka_settings(**values: object) -> Settings:
    return Settings(environment="test", kafka_bootstrap="kafka-0:9094,kafka-1:9094", **values)  # type: ignore[arg-type]


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Issued, Issued]:
    ca = make_ca(tmp_path, "ca")
    return ca, issue(tmp_path, ca, "participants", server=False, key_password="key-secret")


def refusal(**values: object) -> str:
    with pytest.raises(ValidationError) as caught:
        kafka_settings(**values)
    [error] = caught.value.errors()
    message = str(error["msg"])
    assert "\n" not in message
    return message


def test_plaintext_is_the_default_and_carries_no_credentials() -> None:
    assert connection_options(kafka_settings()) == {
        "bootstrap_servers": "kafka-0:9094,kafka-1:9094",
        "security_protocol": "PLAINTEXT",
    }


def test_sasl_ssl_with_scram_and_a_private_ca(pki: tuple[Issued, Issued]) -> None:
    ca, _ = pki
    options = connection_options(
        kafka_settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="participants",
            kafka_sasl_password="s3cret",
            kafka_ssl_cafile=ca.cert,
        )
    )
    context = options.pop("ssl_context")
    assert options == {
        "bootstrap_servers": "kafka-0:9094,kafka-1:9094",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "participants",
        "sasl_plain_password": "s3cret",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "ca"),),)]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_sasl_plaintext_takes_the_mechanism_and_a_password_file(tmp_path: Path, mechanism: str) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-secret\n")  # a mounted Secret's trailing newline is not part of it
    options = connection_options(
        kafka_settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism=mechanism,
            kafka_sasl_username="training",
            kafka_sasl_password_file=secret,
        )
    )
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_password"] == "from-a-secret"
    assert "ssl_context" not in options
    secret.write_text("rotated")  # read on every client construction: a rotated Secret is picked up
    assert (
        connection_options(
            kafka_settings(
                kafka_security_protocol="SASL_PLAINTEXT",
                kafka_sasl_username="training",
                kafka_sasl_password_file=secret,
            )
        )["sasl_plain_password"]
        == "rotated"
    )


def test_mtls_loads_the_client_certificate_with_the_key_password_file(
    tmp_path: Path, pki: tuple[Issued, Issued]
) -> None:
    ca, client = pki
    key_password = tmp_path / "key-password"
    key_password.write_text("key-secret\n")
    options = connection_options(
        kafka_settings(
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=ca.cert,
            kafka_ssl_certfile=client.cert,
            kafka_ssl_keyfile=client.key,
            kafka_ssl_key_password_file=key_password,
        )
    )
    assert options["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in options
    assert isinstance(options["ssl_context"], ssl.SSLContext)

    key_password.write_text("wrong")
    with pytest.raises(KafkaSettingsError, match="cannot load the client certificate and key") as caught:
        connection_options(
            kafka_settings(
                kafka_security_protocol="SSL",
                kafka_ssl_cafile=ca.cert,
                kafka_ssl_certfile=client.cert,
                kafka_ssl_keyfile=client.key,
                kafka_ssl_key_password_file=key_password,
            )
        )
    assert "\n" not in str(caught.value)


def test_the_hostname_check_can_be_turned_off_but_never_the_chain(pki: tuple[Issued, Issued]) -> None:
    ca, _ = pki
    context = connection_options(
        kafka_settings(kafka_security_protocol="SSL", kafka_ssl_cafile=ca.cert, kafka_ssl_check_hostname=False)
    )["ssl_context"]
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_a_ca_file_that_is_not_pem_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(KafkaSettingsError, match="PENA_KAFKA_SSL_CAFILE") as caught:
        KafkaPublisher(kafka_settings(kafka_security_protocol="SSL", kafka_ssl_cafile=bad))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_password": "x"}, "PENA_KAFKA_SASL_USERNAME must be set"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u"},
            "PENA_KAFKA_SASL_PASSWORD or PENA_KAFKA_SASL_PASSWORD_FILE must be set",
        ),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_username": "u",
                "kafka_sasl_password": "x",
                "kafka_sasl_password_file": "/etc/hosts",
            },
            "not both",
        ),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_username": "u",
                "kafka_sasl_password_file": "/nonexistent/kafka-password",
            },
            "PENA_KAFKA_SASL_PASSWORD_FILE: /nonexistent/kafka-password is not a readable file",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nonexistent/ca.pem"},
            "PENA_KAFKA_SSL_CAFILE: /nonexistent/ca.pem is not a readable file",
        ),
        ({"kafka_ssl_cafile": "/etc/hosts"}, "PENA_KAFKA_SSL_CAFILE is set but PLAINTEXT does not use TLS"),
        ({"kafka_sasl_username": "u"}, "PENA_KAFKA_SASL_USERNAME is set but PLAINTEXT does not use SASL"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": "/etc/hosts"}, "without PENA_KAFKA_SSL_CERTFILE"),
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-1"}, "SCRAM-SHA-256"),
        ({"kafka_security_protocol": "TLS"}, "SASL_SSL"),
    ],
)
def test_unusable_combinations_are_refused_with_one_line(values: dict[str, object], rule: str) -> None:
    assert rule in refusal(**values)


def test_a_refusal_never_prints_the_password() -> None:
    with pytest.raises(ValidationError) as caught:
        kafka_settings(kafka_security_protocol="SASL_SSL", kafka_sasl_password="hunter2-secret")
    assert "hunter2-secret" not in str(caught.value)
    assert "hunter2-secret" not in repr(
        kafka_settings(
            kafka_security_protocol="SASL_SSL", kafka_sasl_username="u", kafka_sasl_password="hunter2-secret"
        )
    )


def test_production_refuses_plain_passwords_without_tls() -> None:
    values = {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN"}
    values |= {"kafka_sasl_username": "u", "kafka_sasl_password": "x"}
    with pytest.raises(ValidationError, match="SASL PLAIN without TLS sends the password in clear"):
        Settings(environment="production", **values)  # type: ignore[arg-type]
    assert kafka_settings(**values).kafka_sasl_mechanism == "PLAIN"  # allowed outside production


def test_a_secret_file_removed_after_start_up_is_a_clear_error(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("x")
    settings = kafka_settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="u", kafka_sasl_password_file=secret
    )
    secret.unlink()
    with pytest.raises(KafkaSettingsError, match="PENA_KAFKA_SASL_PASSWORD_FILE: .* is not a readable file"):
        connection_options(settings)
