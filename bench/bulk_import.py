"""Bulk CSV import of N participants through the participants import API (POST
/v1/participants/imports, then poll GET /v1/participants/imports/{id} until done; the service's
scheduler processes the file in chunks of 5,000 rows, one transaction each, set-based: validation,
encryption, duplicate checks, then one INSERT per table for participants, history, audit and one
participant.registered outbox event per row) against raw PostgreSQL COPY of the same rows into a
bare table, in the same run.

Issue target: within 3x of the COPY time.   python -m bench.bulk_import [--full]
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from typing import Any

import asyncpg
import httpx

from bench.common import (
    Result,
    asyncpg_dsn,
    bench_settings,
    delete_topics,
    drop_databases,
    main_for,
    new_namespace,
)
from bench.people import participants, to_csv
from bench.server import service
from pena.auth import issue_dev_token
from pena.db import ensure_database

BARE_TABLE = """
CREATE TABLE participants (
    nik text PRIMARY KEY, kk_number text NOT NULL, full_name text NOT NULL, birth_date date NOT NULL,
    sex text NOT NULL, region_code text NOT NULL, consent_purpose text NOT NULL, consent_given_on date NOT NULL,
    consent_recorded_by text NOT NULL)
"""


async def _copy(dsn: str, rows: list[dict[str, Any]]) -> float:
    """The baseline: the same rows COPYed into a plain table (with its primary key)."""
    records = [
        (r["nik"], r["kk_number"], r["full_name"], date.fromisoformat(r["birth_date"]), r["sex"], r["region_code"])
        + (r["consent"]["purpose"], date.fromisoformat(r["consent"]["given_on"]), r["consent"]["recorded_by"])
        for r in rows
    ]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(BARE_TABLE)
        started = time.perf_counter()
        await conn.copy_records_to_table("participants", records=records)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def _import(base_url: str, content: bytes, token: str, expected: int) -> tuple[float, dict[str, int]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as client:
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
            await asyncio.sleep(0.05)  # fine-grained, so polling adds little to the measured time
        seconds = time.perf_counter() - started
    counts = {k: job[k] for k in ("created_rows", "duplicate_rows", "error_rows")}
    if counts["created_rows"] != expected:
        raise RuntimeError(f"expected {expected} created rows, got {counts}")
    return seconds, counts


async def run(full: bool) -> Result:
    count = 100_000 if full else 10_000
    settings = bench_settings(new_namespace())
    rows = participants(count)
    content = to_csv(rows)
    token = issue_dev_token(settings, role="admin", ttl_seconds=4 * 3600)
    await ensure_database(settings.service_database_url("bare"))
    try:
        copy_s = await _copy(asyncpg_dsn(settings, "bare"), rows)
        with service(settings, "participants") as (_, url):
            import_s, counts = await _import(url, content, token, count)
    finally:
        await drop_databases(settings, ["participants", "bare"])
        await delete_topics(settings)
    ratio = import_s / copy_s
    return Result(
        name="bulk_import",
        size=f"{count:,} rows, CSV {len(content) / 1e6:.1f} MB",
        figures={
            "raw COPY into a bare table (baseline)": f"{copy_s:.2f}s = {count / copy_s:,.0f} rows/s",
            "import API, POST to done": f"{import_s:.1f}s = {count / import_s:,.0f} rows/s ({counts})",
            "time ratio import/COPY": f"{ratio:.1f}",
        },
        ratio=ratio,
        target="<= 3",
    )


if __name__ == "__main__":
    main_for(run, __doc__ or "")
