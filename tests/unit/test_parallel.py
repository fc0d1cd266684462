"""pena.parallel: parts in order, the worker processes really used for large inputs, small ones here."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

from pena import parallel


def squares_with_pid(part: list[int], offset: int) -> tuple[int, list[int]]:
    return os.getpid(), [n * n + offset for n in part]


async def map_parts(fn: Any, items: list[int], arg: int, *, workers: int) -> list[Any]:
    """Every part's result of `parallel.iter_parts`, collected."""
    return [result async for result in parallel.iter_parts(fn, items, arg, workers=workers)]


def test_split_keeps_order_and_sizes() -> None:
    assert parallel.split(list(range(7)), 2) == [[0, 1, 2, 3], [4, 5, 6]]
    assert parallel.split([1], 4) == [[1]]
    assert [len(p) for p in parallel.split(list(range(10)), 3)] == [4, 3, 3]


async def test_small_inputs_run_in_this_process() -> None:
    parts = await map_parts(squares_with_pid, [1, 2, 3], 1, workers=2)
    assert parts == [(os.getpid(), [2, 5, 10])]


async def test_large_inputs_run_in_worker_processes_in_order() -> None:
    items = list(range(2 * parallel.MIN_PART + 1))
    try:
        parts = await map_parts(squares_with_pid, items, 3, workers=2)
    finally:
        parallel.shutdown()
    assert len(parts) == 2
    assert os.getpid() not in {pid for pid, _ in parts}
    assert [n for _, values in parts for n in values] == [n * n + 3 for n in items]
    one_worker = await map_parts(squares_with_pid, items, 3, workers=1)
    assert one_worker == [(os.getpid(), [n * n + 3 for n in items])]


async def test_a_dead_worker_fails_the_call_and_the_next_call_gets_a_fresh_pool() -> None:
    items = list(range(2 * parallel.MIN_PART))
    try:
        first = await map_parts(squares_with_pid, items, 0, workers=2)
        os.kill(first[0][0], signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):  # noqa: PT012 - until the pool has noticed the death
            for _ in range(50):
                await map_parts(squares_with_pid, items, 0, workers=2)
                await asyncio.sleep(0.1)
        again = await map_parts(squares_with_pid, items, 0, workers=2)
        assert [n for _, values in again for n in values] == [n * n for n in items]
        assert first[0][0] not in {pid for pid, _ in again}
    finally:
        parallel.shutdown()


PARENT = """
import time
from pena import parallel

if __name__ == "__main__":
    parallel.warm_up("pena.crypto", workers=2)
    print("up", flush=True)
    time.sleep(60)
"""


def test_workers_end_when_their_parent_is_killed(tmp_path) -> None:
    """A service killed with SIGKILL runs no shutdown: its idle workers must not live on, orphaned."""
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == b"up"
        workers: list[int] = []
        for _ in range(100):  # both workers spawned
            children = [
                int(pid)
                for task in Path(f"/proc/{parent.pid}/task").iterdir()
                for pid in (task / "children").read_text().split()
            ]
            workers = [pid for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
            if len(workers) == 2:
                break
            time.sleep(0.1)
        assert len(workers) == 2
    finally:
        parent.kill()
        parent.wait()
    for _ in range(100):
        if not any(Path(f"/proc/{pid}").exists() for pid in workers):
            break
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
