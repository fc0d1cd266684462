"""A province's programme history loaded through the backfill imports (issue 16 item 6), each kind
against a raw PostgreSQL COPY of the same rows into a bare table, in the same run.

Three services as ops run them (`pena serve` on Kafka: participants, training, monev), and the files a
ministry loads, in the order it would: the families (participants import), then training's five kinds
(batches, sessions, enrolments, attendance, completions at /v1/batches/imports/<kind>), then the field
surveys (/v1/monev/imports/surveys). Between two files the events do what they do in production:
training and monev learn of the families from participant.registered, Monev plans a P3M follow-up
from each training.completed and its scheduler announces those 2023 tasks as due, before the visits
are loaded. Those waits are not timed; each kind's time is POST to `done`. The enrolment file names
participants by their PENA id, as an export of the registry would: the bench reads the ids (and
regions) of the registered families from training's read model once it heard of all of them.

The province: West Sumatra's 19 regencies, one training centre each; each regency's families grouped
in batches of 25 (so ~N/25 batches), 8 sessions a batch, 9 in 10 at every session (completed), 1 in 10
at 5 of 8 (dropped under the 0.8 attendance rule); one P3M visit per completed family. Files are CSV.

For each kind: rows/s, the time ratio against COPY of the same rows (typed, with the natural key as
primary key; reading them is not timed), the service's CPU per row (its process from the POST until
its outbox has published the import's events: validation, writes, and the relay) and the service's
PostgreSQL backends' CPU, and the service's peak RSS (VmHWM) at the end. The issue sets no target for
these: reported (the bulk import's <= 5x COPY, floor 10x, printed for reference).
    python -m bench.backfill_import [--full]     5,000 families (~200 batches, ~38,000 attendance rows);
                                                 --full 50,000 (BENCH_BACKFILL_FAMILIES sets any number)
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import make_url

from bench.bulk_import import backend_cpu, peak_rss_mib
from bench.common import (
    REPORTED,
    Ratio,
    Result,
    asyncpg_dsn,
    bench_settings,
    delete_topics,
    drop_databases,
    main_for,
    new_namespace,
)
from bench.people import participants
from bench.server import cpu_seconds, service
from pena.auth import issue_dev_token
from pena.db import ensure_database
from pena.settings import Settings

PROVINCE = "13"  # West Sumatra: 19 regencies, one training centre each
SEATS = 25
SESSION_DAYS = (0, 1, 2, 3, 7, 8, 9, 10)  # days after the batch's start: two weeks, eight sessions
MODULES = ("pena_introduction", "motivation_work_ethic", "social_entrepreneurship_basics", "technical_skills")
DROPPED_EVERY = 10  # every tenth family attends 5 of 8 sessions: dropped under the 0.8 rule
SERVICES = ("participants", "training", "monev")
WAIT_SECONDS = 900  # for consumers and the scheduler between two files (not timed)

# (file column, bare table type); the bare table's primary key is the kind's natural key
Columns = list[tuple[str, str]]


@dataclass
class Kind:
    name: str
    service: str
    path: str
    columns: Columns
    key: tuple[str, ...]


BATCH_KEY: Columns = [("centre_code", "text"), ("batch_ref", "text")]
PARTICIPANTS = Kind(
    "participants",
    "participants",
    "/v1/participants/imports",
    [("nik", "text"), ("kk_number", "text"), ("full_name", "text"), ("birth_date", "date"), ("sex", "text")]
    + [("region_code", "text"), ("business_field", "text"), ("assistance_programmes", "text")]
    + [("dtsen_decile", "int"), ("household_size", "int"), ("baseline_monthly_income", "bigint")]
    + [("consent_purpose", "text"), ("consent_given_on", "date"), ("consent_recorded_by", "text")],
    ("nik",),
)
BATCHES = Kind(
    "batches",
    "training",
    "/v1/batches/imports/batches",
    BATCH_KEY
    + [("name", "text"), ("business_field", "text"), ("method", "text"), ("start_date", "date")]
    + [("end_date", "date"), ("region_code", "text"), ("capacity", "int"), ("status", "text")],
    ("centre_code", "batch_ref"),
)
SESSIONS = Kind(
    "sessions",
    "training",
    "/v1/batches/imports/sessions",
    [*BATCH_KEY, ("session_date", "date"), ("module", "text")],
    ("centre_code", "batch_ref", "session_date", "module"),
)
ENROLMENTS = Kind(
    "enrolments",
    "training",
    "/v1/batches/imports/enrolments",
    [*BATCH_KEY, ("participant_id", "text"), ("exit_agreement", "bool"), ("enrolled_on", "date")],
    ("centre_code", "batch_ref", "participant_id"),
)
ATTENDANCE = Kind(
    "attendance",
    "training",
    "/v1/batches/imports/attendance",
    [*BATCH_KEY, ("participant_id", "text"), ("session_date", "date"), ("present", "bool")],
    ("centre_code", "batch_ref", "participant_id", "session_date"),
)
COMPLETIONS = Kind(
    "completions",
    "training",
    "/v1/batches/imports/completions",
    [*BATCH_KEY, ("completed_at", "timestamptz")],
    ("centre_code", "batch_ref"),
)
SURVEYS = Kind(
    "surveys",
    "monev",
    "/v1/monev/imports/surveys",
    [("participant_id", "text"), ("kind", "text"), ("wave", "text"), ("visit_date", "date"), ("respondent", "text")]
    + [("business_status", "text"), ("business_field", "text"), ("monthly_revenue", "bigint")]
    + [("monthly_household_income", "bigint"), ("household_size", "int"), ("workers_employed", "int")]
    + [("business_assets", "bigint"), ("savings", "bigint"), ("welfare_self_assessment", "int")]
    + [("assistance_still_received", "text"), ("voluntary_exit_statement", "bool"), ("notes", "text")],
    ("participant_id", "kind", "wave"),
)

# ---------------------------------------------------------------------------------------------- the files


def regencies_of_province() -> list[str]:
    from bench.people import regencies

    return [r for r in regencies() if r.startswith(PROVINCE)]


def family_rows(count: int) -> list[dict[str, str]]:
    """The families, with the facts the entry rules read (a KPM of PKH, DTSEN decile 1, a business)."""
    rows = []
    for person in participants(count, within=regencies_of_province()):
        rows.append(
            {k: person[k] for k in ("nik", "kk_number", "full_name", "birth_date", "sex", "region_code")}
            | {
                "business_field": person["business_field"],
                "assistance_programmes": "PKH;BPNT",
                "dtsen_decile": "1",
                "household_size": "4",
                "baseline_monthly_income": "1500000",
                "consent_purpose": "PENA programme participation",
                "consent_given_on": "2023-01-02",
                "consent_recorded_by": "bench",
            }
        )
    return rows


def centre_code(regency: str) -> str:
    return f"BBPPKS-{regency}"


@dataclass
class History:
    """The province's training history built on the registered families' ids: its five training files
    and the survey file, and what the imports should count."""

    batches: list[dict[str, str]]
    sessions: list[dict[str, str]]
    enrolments: list[dict[str, str]]
    attendance: list[dict[str, str]]
    completions: list[dict[str, str]]
    surveys: list[dict[str, str]]


def history(families: list[tuple[str, str]]) -> History:
    """`families`: (participant id, region code) of every registered family. Each regency's families in
    batches of 25 at its centre, the batches' starts spread over 2023."""
    by_regency: dict[str, list[str]] = {}
    for participant_id, region in sorted(families, key=lambda f: (f[1], f[0])):
        by_regency.setdefault(region[:4], []).append(participant_id)
    h = History([], [], [], [], [], [])
    number = 0
    for regency, ids in sorted(by_regency.items()):
        for first in range(0, len(ids), SEATS):
            start = date(2023, 1, 16) + timedelta(days=7 * (number % 40))  # Mondays from the policy (2023-01-01)
            days = [start + timedelta(days=d) for d in SESSION_DAYS]
            key = {"centre_code": centre_code(regency), "batch_ref": f"SB-2023-{number:05d}"}
            number += 1
            h.batches.append(
                key
                | {
                    "name": f"Angkatan {key['batch_ref']}",
                    "business_field": "fashion_menjahit",
                    "method": "life_skill_training",
                    "start_date": start.isoformat(),
                    "end_date": days[-1].isoformat(),
                    "region_code": f"{regency}011001",
                    "capacity": str(SEATS),
                    "status": "running",
                }
            )
            for n, day in enumerate(days):
                h.sessions.append(key | {"session_date": day.isoformat(), "module": MODULES[min(n, len(MODULES) - 1)]})
            completed_on = days[-1] + timedelta(days=2)
            for seat, participant_id in enumerate(ids[first : first + SEATS]):
                h.enrolments.append(
                    key
                    | {
                        "participant_id": participant_id,
                        "exit_agreement": "yes",
                        "enrolled_on": (start - timedelta(days=7)).isoformat(),
                    }
                )
                dropped = (first + seat) % DROPPED_EVERY == DROPPED_EVERY - 1
                for day in days[:5] if dropped else days:
                    h.attendance.append(
                        key | {"participant_id": participant_id, "session_date": day.isoformat(), "present": "yes"}
                    )
                if not dropped:
                    h.surveys.append(survey_row(participant_id, completed_on + timedelta(days=100)))
            h.completions.append(key | {"completed_at": f"{completed_on.isoformat()}T10:00:00+07:00"})
    return h


def survey_row(participant_id: str, visit: date) -> dict[str, str]:
    """A P3M follow-up visit found by the family and wave (the task's id is not on a field team's sheet)."""
    return {
        "participant_id": participant_id,
        "kind": "follow_up",
        "wave": "P3M",
        "visit_date": visit.isoformat(),
        "respondent": "participant",
        "business_status": "active",
        "business_field": "fashion_menjahit",
        "monthly_revenue": "5500000",
        "monthly_household_income": "4000000",
        "household_size": "4",
        "workers_employed": "1",
        "business_assets": "7000000",
        "savings": "900000",
        "welfare_self_assessment": "4",
        "assistance_still_received": "PKH",
        "voluntary_exit_statement": "ya",
        "notes": "Usaha jahit berjalan",  # free text: stored encrypted
    }


def csv_bytes(kind: Kind, rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[c for c, _ in kind.columns], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


# ------------------------------------------------------------------------------------------ the baseline

_TYPED: dict[str, Callable[[str], Any]] = {
    "text": str,
    "int": int,
    "bigint": int,
    "date": date.fromisoformat,
    "timestamptz": datetime.fromisoformat,
    "bool": lambda v: v.lower() in ("yes", "ya", "true", "1"),
}


async def copy_seconds(dsn: str, kind: Kind, rows: list[dict[str, str]]) -> float:
    """The baseline: the same rows COPYed into a bare table of the file's columns, typed, keyed by the
    kind's natural key; turning the cells into values is not timed."""
    records = [tuple(_TYPED[t](row[c]) if row[c] else None for c, t in kind.columns) for row in rows]
    columns = ", ".join(f"{c} {t}" for c, t in kind.columns)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE TABLE {kind.name} ({columns}, PRIMARY KEY ({', '.join(kind.key)}))")
        started = time.perf_counter()
        await conn.copy_records_to_table(kind.name, records=records, columns=[c for c, _ in kind.columns])
        return time.perf_counter() - started
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------ the services' side

PROFILED = {k for k in os.environ.get("BENCH_BACKFILL_PYSPY", "").split(",") if k}


async def start_py_spy(kind: Kind, pid: int) -> asyncio.subprocess.Process | None:
    """BENCH_BACKFILL_PYSPY=attendance,surveys: py-spy (a sampling profiler) records the service
    process during those kinds' imports, raw stacks to /tmp/backfill-<kind>.pyspy (not in `make bench`)."""
    if kind.name not in PROFILED:
        return None
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = f"/tmp/backfill-{kind.name}.pyspy"
    cmd = [py_spy, "record", "--pid", str(pid), "-r", "250", "-f", "raw", "-o", out, "--nonblocking"]
    spy = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await asyncio.sleep(1)  # attached before the upload
    return spy


async def stop_py_spy(spy: asyncio.subprocess.Process | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        await spy.wait()


async def scalar(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def wait_for(what: str, check: Callable[[], Any], *, every: float = 0.25) -> float:
    """Polls `check()` (a coroutine function answering true when done); the seconds it took."""
    started = time.perf_counter()
    while not await check():
        if time.perf_counter() - started > WAIT_SECONDS:
            raise RuntimeError(f"{what}: not after {WAIT_SECONDS}s")
        await asyncio.sleep(every)
    return time.perf_counter() - started


@dataclass
class Measured:
    kind: Kind
    rows: int
    copy_s: float
    import_s: float
    run: dict[str, Any]
    service_cpu: float
    database_cpu: float
    drained_s: float  # from done until the service's outbox had published the import's events
    peak_mib: float  # the service's peak RSS (VmHWM) so far, read after this kind

    @property
    def ratio(self) -> float:
        return self.import_s / self.copy_s


class Province:
    """The three services of one run, their URLs, pids and databases."""

    def __init__(self, settings: Settings, token: str) -> None:
        self.settings = settings
        self.headers = {"Authorization": f"Bearer {token}"}
        self.urls: dict[str, str] = {}
        self.pids: dict[str, int] = {}
        self.idle_mib: dict[str, float] = {}

    def dsn(self, svc: str) -> str:
        return asyncpg_dsn(self.settings, svc)

    def database(self, svc: str) -> str:
        return make_url(self.settings.service_database_url(svc)).database or ""

    async def outbox_drained(self, svc: str) -> bool:
        return await scalar(self.dsn(svc), "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

    async def load(self, client: httpx.AsyncClient, kind: Kind, rows: list[dict[str, str]]) -> Measured:
        copy_s = await copy_seconds(self.dsn("bare"), kind, rows)
        content = csv_bytes(kind, rows)
        pid = self.pids[kind.service]
        cpu_before = cpu_seconds(pid)
        backends_before = await backend_cpu(self.dsn("bare"), self.database(kind.service))
        spy = await start_py_spy(kind, pid)
        started = time.perf_counter()
        response = await client.post(kind.path, files={"file": (f"{kind.name}.csv", content, "text/csv")})
        if response.status_code != 202:
            raise RuntimeError(f"{kind.name}: import refused: {response.status_code} {response.text[:500]}")
        location = response.headers["location"]
        while True:
            run = (await client.get(location)).json()
            if run["status"] == "done":
                break
            if time.perf_counter() - started > 3600:
                raise RuntimeError(f"{kind.name}: import not done after an hour: {run}")
            # each GET costs the service an authenticated request: every 2 % of the time so far, 20-500 ms
            await asyncio.sleep(min(0.5, max(0.02, (time.perf_counter() - started) / 50)))
        import_s = time.perf_counter() - started
        drained_s = await wait_for(f"{kind.service}'s outbox", lambda: self.outbox_drained(kind.service), every=0.05)
        service_cpu = cpu_seconds(pid) - cpu_before
        await stop_py_spy(spy)
        backends = await backend_cpu(self.dsn("bare"), self.database(kind.service))
        database_cpu = sum(cpu - backends_before.get(p, 0.0) for p, cpu in backends.items())
        if run["error_rows"]:
            errors = (await client.get(location + "/errors")).text
            raise RuntimeError(f"{kind.name}: {run['error_rows']} rows refused:\n{errors[:2000]}")
        if run["created_rows"] != len(rows):
            raise RuntimeError(f"{kind.name}: expected {len(rows)} created rows, got {run}")
        print(
            f"  {kind.name}: {len(rows):,} rows in {import_s:.2f}s, COPY {copy_s * 1000:.0f} ms,"
            f" ratio {import_s / copy_s:.0f}",
            flush=True,
        )
        peak = peak_rss_mib(pid)
        return Measured(kind, len(rows), copy_s, import_s, run, service_cpu, database_cpu, drained_s, peak)


def _started(stack: ExitStack, settings: Settings) -> Iterator[tuple[str, Any, str]]:
    """The services; BENCH_BACKFILL_SOURCE=<checkout> runs another checkout's code (an A/B of a change,
    bench.server.service's `source`), the files and the measurement staying this one's."""
    source = os.environ.get("BENCH_BACKFILL_SOURCE")
    for svc in SERVICES:
        process, url = stack.enter_context(service(settings, svc, source=Path(source) if source else None))
        yield svc, process, url


async def _families_known(p: Province, count: int) -> list[tuple[str, str]]:
    """Waits until training and monev heard of every family (participant.registered); their ids."""

    async def heard() -> bool:
        training = await scalar(p.dsn("training"), "SELECT count(*) FROM participant_eligibility")
        monev = await scalar(p.dsn("monev"), "SELECT count(*) FROM monev_baselines")
        return training >= count and monev >= count

    await wait_for("participant.registered consumed by training and monev", heard)
    conn = await asyncpg.connect(p.dsn("training"))
    try:
        found = await conn.fetch("SELECT participant_id, region_code FROM participant_eligibility")
    finally:
        await conn.close()
    return [(r["participant_id"], r["region_code"]) for r in found]


async def _tasks_due(p: Province, expected: int) -> None:
    """Waits until Monev planned a P3M task from each training.completed and announced every one due."""

    async def planned() -> bool:
        return await scalar(p.dsn("monev"), "SELECT count(*) FROM monev_tasks") >= expected

    async def announced() -> bool:
        pending = "SELECT count(*) FROM scheduled_jobs WHERE done_at IS NULL AND due_at <= now()"
        return await scalar(p.dsn("monev"), pending) == 0

    await wait_for("Monev's tasks from training.completed", planned)
    await wait_for("Monev's scheduler announcing the 2023 tasks", announced)


async def run(full: bool) -> Result:
    count = int(os.environ.get("BENCH_BACKFILL_FAMILIES") or (50_000 if full else 5_000))
    settings = bench_settings(new_namespace())
    token = issue_dev_token(settings, role="admin", ttl_seconds=4 * 3600)
    await ensure_database(settings.service_database_url("bare"))
    p = Province(settings, token)
    measured: list[Measured] = []
    try:
        with ExitStack() as stack:
            for svc, process, url in _started(stack, settings):
                p.urls[svc], p.pids[svc] = url, process.pid
                p.idle_mib[svc] = peak_rss_mib(process.pid)
            clients = {
                svc: httpx.AsyncClient(base_url=url, headers=p.headers, timeout=600) for svc, url in p.urls.items()
            }
            try:
                measured.append(await p.load(clients["participants"], PARTICIPANTS, family_rows(count)))
                families = await _families_known(p, count)
                for regency in regencies_of_province():
                    r = await clients["training"].post(
                        "/v1/training-centres",
                        json={"name": f"BBPPKS {regency}", "code": centre_code(regency), "region_code": regency},
                    )
                    if r.status_code != 201:
                        raise RuntimeError(f"centre refused: {r.status_code} {r.text[:500]}")
                h = history(families)
                for kind, rows in (
                    (BATCHES, h.batches),
                    (SESSIONS, h.sessions),
                    (ENROLMENTS, h.enrolments),
                    (ATTENDANCE, h.attendance),
                    (COMPLETIONS, h.completions),
                ):
                    measured.append(await p.load(clients["training"], kind, rows))
                await _tasks_due(p, len(h.surveys))
                measured.append(await p.load(clients["monev"], SURVEYS, h.surveys))
                peaks = {svc: peak_rss_mib(pid) for svc, pid in p.pids.items()}
            finally:
                for client in clients.values():
                    await client.aclose()
    finally:
        await drop_databases(settings, [*SERVICES, "bare"])
        await delete_topics(settings)
    return _result(count, measured, p.idle_mib, peaks, len(h.batches))


def _result(
    count: int, measured: list[Measured], idle: dict[str, float], peaks: dict[str, float], batches: int
) -> Result:
    figures: dict[str, str] = {}
    for m in measured:
        us = 1e6 / m.rows
        figures[f"{m.kind.name} ({m.kind.service})"] = (
            f"{m.rows:,} rows: import {m.import_s:.2f}s = {m.rows / m.import_s:,.0f} rows/s;"
            f" COPY {m.copy_s * 1000:.0f} ms = {m.rows / m.copy_s:,.0f} rows/s; ratio {m.ratio:.0f};"
            f" CPU service {m.service_cpu * us:,.0f} us/row (events published {m.drained_s:.1f}s after done),"
            f" PostgreSQL {m.database_cpu * us:,.0f} us/row; {m.kind.service} peak RSS so far {m.peak_mib:.0f} MiB"
        )
    figures["service peak RSS (VmHWM)"] = ", ".join(
        f"{svc} {peaks[svc]:.0f} MiB (after start-up {idle[svc]:.0f})" for svc in SERVICES
    )
    backfill = [m for m in measured if m.kind.service != "participants"]
    slowest = max(backfill, key=lambda m: m.import_s)
    total_import = sum(m.import_s for m in backfill)
    total_copy = sum(m.copy_s for m in backfill)
    return Result(
        name="backfill_import",
        size=f"{count:,} families in {batches:,} batches, {sum(m.rows for m in backfill):,} backfill rows",
        figures=figures,
        ratio=total_import / total_copy,
        target=REPORTED,
        extra=[
            Ratio(f"{m.kind.name} import/COPY", m.ratio, None, what=f"{m.import_s:.2f}s / {m.copy_s:.3f}s")
            for m in measured
        ],
        notes=[
            "ratio = the six backfill files' import time over their COPY time, summed; the issue sets no"
            " target for the backfill imports (reported); for reference the participants bulk import's is"
            " <= 5x COPY at 100,000 rows (floor 10x)",
            f"slowest kind: {slowest.kind.name} ({slowest.import_s:.1f}s of {total_import:.1f}s)",
            "the families' ids for the enrolment file are read from training's read model once it heard of"
            " all of them; waits for consumers and Monev's scheduler between files are not timed",
        ],
    )


if __name__ == "__main__":
    main_for(run, __doc__ or "")
