"""The `pena` command (composition.cli:main): runs, migrates and serves the services of the catalogue.

pena dev                      everything in one process (embedded PostgreSQL, in-process bus)
pena serve <service>          one service with its relay, consumers and scheduler on Kafka
pena migrate [service...]     create databases and tables
pena infra up|down|status     local PostgreSQL and Kafka without Docker
pena token --role ROLE        a bearer token signed with the local dev key
pena topics                   create the Kafka topics and dead-letter topics
pena asyncapi [--check]       write (or check) docs/asyncapi.yaml from the event contracts
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from composition.catalog import DEFAULT_PORTS, SERVICE_MODULES, build_app, load_definitions
from pena.settings import Settings


def _cmd_infra(args: argparse.Namespace) -> int:
    from composition import infra

    if args.action == "up":
        lines = infra.up(postgres=not args.no_postgres, kafka=not args.no_kafka)
    elif args.action == "down":
        lines = infra.down()
    else:
        lines = infra.status()
    print("\n".join(lines))
    return 0


def _cmd_dev(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from composition import infra
    from pena.logging_setup import configure_logging

    os.environ.setdefault("PENA_BUS", "inprocess")
    os.environ.setdefault("PENA_ALLOW_CLOCK_CONTROL", "true")
    if "PENA_DATABASE_URL" not in os.environ:
        print(infra.PostgresInfra().up())
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    app = build_app(settings=settings)
    base = f"http://{args.host}:{args.port}"
    print(
        f"PENA dev: all four services on {base}\n  API docs: {base}/docs\n"
        f'  a token:  pena token --role admin   (then: -H "Authorization: Bearer $TOKEN")',
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from pena.logging_setup import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    app = build_app([args.service], settings=settings)
    uvicorn.run(app, host=args.host, port=args.port or DEFAULT_PORTS[args.service], log_config=None, access_log=False)
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from pena.migrate import migrate

    settings = Settings()

    async def run() -> None:
        for definition in load_definitions(args.services or None):
            await migrate(settings, definition)
            print(f"migrated {definition.name}")

    asyncio.run(run())
    return 0


def _cmd_migrations(args: argparse.Namespace) -> int:
    from pena.migrate import new_revision, schema_drift

    settings = Settings()
    if args.action == "revision":
        if not args.service or not args.message:
            raise SystemExit("usage: pena migrations revision <service> -m MESSAGE")
        asyncio.run(new_revision(settings, load_definitions([args.service])[0], args.message))
        print(f"wrote a new revision for {args.service}")
        return 0

    async def check() -> int:
        stale = 0
        for definition in load_definitions([args.service] if args.service else None):
            if definition.migrations is None:
                print(f"{definition.name}: has no revisions")
                stale += 1
                continue
            drift = await schema_drift(settings, definition)
            print(f"{definition.name}: {'in step' if not drift else f'{len(drift)} difference(s)'}")
            for diff in drift:
                print(f"  {diff}")
            stale += bool(drift)
        return 1 if stale else 0

    return asyncio.run(check())


def _cmd_topics(args: argparse.Namespace) -> int:
    from pena.kafka import ensure_topics

    settings = Settings()
    asyncio.run(ensure_topics(settings, list(SERVICE_MODULES)))
    print("topics ready: " + ", ".join(settings.topic(s) for s in SERVICE_MODULES))
    return 0


def _cmd_regions(args: argparse.Namespace) -> int:
    # the region reference data belongs to the participants service; the CLI only composes
    from pena.migrate import migrate
    from services.participants.regions import DEFAULT_REGIONS_CSV, import_regions

    settings = Settings()

    async def run() -> int:
        await migrate(settings, load_definitions(["participants"])[0])
        return await import_regions(settings, args.file or DEFAULT_REGIONS_CSV)

    print(f"imported {asyncio.run(run())} region codes from {args.file or DEFAULT_REGIONS_CSV}")
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    from pena.auth import issue_dev_token

    print(
        issue_dev_token(
            Settings(), role=args.role, sub=args.sub, unit=args.unit, scopes=args.scope or None, ttl_seconds=args.ttl
        )
    )
    return 0


def _cmd_asyncapi(args: argparse.Namespace) -> int:
    from pena.asyncapi import render_asyncapi

    target = Path(args.output)
    text = render_asyncapi(Settings())
    if args.check:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is stale: run `pena asyncapi`", file=sys.stderr)
            return 1
        print(f"{target} is current")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"wrote {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pena", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("dev", help="all four services in one process, embedded PostgreSQL, in-process bus")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=_cmd_dev)

    p = sub.add_parser("serve", help="one service with its relay, consumers and scheduler on Kafka")
    p.add_argument("service", choices=list(SERVICE_MODULES))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("migrate", help="create service databases and tables")
    p.add_argument("services", nargs="*")
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("migrations", help="autogenerate a revision, or check revisions match the models")
    p.add_argument("action", choices=["revision", "check"])
    p.add_argument("service", nargs="?")
    p.add_argument("-m", "--message")
    p.set_defaults(func=_cmd_migrations)

    p = sub.add_parser("infra", help="local PostgreSQL and Kafka without Docker")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--no-kafka", action="store_true")
    p.add_argument("--no-postgres", action="store_true")
    p.set_defaults(func=_cmd_infra)

    p = sub.add_parser("topics", help="create Kafka topics and dead-letter topics")
    p.set_defaults(func=_cmd_topics)

    p = sub.add_parser("regions", help="import Kemendagri region codes (CSV: version,code,name,level)")
    p.add_argument("action", choices=["import"])
    p.add_argument("file", nargs="?", help="defaults to the list shipped with the participants service")
    p.set_defaults(func=_cmd_regions)

    p = sub.add_parser("token", help="print a bearer token signed with the local dev key")
    p.add_argument("--role", required=True)
    p.add_argument("--unit")
    p.add_argument("--sub")
    p.add_argument("--scope", action="append", help="narrow to these scopes (repeatable)")
    p.add_argument("--ttl", type=int, default=3600 * 8)
    p.set_defaults(func=_cmd_token)

    p = sub.add_parser("asyncapi", help="write or check the AsyncAPI document")
    p.add_argument("--output", default="docs/asyncapi.yaml")
    p.add_argument("--check", action="store_true")
    p.set_defaults(func=_cmd_asyncapi)

    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
