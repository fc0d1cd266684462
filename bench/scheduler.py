"""Scheduler under backlog: announcing N due monev jobs when scheduled_jobs also holds 10N pending
not-yet-due jobs, against the same N due jobs alone (the baseline), each in its own fresh database.

The jobs are monev's real `monev.due` jobs run by the kernel Scheduler: each loads its task FOR UPDATE,
marks it due, schedules the overdue check and writes a `monev.due` outbox event. The table is filled
with INSERT ... SELECT generate_series (fast), then ANALYZEd, then `Scheduler.drain()` is timed.

Issue target: with 1,000,000 pending of which 100,000 due, announcing all due takes at most 2x the
100,000-only time.   python -m bench.scheduler [--full]
"""

from __future__ import annotations

from datetime import UTC, datetime

from bench.common import Result, Timer, bench_settings, drop_databases, main_for, new_namespace
from pena.clock import ManualClock
from pena.db import Database
from pena.migrate import migrate
from pena.scheduler import Scheduler
from pena.settings import Settings
from services.monev.app import definition as monev

TASKS_SQL = """
INSERT INTO monev_tasks (id, participant_id, batch_id, centre_id, business_field, region_code, wave,
                         training_completed_at, due_at, status, submission_version, created_at, updated_at)
SELECT 't' || g, 'p' || g, 'batch-1', 'centre-1', 'culinary', '3171010001', 'P3M',
       $1::timestamptz - interval '3 months', $1::timestamptz - interval '1 hour' - g * interval '1 ms',
       'scheduled', 0, $1::timestamptz, $1::timestamptz
FROM generate_series(1, $2::int) g
"""
DUE_JOBS_SQL = """
INSERT INTO scheduled_jobs (kind, job_key, due_at, payload)
SELECT 'monev.due', 'monev.due:t' || g, $1::timestamptz - interval '1 hour' - g * interval '1 ms',
       jsonb_build_object('task_id', 't' || g, 'grace', 'P30D', 'timezone', 'Asia/Jakarta')
FROM generate_series(1, $2::int) g
"""
# pending jobs come due over the next weeks: the claim query must not pay for them
PENDING_JOBS_SQL = """
INSERT INTO scheduled_jobs (kind, job_key, due_at, payload)
SELECT 'monev.due', 'monev.due:later' || g, $1::timestamptz + interval '1 day' + g * interval '1 s',
       jsonb_build_object('task_id', 'later' || g, 'grace', 'P30D', 'timezone', 'Asia/Jakarta')
FROM generate_series(1, $2::int) g
"""


async def _case(settings: Settings, now: datetime, due: int, pending: int) -> tuple[float, float, int]:
    """Fills one fresh monev database, returns (fill seconds, drain seconds, jobs announced)."""
    await migrate(settings, monev)
    db = Database.for_service(settings, "monev")
    conn = await db.raw_connection()
    try:
        with Timer() as fill:
            await conn.execute(TASKS_SQL, now, due)
            await conn.execute(DUE_JOBS_SQL, now, due)
            if pending:
                await conn.execute(PENDING_JOBS_SQL, now, pending)
            await conn.execute("VACUUM ANALYZE scheduled_jobs")
            await conn.execute("VACUUM ANALYZE monev_tasks")
        scheduler = Scheduler(db, dict(monev.jobs), ManualClock(now))
        with Timer() as drain:
            announced = await scheduler.drain()
        outbox_rows = await conn.fetchval("SELECT count(*) FROM outbox WHERE event_name = 'monev.due'")
        if announced != due or outbox_rows != due:
            raise RuntimeError(f"expected {due} announced, got {announced} jobs and {outbox_rows} events")
    finally:
        await conn.close()
        await db.dispose()
    return fill.seconds, drain.seconds, announced


def _line(announced: int, seconds: float, fill: float) -> str:
    return f"{announced:,} announced in {seconds:.1f}s = {announced / seconds:,.0f} jobs/s (fill {fill:.1f}s)"


async def run(full: bool) -> Result:
    due = 100_000 if full else 20_000
    pending = 10 * due
    now = datetime.now(UTC)
    ns = new_namespace()
    alone = bench_settings(f"{ns}a")
    backlog = bench_settings(f"{ns}b")
    try:
        # baseline first: any warm-cache advantage goes to the baseline, not to the backlog case
        fill_a, drain_a, n_a = await _case(alone, now, due, 0)
        fill_b, drain_b, n_b = await _case(backlog, now, due, pending)
    finally:
        await drop_databases(alone, ["monev"])
        await drop_databases(backlog, ["monev"])

    ratio = drain_b / drain_a
    return Result(
        name="scheduler",
        size=f"{due:,} due; backlog case adds {pending:,} pending",
        figures={
            "due only (baseline)": _line(n_a, drain_a, fill_a),
            f"due + {pending:,} pending": _line(n_b, drain_b, fill_b),
            "time ratio backlog/baseline": f"{ratio:.2f}",
        },
        ratio=ratio,
        target="<= 2",
    )


if __name__ == "__main__":
    main_for(run, __doc__ or "")
