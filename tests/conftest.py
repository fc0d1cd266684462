"""Shared fixtures: real PostgreSQL and Kafka started by the project's own infra code, a fresh
database per service per test, a topic namespace per test, and dev-key tokens.

Every test gets isolated names (`t<hex>`), so suites may run side by side on one machine."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx
import pytest

from composition import infra
from pena.auth import issue_dev_token
from pena.clock import Clock, ManualClock
from pena.db import drop_database
from pena.definition import ServiceDefinition
from pena.http.app import create_app
from pena.runtime import Runtime
from pena.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@pytest.fixture(scope="session")
def infra_up() -> None:
    """PostgreSQL and Kafka, started once (idempotent: this checkout's servers already running is fine).

    A port served by another checkout's server stops the session with the reason (in CI, a clean
    clone, nothing else runs). Several worktrees on one machine share one checkout's servers by
    setting PENA_INFRA_SHARED=1."""
    try:
        infra.up()
    except infra.InfraConflict as exc:
        pytest.exit(f"{exc}", returncode=3)


@pytest.fixture
def settings(infra_up: None) -> Settings:
    ns = "t" + uuid.uuid4().hex[:10]
    pg = infra.PostgresInfra()
    return Settings(
        environment="test",
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{pg.port}/{ns}_{{service}}",
        kafka_bootstrap=infra.KafkaInfra().bootstrap,
        topic_namespace=ns,
        topic_partitions=3,
        db_pool_size=5,
        db_max_overflow=20,
        consumer_backoff_seconds=0.05,
        relay_idle_poll_seconds=0.5,
        scheduler_poll_seconds=0.2,
        allow_clock_control=True,
        log_json=True,
    )


RuntimeFactory = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def make_runtime(settings: Settings) -> AsyncIterator[RuntimeFactory]:
    """Builds and starts runtimes; stops them and drops their databases afterwards."""
    created: list[Runtime] = []

    async def factory(
        definitions: list[ServiceDefinition],
        *,
        bus: Literal["kafka", "inprocess"] = "inprocess",
        clock: Clock | None = None,
        workers: bool = False,
        settings_: Settings | None = None,
    ) -> Runtime:
        runtime = Runtime(
            settings_ or settings,
            definitions,
            clock=clock or ManualClock(datetime(2026, 1, 5, tzinfo=UTC)),
            bus=bus,
            workers=workers,
        )
        await runtime.start()
        created.append(runtime)
        return runtime

    yield factory
    names: set[str] = set()
    for runtime in created:
        await runtime.stop()
        names |= set(runtime.services)
    for name in names:
        await drop_database(settings.service_database_url(name))


@pytest.fixture
def api() -> Callable[[Runtime], httpx.AsyncClient]:
    """An HTTP client on the app of a started runtime (ASGI in-process, real database behind it)."""

    def build(runtime: Runtime) -> httpx.AsyncClient:
        app = create_app(runtime)
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://pena.test"
        )

    return build


@pytest.fixture
def auth(settings: Settings) -> Callable[..., dict[str, str]]:
    """auth("admin", unit=..., sub=...) -> Authorization header for a dev-key token."""

    def header(role: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_dev_token(settings, role=role, **kwargs)}"}

    return header


@pytest.fixture
def spans(settings: Settings) -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test (pena.telemetry), every finished span kept in memory. Request it before
    `make_runtime`, so the runtimes are built (and their engines instrumented) with tracing on."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from pena import telemetry

    exporter = InMemorySpanExporter()
    telemetry.start(settings, "pena-test", SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        telemetry.stop()
