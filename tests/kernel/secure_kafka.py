"""A private single-node KRaft broker secured as a managed Kafka is: a SASL_SSL listener (SCRAM),
an mTLS listener (client certificates), the StandardAuthorizer with a super user and per-service
ACLs. Used by tests/kernel/test_kafka_security.py; it never touches the shared broker on 9092.

The jars, the java command line and the stop logic are composition.infra.KafkaInfra's (reused, not copied);
what differs is the configuration: TLS material made here with `cryptography`, SCRAM users added at
format time (`StorageTool format --add-scram`, Kafka 3.5+), ACLs created with Kafka's own AclCommand
(aiokafka's admin client has no ACL API)."""

from __future__ import annotations

import base64
import ipaddress
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from composition import infra
from pena.settings import Settings
from tests.e2e.conftest import free_port

SCRAM = "SCRAM-SHA-512"
ADMIN = "admin"  # the broker's own principal and the super user


# ---------------------------------------------------------------- TLS material


@dataclass(frozen=True)
class Issued:
    cert: Path  # PEM certificate
    key: Path  # PEM private key (PKCS#8; encrypted when a password was given)


def make_ca(folder: Path, name: str) -> Issued:
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
        .not_valid_after(now + timedelta(days=2))
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


def issue(folder: Path, ca: Issued, common_name: str, *, server: bool, key_password: str | None = None) -> Issued:
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
        .not_valid_after(now + timedelta(days=2))
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


# ---------------------------------------------------------------- the broker


@dataclass
class ServiceGrant:
    """What one service's principal may do: write its own topic, read the topics it consumes."""

    service: str
    consumes: list[str]


@dataclass
class SecureKafka:
    namespace: str  # the topic namespace of the settings the tests use
    users: dict[str, str]  # SCRAM user -> password (the admin included)
    base: infra.KafkaInfra = field(init=False)
    sasl_port: int = field(init=False)
    mtls_port: int = field(init=False)
    controller_secret: str = field(default_factory=lambda: uuid.uuid4().hex)
    ca: Issued | None = None  # made by up(); tests issue client certificates (mTLS) with it

    def __post_init__(self) -> None:
        self.sasl_port, self.mtls_port = free_port(), free_port()
        self.base = infra.KafkaInfra(
            port=self.sasl_port, controller_port=free_port(), name=f"secure-kafka-{uuid.uuid4().hex[:8]}"
        )

    @property
    def home(self) -> Path:
        return self.base.home

    @property
    def tls(self) -> Path:
        return self.home / "tls"

    @property
    def ca_file(self) -> Path:
        return self.tls / "ca.crt.pem"

    # -- settings a client of this broker uses

    def sasl_settings(self, template: Settings, user: str, password: str | None = None, **extra: object) -> Settings:
        values = template.model_dump() | {
            "kafka_bootstrap": f"127.0.0.1:{self.sasl_port}",
            "topic_namespace": self.namespace,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": SCRAM,
            "kafka_sasl_username": user,
            "kafka_sasl_password": password if password is not None else self.users[user],
            "kafka_ssl_cafile": self.ca_file,
        }
        return Settings(**(values | extra))

    def mtls_settings(self, template: Settings, client: Issued, **extra: object) -> Settings:
        values = template.model_dump() | {
            "kafka_bootstrap": f"127.0.0.1:{self.mtls_port}",
            "topic_namespace": self.namespace,
            "kafka_security_protocol": "SSL",
            "kafka_ssl_cafile": self.ca_file,
            "kafka_ssl_certfile": client.cert,
            "kafka_ssl_keyfile": client.key,
        }
        return Settings(**(values | extra))

    # -- lifecycle

    def up(self, grants: Iterable[ServiceGrant], timeout: float = 120) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.base.resolve_jars()
        self.ca = ca = make_ca(self.tls, "ca")
        broker = issue(self.tls, ca, "broker", server=True)
        keystore = self.tls / "broker.keystore.pem"  # Kafka's PEM keystore: private key, then the chain
        keystore.write_bytes(broker.key.read_bytes() + broker.cert.read_bytes())
        props = self._write_config(keystore)
        self._format(props)
        out = open(self.home / "kafka.out", "ab")  # the broker process keeps writing to it
        proc = subprocess.Popen(
            self.base._java("kafka.Kafka", str(props), heap="512m"), stdout=out, stderr=out, start_new_session=True
        )
        self.base.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while not infra._port_open("127.0.0.1", self.sasl_port):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.down()
                log = (self.home / "kafka.out").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the secured broker did not start (exit {proc.poll()}):\n{log}")
            time.sleep(0.25)
        self._create_acls(list(grants))

    def down(self) -> None:
        self.base.down()

    def _write_config(self, keystore: Path) -> Path:
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        c = self.base.controller_port
        admin_scram = (
            f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{ADMIN}" '
            f'password="{self.users[ADMIN]}";'
        )
        # the controller listener cannot use SCRAM (its credentials live in the metadata the
        # controller serves): PLAIN between the broker and its own controller, never exposed
        controller_plain = (
            f'org.apache.kafka.common.security.plain.PlainLoginModule required username="{ADMIN}" '
            f'password="{self.controller_secret}" user_{ADMIN}="{self.controller_secret}";'
        )
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{c}",
            f"listeners=SASL_SSL://127.0.0.1:{self.sasl_port},SSL://127.0.0.1:{self.mtls_port},"
            f"CONTROLLER://127.0.0.1:{c}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{self.sasl_port},SSL://127.0.0.1:{self.mtls_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=SASL_SSL",
            "listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config={controller_plain}",
            f"sasl.mechanism.inter.broker.protocol={SCRAM}",
            f"listener.name.sasl_ssl.sasl.enabled.mechanisms={SCRAM}",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={admin_scram}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.ca_file}",
            "listener.name.ssl.ssl.client.auth=required",
            # a client certificate "CN=participants" is the principal User:participants
            "ssl.principal.mapping.rules=RULE:^CN=([a-zA-Z0-9._-]+)$/$1/,DEFAULT",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{ADMIN}",
            "allow.everyone.if.no.acl.found=false",
            f"log.dirs={data}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "",
        ]
        props = self.home / "server.properties"
        props.write_text("\n".join(lines))
        (self.home / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, file\n"
            "log4j.appender.file=org.apache.log4j.FileAppender\n"
            f"log4j.appender.file.File={self.home / 'kafka.log'}\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        )
        client = self.home / "admin.properties"  # the super user's connection, for AclCommand
        client.write_text(
            "\n".join(
                [
                    "security.protocol=SASL_SSL",
                    f"sasl.mechanism={SCRAM}",
                    f"sasl.jaas.config={admin_scram}",
                    "ssl.truststore.type=PEM",
                    f"ssl.truststore.location={self.ca_file}",
                    "",
                ]
            )
        )
        return props

    def _format(self, props: Path) -> None:
        while True:  # as composition.infra: a cluster id must not start with '-'
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            if not cluster_id.startswith("-"):
                break
        scram = [a for user, pw in self.users.items() for a in ("--add-scram", f"{SCRAM}=[name={user},password={pw}]")]
        subprocess.run(
            self.base._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props), *scram),
            check=True,
            capture_output=True,
        )

    def _acl(self, principal: str, operations: list[str], resources: list[str]) -> subprocess.Popen[bytes]:
        args = ["--bootstrap-server", f"127.0.0.1:{self.sasl_port}"]
        args += [
            "--command-config",
            str(self.home / "admin.properties"),
            "--add",
            "--allow-principal",
            f"User:{principal}",
            "--force",
        ]
        for op in operations:
            args += ["--operation", op]
        return subprocess.Popen(
            self.base._java("kafka.admin.AclCommand", *args, *resources, heap="128m"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def _create_acls(self, grants: list[ServiceGrant]) -> None:
        """Each service: Write (and Describe) on its own topic and on the dead-letter topics of what it
        consumes; Read (and Describe) on the topics it consumes and on its consumer group. Nothing else:
        no Write on another service's topic."""
        topic = lambda svc: f"{self.namespace}.{svc}.events"  # noqa: E731 - as Settings.topic
        jobs = []
        for g in grants:
            writes = [topic(g.service)] + [f"{topic(s)}.DLT" for s in g.consumes]
            reads = [topic(s) for s in g.consumes]
            jobs.append(self._acl(g.service, ["Write", "Describe"], [a for t in writes for a in ("--topic", t)]))
            resources = [a for t in reads for a in ("--topic", t)] + ["--group", f"{self.namespace}.{g.service}"]
            jobs.append(self._acl(g.service, ["Read", "Describe"], resources))
        for job in jobs:
            output, _ = job.communicate(timeout=120)
            if job.returncode != 0:
                raise RuntimeError(f"AclCommand failed: {output.decode(errors='replace')[-2000:]}")
