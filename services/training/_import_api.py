"""TEMPORARY stand-in for the kernel's import-run API (pena.imports: ChunkResult, ImportContext, Rows)
until the lead's "Kernel: import runs" commit lands on main; removed at the merge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import Principal
from pena.clock import Clock
from pena.imports import Layout
from pena.settings import Settings

Rows = list[tuple[int, dict[Any, Any]]]


@dataclass
class ChunkResult:
    created: int = 0
    duplicates: int = 0
    refused: dict[int, list[tuple[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportContext:
    import_id: str
    actor: Principal
    settings: Settings
    clock: Clock


@dataclass(frozen=True)
class ImportKind:
    name: str
    layout: Layout
    process: Callable[[AsyncSession, ImportContext, Rows], Awaitable[ChunkResult]]
    example: Mapping[str, str]
    description: str
