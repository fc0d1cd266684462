"""SASL_SSL for the local Kafka brokers, written once: a throwaway certificate authority and the
certificates it signs (with `cryptography`), the SCRAM-SHA-512 users added at format time
(`StorageTool format --add-scram`, Kafka 3.5+), and the broker properties of a secured node: the
client listener SASL_SSL with SCRAM, the KRaft controller listener SASL_PLAINTEXT with PLAIN (its
SCRAM credentials would live in the metadata the controller itself serves), inter-broker traffic as
the super user over SASL_SSL, and the StandardAuthorizer (no ACL: no access, except the super user).

Used by `pena infra up --brokers 3 --sasl-ssl` (composition.infra.KafkaCluster) and by the tests'
private secured brokers (tests/kernel/secure_kafka.py, tests/faults/test_secure_cluster.py)."""

from __future__ import annotations

import ipaddress
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SCRAM = "SCRAM-SHA-512"
ADMIN = "admin"  # the brokers' own principal and the super user
SASL_SSL_PROTOCOL_MAP = "CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"


# ---------------------------------------------------------------- TLS material


@dataclass(frozen=True)
class Issued:
    cert: Path  # PEM certificate
    key: Path  # PEM private key (PKCS#8; encrypted when a password was given)


def make_ca(folder: Path, name: str, *, days: int = 2) -> Issued:
    """A self-signed certificate authority (EC P-256), valid for `days`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _write(folder, name, cert, key, None)


def issue(
    folder: Path, ca: Issued, common_name: str, *, server: bool, key_password: str | None = None, days: int = 2
) -> Issued:
    """A certificate signed by `ca`: a server one names 127.0.0.1 and localhost."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return _write(folder, common_name, builder.sign(ca_key, hashes.SHA256()), key, key_password)


def _write(
    folder: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, password: str | None
) -> Issued:
    folder.mkdir(parents=True, exist_ok=True)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    cert_path, key_path = folder / f"{name}.crt.pem", folder / f"{name}.key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    key_path.chmod(0o600)
    return Issued(cert_path, key_path)


# ---------------------------------------------------------------- a secured broker's configuration


@dataclass(frozen=True)
class SaslSsl:
    """The security of one or more brokers sharing a folder: the CA (`ca.crt.pem`), the brokers' PEM
    keystore (one certificate for 127.0.0.1/localhost, fine for nodes on one host), the SCRAM users
    and the controller listener's secret (`credentials.json`, mode 0600), and one password file per
    user (`<user>.password`, what PENA_KAFKA_SASL_PASSWORD_FILE points at). `prepare()` makes what
    is missing and keeps what exists, so a restarted cluster keeps its CA and passwords."""

    folder: Path
    users: tuple[str, ...] = (ADMIN,)

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.crt.pem"

    @property
    def keystore(self) -> Path:
        return self.folder / "broker.keystore.pem"  # Kafka's PEM keystore: private key, then the chain

    @property
    def _credentials_file(self) -> Path:
        return self.folder / "credentials.json"

    def password_file(self, user: str) -> Path:
        return self.folder / f"{user}.password"

    def prepare(self, passwords: dict[str, str] | None = None) -> None:
        """Creates the CA, the broker keystore and the credentials when missing; `passwords` fixes
        some users' passwords (the rest are random)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.ca_file.exists() or not self.keystore.exists():
            ca = make_ca(self.folder, "ca", days=365)
            broker = issue(self.folder, ca, "broker", server=True, days=365)
            self.keystore.write_bytes(broker.key.read_bytes() + broker.cert.read_bytes())
            self.keystore.chmod(0o600)
        if not self._credentials_file.exists():
            users = {user: (passwords or {}).get(user) or secrets.token_hex(16) for user in (ADMIN, *self.users)}
            credentials = {"users": users, "controller_secret": secrets.token_hex(16)}
            self._credentials_file.touch(mode=0o600)
            self._credentials_file.write_text(json.dumps(credentials, indent=2))
            for user, password in users.items():
                self.password_file(user).touch(mode=0o600)
                self.password_file(user).write_text(password + "\n")

    @property
    def ca(self) -> Issued:
        return Issued(self.ca_file, self.folder / "ca.key.pem")

    def _credentials(self) -> dict[str, Any]:
        credentials: dict[str, Any] = json.loads(self._credentials_file.read_text())
        return credentials

    def password(self, user: str) -> str:
        return str(self._credentials()["users"][user])

    def format_arguments(self) -> list[str]:
        """`StorageTool format` arguments that add every SCRAM user to the new cluster's metadata."""
        users = self._credentials()["users"]
        return [a for user, pw in users.items() for a in ("--add-scram", f"{SCRAM}=[name={user},password={pw}]")]

    def _admin_jaas(self) -> str:
        return (
            f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{ADMIN}" '
            f'password="{self.password(ADMIN)}";'
        )

    def broker_properties(self) -> list[str]:
        """The server.properties lines of a SASL_SSL node (its listeners and protocol map aside: the
        caller names its ports, SASL_SSL_PROTOCOL_MAP holds the two listeners every node has)."""
        secret = self._credentials()["controller_secret"]
        # never exposed: PLAIN between the nodes' controller listeners, with one shared secret
        controller_plain = (
            f'org.apache.kafka.common.security.plain.PlainLoginModule required username="{ADMIN}" '
            f'password="{secret}" user_{ADMIN}="{secret}";'
        )
        return [
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=SASL_SSL",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config={controller_plain}",
            f"sasl.mechanism.inter.broker.protocol={SCRAM}",
            f"listener.name.sasl_ssl.sasl.enabled.mechanisms={SCRAM}",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={self._admin_jaas()}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.ca_file}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{ADMIN}",
            "allow.everyone.if.no.acl.found=false",
        ]

    def admin_client_properties(self) -> str:
        """A Kafka command-line tool's `--command-config` file for the super user (AclCommand)."""
        return "\n".join(
            [
                "security.protocol=SASL_SSL",
                f"sasl.mechanism={SCRAM}",
                f"sasl.jaas.config={self._admin_jaas()}",
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={self.ca_file}",
                "",
            ]
        )

    def settings_values(self, user: str = ADMIN, password: str | None = None) -> dict[str, Any]:
        """The PENA settings (field names) of a client connecting as `user`: SASL_SSL, SCRAM, the CA;
        the password itself when given, else the user's password file (as a mounted Secret)."""
        values: dict[str, Any] = {
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": SCRAM,
            "kafka_sasl_username": user,
            "kafka_ssl_cafile": self.ca_file,
        }
        if password is not None:
            return values | {"kafka_sasl_password": password}
        return values | {"kafka_sasl_password_file": self.password_file(user)}

    def environment(self, user: str = ADMIN) -> str:
        """The same settings as `PENA_*` variables (what `pena infra up` prints)."""
        return " ".join(f"PENA_{name.upper()}={value}" for name, value in self.settings_values(user).items())
