"""CPU-bound work of a bulk path on the machine's other cores: a pool of worker processes
(`concurrent.futures.ProcessPoolExecutor`, the standard library's), started at first use and kept
for the process's life. Python runs one thread of Python code at a time, so the per-row work of an
import chunk (validation, HMAC tokens, AES-GCM, building the column values) can only use a second
core from a second process; the database work stays in the caller's transaction.

    async for part in iter_parts(process_rows, rows, preparation, workers=2, per_worker=2):
        ...  # part i's database work while the workers compute the parts after it

`fn(part, arg)` must be a module-level function whose arguments and result pickle (plain data, frozen
dataclasses, pydantic settings): it runs in a fresh interpreter ("spawn": no fork of a process that
holds threads, sockets and an event loop), which imports `fn`'s module once. With `workers` below 2,
or too few items to be worth the trip, `fn` runs here, in one part. A worker that dies (killed, out
of memory) fails the call with BrokenProcessPool (a chunk job is retried) and the next call starts a
fresh pool."""

from __future__ import annotations

import asyncio
import atexit
import importlib
import multiprocessing
import os
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

T = TypeVar("T")
A = TypeVar("A")
R = TypeVar("R")

MIN_PART = 1000
"""Fewer items than this per worker run in the calling process: sending them costs more than it saves."""

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_workers = 0


def _warm(module: str) -> None:
    importlib.import_module(module)


def _exit_with_parent(parent: int) -> None:
    """A worker's initializer: a daemon thread ends the worker once its parent is gone. A parent
    killed with SIGKILL runs no shutdown, and an idle worker waiting on the task queue would otherwise
    live on, orphaned, holding its memory."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="pena-parallel-parent-watch", daemon=True).start()


def pool(workers: int) -> ProcessPoolExecutor:
    """The process's pool of `workers` worker processes, started on first use (a different size
    replaces it)."""
    global _pool, _pool_workers
    with _lock:
        if _pool is None or _pool_workers != workers:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            _pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
            _pool_workers = workers
        return _pool


def warm_up(module: str, *, workers: int) -> None:
    """Starts the pool's workers and has each import `module` now (an upload's first chunk then does
    not wait for interpreters to start). Does nothing when `workers` is below 2."""
    if workers >= 2:
        executor = pool(workers)
        for _ in range(workers):
            executor.submit(_warm, module)


def shutdown() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
            _pool = None


atexit.register(shutdown)


def split(items: Sequence[T], parts: int) -> list[Sequence[T]]:
    """`items` in `parts` contiguous slices of nearly equal length, in order (fewer when short)."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    slices, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        slices.append(items[start:end])
        start = end
    return slices


async def iter_parts(
    fn: Callable[[list[T], A], R], items: list[T], arg: A, *, workers: int, per_worker: int = 1
) -> AsyncGenerator[R, None]:
    """`fn` applied to contiguous parts of `items` in the worker processes, the results one at a time,
    in the items' order, each as soon as it is ready: `items` in up to `per_worker` parts per worker
    (at least MIN_PART items each), all sent at once, so the caller can work on part i (its database
    writes) while the workers compute the parts after it.
    In this process, as one part, when `workers` < 2 or the items are fewer than MIN_PART per worker.
    A caller that stops early should close the iterator (`contextlib.aclosing`): the parts not started
    are cancelled."""
    if workers < 2 or len(items) < 2 * MIN_PART:
        yield fn(items, arg)
        return
    executor = pool(workers)
    loop = asyncio.get_running_loop()
    parts = split(items, min(workers * max(1, per_worker), len(items) // MIN_PART))
    futures = [loop.run_in_executor(executor, fn, list(part), arg) for part in parts]
    try:
        for future in futures:
            yield await future
    except BrokenProcessPool:
        _discard(executor)  # a worker died (killed, out of memory): the next call starts a fresh pool
        raise
    finally:
        for future in futures:
            future.cancel()


def _discard(executor: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is executor:
            _pool = None
    executor.shutdown(wait=False, cancel_futures=True)
