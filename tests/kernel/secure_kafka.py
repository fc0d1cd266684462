"""A private single-node KRaft broker secured as a managed Kafka is: a SASL_SSL listener (SCRAM),
an mTLS listener (client certificates), the StandardAuthorizer with a super user and per-service
ACLs. Used by tests/kernel/test_kafka_security.py; it never touches the shared broker on 9092.

The jars, the java command line and the stop logic are composition.infra.KafkaInfra's, the TLS
material, the SCRAM users and the SASL_SSL broker properties composition.kafka_security's (the
secured cluster of `pena infra up --brokers 3 --sasl-ssl` uses the same); what this broker adds is
the mTLS listener and per-service ACLs, created with Kafka's own AclCommand (aiokafka's admin client
has no ACL API)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from composition import infra
from composition.infra import new_cluster_id
from composition.kafka_security import ADMIN, SASL_SSL_PROTOCOL_MAP, SCRAM, Issued, SaslSsl, issue, make_ca
from pena.settings import Settings
from tests.e2e.conftest import free_port

__all__ = ["ADMIN", "SCRAM", "Issued", "SecureKafka", "ServiceGrant", "issue", "make_ca"]


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
    def security(self) -> SaslSsl:
        return SaslSsl(self.home / "tls", users=tuple(self.users))

    @property
    def ca_file(self) -> Path:
        return self.security.ca_file

    # -- settings a client of this broker uses

    def sasl_settings(self, template: Settings, user: str, password: str | None = None, **extra: object) -> Settings:
        values = template.model_dump() | {
            "kafka_bootstrap": f"127.0.0.1:{self.sasl_port}",
            "topic_namespace": self.namespace,
        }
        values |= self.security.settings_values(user, password if password is not None else self.users[user])
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
        self.security.prepare(passwords=self.users)
        self.ca = self.security.ca
        props = self._write_config()
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

    def _write_config(self) -> Path:
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        c = self.base.controller_port
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{c}",
            f"listeners=SASL_SSL://127.0.0.1:{self.sasl_port},SSL://127.0.0.1:{self.mtls_port},"
            f"CONTROLLER://127.0.0.1:{c}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{self.sasl_port},SSL://127.0.0.1:{self.mtls_port}",
            f"listener.security.protocol.map={SASL_SSL_PROTOCOL_MAP},SSL:SSL",
            *self.security.broker_properties(),
            "listener.name.ssl.ssl.client.auth=required",
            # a client certificate "CN=participants" is the principal User:participants
            "ssl.principal.mapping.rules=RULE:^CN=([a-zA-Z0-9._-]+)$/$1/,DEFAULT",
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
        # the super user's connection, for AclCommand
        (self.home / "admin.properties").write_text(self.security.admin_client_properties())
        return props

    def _format(self, props: Path) -> None:
        cluster_id = new_cluster_id()
        subprocess.run(
            self.base._java(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(props),
                *self.security.format_arguments(),
            ),
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
