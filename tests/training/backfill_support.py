"""Test support for the training backfill imports: a 2023 cohort as the five files a field team fills,
and running a kind's chunk processor directly in one transaction of the training database."""

from __future__ import annotations

import csv
import io
from typing import Any

from pena.auth import ROLE_SCOPES, Principal
from pena.import_runs import ChunkResult, ImportContext, ImportKind
from pena.runtime import Runtime
from tests.support import in_service

CENTRE = "BBPPKS-PADANG"
PEOPLE = ("p-1", "p-2", "p-3")
DAYS = ("2023-04-03", "2023-04-05", "2023-04-07", "2023-04-10", "2023-04-12")
MODULES = ("pena_introduction", "motivation_work_ethic", "social_entrepreneurship_basics", "technical_skills")

BATCHES_CSV = (
    "centre_code,batch_ref,name,business_field,method,start_date,end_date,region_code,capacity,status\n"
    f"{CENTRE},PDG-2023-01,Angkatan 2023 Menjahit,fashion_menjahit,life_skill_training,2023-04-03,2023-04-12,"
    "13.71.01.1001,25,running\n"
)
SESSIONS_CSV = "centre_code,batch_ref,session_date,module\n" + "".join(
    f"{CENTRE},PDG-2023-01,{day},{module}\n" for day, module in zip(DAYS, (*MODULES, "technical_skills"), strict=True)
)
ENROLMENTS_CSV = "centre_code,batch_ref,participant_id,exit_agreement,enrolled_on\n" + "".join(
    f"{CENTRE},PDG-2023-01,{pid},yes,2023-03-27\n" for pid in PEOPLE
)
# p-1 at all five sessions, p-2 at four (0.8: completes), p-3 at two (drops); one absence recorded as such
ATTENDANCE_CSV = "centre_code,batch_ref,participant_id,session_date,present\n" + "".join(
    f"{CENTRE},PDG-2023-01,{pid},{day},{'yes' if n < count else 'no'}\n"
    for pid, count in (("p-1", 5), ("p-2", 4), ("p-3", 2))
    for n, day in enumerate(DAYS)
    if n < count or pid == "p-3" and n == 2
)
COMPLETIONS_CSV = f"centre_code,batch_ref,completed_at\n{CENTRE},PDG-2023-01,2023-04-14T10:00:00+07:00\n"


def rows_of(text: str) -> list[tuple[int, dict[Any, Any]]]:
    """A CSV's data rows as the kernel hands them to a kind's processor: (row number from 1, cells)."""
    return list(enumerate(csv.DictReader(io.StringIO(text)), start=1))


def actor(role: str = "admin", *, unit: str | None = None, sub: str = "uploader-1") -> Principal:
    return Principal(
        subject=sub, client_id=None, roles=frozenset({role}), scopes=frozenset(ROLE_SCOPES[role]), unit=unit
    )


async def process(runtime: Runtime, kind: ImportKind, text: str, who: Principal | None = None) -> ChunkResult:
    """One chunk of `kind` holding every row of `text`, processed in one transaction."""
    ctx = ImportContext(import_id="imp-1", actor=who or actor(), settings=runtime.settings, clock=runtime.clock)
    return await in_service(runtime, "training", lambda session: kind.process(session, ctx, rows_of(text)))


def counts(result: ChunkResult) -> tuple[int, int, int]:
    return result.created, result.duplicates, len(result.refused)
