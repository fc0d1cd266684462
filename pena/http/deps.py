"""The dependencies routes use: the runtime, a service's one transaction per request, the clock and
the settings.

Dependencies are `async def` although they do not await: FastAPI runs a plain `def` dependency in a
worker thread, a thread hop per dependency per request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.clock import Clock
from pena.runtime import Runtime, ServiceRuntime
from pena.settings import Settings


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def service_runtime(name: str) -> Callable[[Request], Awaitable[ServiceRuntime]]:
    async def dependency(request: Request) -> ServiceRuntime:
        return get_runtime(request).services[name]

    return dependency


def session_for(name: str) -> Callable[[Request], AsyncIterator[AsyncSession]]:
    """The request's one transaction on the service's database: commits after the route returns
    (before the response is sent, so a failed commit is the caller's error), rolls back on error."""

    async def dependency(request: Request) -> AsyncIterator[AsyncSession]:
        async with get_runtime(request).services[name].db.transaction() as session:
            yield session

    return dependency


def session_dependency(name: str) -> Any:
    return Depends(session_for(name), scope="function")


async def get_clock(request: Request) -> Clock:
    return get_runtime(request).clock


async def get_settings_dep(request: Request) -> Settings:
    return get_runtime(request).settings


ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
