"""Bulk CSV import of N participants through the participants import API (POST
/v1/participants/imports, then poll GET /v1/participants/imports/{id} until done; the service's
scheduler processes the file in chunks of 5,000 rows, one transaction each, set-based: validation,
encryption, duplicate checks, then one INSERT per table for participants, history, audit and one
participant.registered outbox event per row) against raw PostgreSQL COPY of the same rows into a
bare table, in the same run; the service's peak resident memory (VmHWM) over the run, its worker
processes' (pena.parallel, PENA_WORKER_PROCESSES) and the CPU time of both. After the import, the
storage lower bound (bench.storage_bound): the rows the import wrote COPYed again into empty copies
of its tables (same indexes, foreign keys, triggers), what PostgreSQL alone must do for the same effects.

Issue 16 target: at most 5x the COPY time at 100,000 rows (floor 10x); 1,000,000 rows streamed with the
service's peak RSS under 300 MiB (reported).
    python -m bench.bulk_import [--full]            10,000 rows (100,000 with --full)
    BENCH_IMPORT_ROWS=1000000 python -m bench.bulk_import
    BENCH_BOUND_INDEXES=1 python -m bench.bulk_import   also the bound's cost per index (tables with > 2)
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import IO

import asyncpg
import httpx
from sqlalchemy import make_url

from bench import storage_bound
from bench.common import (
    Ratio,
    Result,
    asyncpg_dsn,
    bench_settings,
    delete_topics,
    drop_databases,
    main_for,
    new_namespace,
)
from bench.people import participants, to_csv
from bench.server import cpu_seconds, service
from pena.auth import issue_dev_token
from pena.db import ensure_database

BARE_TABLE = """
CREATE TABLE participants (
    nik text PRIMARY KEY, kk_number text NOT NULL, full_name text NOT NULL, birth_date date NOT NULL,
    sex text NOT NULL, region_code text NOT NULL, consent_purpose text NOT NULL, consent_given_on date NOT NULL,
    consent_recorded_by text NOT NULL)
"""


async def _copy(dsn: str, path: Path) -> float:
    """The baseline: the same rows COPYed into a plain table (with its primary key); reading the file
    into records is not timed."""
    with path.open(newline="") as f:
        records = [
            (r["nik"], r["kk_number"], r["full_name"], date.fromisoformat(r["birth_date"]), r["sex"], r["region_code"])
            + (r["consent_purpose"], date.fromisoformat(r["consent_given_on"]), r["consent_recorded_by"])
            for r in csv.DictReader(f)
        ]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(BARE_TABLE)
        started = time.perf_counter()
        await conn.copy_records_to_table("participants", records=records)
        return time.perf_counter() - started
    finally:
        await conn.close()


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size so far (VmHWM in /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    """The process's child processes (the import's worker processes, pena.parallel)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


async def backend_cpu(dsn: str, database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to `database` (same machine: /proc)."""
    conn = await asyncpg.connect(dsn)
    try:
        pids = [r["pid"] for r in await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)]
    finally:
        await conn.close()
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            found[pid] = cpu_seconds(pid)
    return found


def _csv_file(count: int, directory: str) -> Path:
    """The rows as a CSV file, written in slices (1,000,000 rows never sit in memory as one document)."""
    path = Path(directory) / "bench.csv"
    step = 50_000
    with path.open("wb") as out:
        for start in range(0, count, step):
            chunk = to_csv(participants(min(step, count - start), start=start))
            out.write(chunk if start == 0 else chunk.split(b"\n", 1)[1])
    return path


async def _import(base_url: str, content: bytes | IO[bytes], token: str, expected: int) -> tuple[float, dict[str, int]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=600) as client:
        started = time.perf_counter()
        response = await client.post("/v1/participants/imports", files={"file": ("bench.csv", content, "text/csv")})
        if response.status_code != 202:
            raise RuntimeError(f"import refused: {response.status_code} {response.text[:500]}")
        import_id = response.json()["id"]
        while True:
            job = (await client.get(f"/v1/participants/imports/{import_id}")).json()
            if job["status"] == "done":
                break
            if time.perf_counter() - started > 3600:
                raise RuntimeError(f"import not done after an hour: {job}")
            # polling costs the service CPU (each GET is an authenticated request: ~10 % of its samples at
            # every 50 ms): every 2 % of the time so far, at least 20 ms and at most 0.5 s apart
            await asyncio.sleep(min(0.5, max(0.02, (time.perf_counter() - started) / 50)))
        seconds = time.perf_counter() - started
    counts = {k: job[k] for k in ("created_rows", "duplicate_rows", "error_rows")}
    if counts["created_rows"] != expected:
        raise RuntimeError(f"expected {expected} created rows, got {counts}")
    return seconds, counts


async def run(full: bool) -> Result:
    count = int(os.environ.get("BENCH_IMPORT_ROWS") or (100_000 if full else 10_000))
    per_index = os.environ.get("BENCH_BOUND_INDEXES") == "1"  # the bound's cost per index too (longer)
    settings = bench_settings(new_namespace())
    token = issue_dev_token(settings, role="admin", ttl_seconds=4 * 3600)
    await ensure_database(settings.service_database_url("bare"))
    with tempfile.TemporaryDirectory() as tmp:
        path = _csv_file(count, tmp)
        try:
            copy_s = await _copy(asyncpg_dsn(settings, "bare"), path)
            with service(settings, "participants") as (process, url):
                idle_mib = peak_rss_mib(process.pid)
                cpu_before = cpu_seconds(process.pid)
                database = make_url(settings.service_database_url("participants")).database or ""
                backends_before = await backend_cpu(asyncpg_dsn(settings, "bare"), database)
                with path.open("rb") as upload:
                    import_s, counts = await _import(url, upload, token, count)
                peak_mib = peak_rss_mib(process.pid)
                service_cpu = cpu_seconds(process.pid) - cpu_before
                workers = children(process.pid)  # kept by the service until it stops: their whole life counts
                workers_cpu = sum(cpu_seconds(pid) for pid in workers)
                workers_mib = [peak_rss_mib(pid) for pid in workers]
                backends = await backend_cpu(asyncpg_dsn(settings, "bare"), database)
                database_cpu = sum(cpu - backends_before.get(pid, 0.0) for pid, cpu in backends.items())
            # the service stopped: PostgreSQL writes the same rows again, alone (bench.storage_bound)
            copies = await storage_bound.measure(asyncpg_dsn(settings, "participants"), tmp, per_index=per_index)
        finally:
            await drop_databases(settings, ["participants", "bare"])
            await delete_topics(settings)
        size_mb = path.stat().st_size / 1e6
    ratio = import_s / copy_s
    bound_s = sum(c.seconds for c in copies)
    heap_s = sum(c.heap_seconds for c in copies)
    return Result(
        name="bulk_import",
        size=f"{count:,} rows, CSV {size_mb:.1f} MB",
        figures={
            "raw COPY into a bare table (baseline)": f"{copy_s:.2f}s = {count / copy_s:,.0f} rows/s",
            "import API, POST to done": f"{import_s:.1f}s = {count / import_s:,.0f} rows/s ({counts})",
            "time ratio import/COPY": f"{ratio:.1f}",
            "service peak RSS (VmHWM)": f"{peak_mib:.0f} MiB (after start-up {idle_mib:.0f} MiB; issue: < 300 MiB)",
            "worker processes, peak RSS": f"{len(workers)}: "
            + (", ".join(f"{m:.0f}" for m in workers_mib) or "-")
            + " MiB",
            "CPU: service process / its workers": (
                f"{service_cpu:.1f}s / {workers_cpu:.1f}s = {(service_cpu + workers_cpu) / count * 1e6:.0f} us per row"
                " (PostgreSQL's not counted)"
            ),
            "CPU: PostgreSQL backends of the service": (
                f"{database_cpu:.1f}s = {database_cpu / count * 1e6:.0f} us per row (connections open at the end;"
                " WAL writer, checkpointer not counted)"
            ),
            "storage lower bound (the rows it wrote, COPYed into empty copies of its tables)": (
                f"{bound_s:.2f}s = {bound_s / copy_s:.1f}x the COPY (heap only, no index/trigger/FK:"
                f" {heap_s:.2f}s = {heap_s / copy_s:.1f}x); import / bound = {import_s / bound_s:.1f}"
            ),
            "storage lower bound per table": storage_bound.summary(copies),
            **(
                {"storage lower bound per index (BENCH_BOUND_INDEXES=1)": storage_bound.index_summary(copies)}
                if per_index
                else {}
            ),
        },
        ratio=ratio,
        target="<= 5",
        floor=10,
        extra=[
            Ratio("bulk_import storage bound", bound_s / copy_s, None, "PostgreSQL alone writing the same rows / COPY"),
        ],
    )


if __name__ == "__main__":
    main_for(run, __doc__ or "")
