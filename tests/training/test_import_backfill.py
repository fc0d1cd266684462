"""The training backfill processors (one chunk of each kind) on a real PostgreSQL: a 2023 cohort from
files produces what the single-record paths produce (rows, events, audit), re-uploads add nothing, and
refused rows name their field and rule, never a value."""

from __future__ import annotations

from sqlalchemy import select

from services.training import backfill
from services.training.models import Attendance, Batch, BatchSession, Enrolment
from tests.support import audit_rows, count_rows, in_service, outbox_data, outbox_names, register
from tests.training.backfill_support import (
    ATTENDANCE_CSV,
    BATCHES_CSV,
    CENTRE,
    COMPLETIONS_CSV,
    ENROLMENTS_CSV,
    SESSIONS_CSV,
    actor,
    counts,
    process,
)
from tests.training.support import create_centre

FILES = (
    (backfill.BATCHES, BATCHES_CSV),
    (backfill.SESSIONS, SESSIONS_CSV),
    (backfill.ENROLMENTS, ENROLMENTS_CSV),
    (backfill.ATTENDANCE, ATTENDANCE_CSV),
    (backfill.COMPLETIONS, COMPLETIONS_CSV),
)


async def test_a_2023_cohort_from_five_files_completes_with_its_2023_dates(runtime, api, auth) -> None:
    await register(runtime, "p-1", "p-2", "p-3", birth_year=1960)  # 63 in 2023, 66 (too old) in 2026
    async with api(runtime) as client:
        centre_id = await create_centre(client, auth("admin"), CENTRE)
    outcomes = [counts(await process(runtime, kind, text)) for kind, text in FILES]
    assert outcomes == [(1, 0, 0), (5, 0, 0), (3, 0, 0), (11, 1, 0), (1, 0, 0)]  # p-3's absence: nothing to change

    [scheduled] = await outbox_data(runtime, "training", "training.batch_scheduled")
    assert scheduled["centre_id"] == centre_id
    assert (scheduled["start_date"], scheduled["region_code"]) == ("2023-04-03", "1371011001")
    enrolled = await outbox_data(runtime, "training", "training.enrolled")
    assert sorted(e["participant_id"] for e in enrolled) == ["p-1", "p-2", "p-3"]
    assert {e["enrolled_at"] for e in enrolled} == {
        "2023-03-27T00:00:00+07:00"
    }  # the start of 27 March 2023 in Jakarta
    completed = await outbox_data(runtime, "training", "training.completed")
    assert sorted((c["participant_id"], c["sessions_attended"], c["sessions_total"]) for c in completed) == [
        ("p-1", 5, 5),
        ("p-2", 4, 5),
    ]
    assert {c["completed_at"] for c in completed} == {"2023-04-14T10:00:00+07:00"}
    [dropped] = await outbox_data(runtime, "training", "training.dropped")
    assert (dropped["participant_id"], dropped["reason_code"], dropped["attendance_rate"]) == (
        "p-3",
        "attendance_below_rule",
        0.4,
    )

    async def stored(session):
        batch = (await session.execute(select(Batch))).scalars().one()
        people = (await session.execute(select(Enrolment).order_by(Enrolment.participant_id))).scalars().all()
        return batch, [(e.status, e.sessions_attended, e.policy_version, e.exit_agreement) for e in people]

    batch, people = await in_service(runtime, "training", stored)
    assert (batch.batch_ref, batch.status, batch.completed_at.isoformat()) == (
        "PDG-2023-01",
        "completed",
        "2023-04-14T03:00:00+00:00",
    )
    assert people == [
        ("completed", 5, "2023.1", True),
        ("completed", 4, "2023.1", True),
        ("dropped", 2, "2023.1", True),
    ]
    [closed] = await audit_rows(runtime, "training", "training.batch.closed")
    assert closed.details["import_id"] == "imp-1"
    assert closed.details["backdated"] is True
    assert len(await audit_rows(runtime, "training", "training.enrolment.created")) == 3
    assert len(await audit_rows(runtime, "training", "training.attendance.recorded")) == 5


async def test_uploading_every_file_again_adds_and_announces_nothing(runtime, api, auth) -> None:
    await register(runtime, "p-1", "p-2", "p-3")
    async with api(runtime) as client:
        await create_centre(client, auth("admin"), CENTRE)
    for kind, text in FILES:
        await process(runtime, kind, text)
    events = await outbox_names(runtime, "training")
    tables = [await count_rows(runtime, "training", t) for t in (Batch, BatchSession, Enrolment, Attendance)]
    again = [counts(await process(runtime, kind, text)) for kind, text in FILES]
    assert again == [(0, 1, 0), (0, 5, 0), (0, 3, 0), (0, 12, 0), (0, 1, 0)]
    assert await outbox_names(runtime, "training") == events
    assert [await count_rows(runtime, "training", t) for t in (Batch, BatchSession, Enrolment, Attendance)] == tables


async def test_refused_rows_name_the_field_and_the_rule(runtime, api, auth) -> None:
    await register(runtime, "p-1", "p-2")
    await register(runtime, "p-old", birth_year=1940)
    await register(runtime, "p-far", region_code="3171011001")
    async with api(runtime) as client:
        centre_id = await create_centre(client, auth("admin"), CENTRE)
    batches = await process(
        runtime,
        backfill.BATCHES,
        "centre_code,batch_ref,business_field,method,start_date,end_date,region_code,capacity,status\n"
        f"{CENTRE},B-1,fashion_menjahit,life_skill_training,2023-04-03,2023-04-12,1371011001,2,running\n"
        "NOWHERE,B-2,fashion_menjahit,life_skill_training,2023-04-03,2023-04-12,1371011001,25,running\n"
        f"{CENTRE},B 3,astrologi,life_skill_training,2023-04-12,2023-04-03,1371011001,0,done\n"
        f"{CENTRE},B-4,kuliner,by_post,2023-04-03,2023-04-12,13.71,25,\n"
        f"{CENTRE},B-1,kuliner,life_skill_training,2023-05-01,2023-05-12,1371011001,25,running\n",
    )
    assert counts(batches) == (1, 1, 3)  # row 5 repeats B-1: a duplicate, the first row is kept
    assert batches.refused == {
        2: [("centre_code", "known_centre")],
        3: [
            ("batch_ref", "pattern"),
            ("status", "one_of"),
            ("capacity", "greater_than_equal"),
        ],
        4: [("method", "literal_error"), ("region_code", "string_pattern_mismatch")],
    }
    sessions = await process(
        runtime,
        backfill.SESSIONS,
        "centre_code,batch_ref,session_date,module\n"
        f"{CENTRE},B-1,2023-04-03,technical_skills\n"
        f"{CENTRE},B-1,2023-05-03,technical_skills\n"
        f"{CENTRE},B-1,2023-04-04,cooking\n"
        f"{CENTRE},B-9,2023-04-04,technical_skills\n"
        f"{CENTRE},B-1,04/04/2023,technical_skills\n",
    )
    assert counts(sessions) == (1, 0, 4)
    assert sessions.refused == {
        2: [("session_date", "within_batch_dates")],
        3: [("module", "one_of_batch_modules")],
        4: [("batch_ref", "known_batch")],
        5: [("session_date", "date_from_datetime_parsing")],
    }
    enrolments = await process(
        runtime,
        backfill.ENROLMENTS,
        "centre_code,batch_ref,participant_id,exit_agreement,override_reason,enrolled_on\n"
        f"{CENTRE},B-1,p-1,yes,,2023-03-27\n"
        f"{CENTRE},B-1,p-old,yes,,2023-03-27\n"
        f"{CENTRE},B-1,p-far,yes,,2023-03-27\n"
        f"{CENTRE},B-1,p-unknown,yes,,2023-03-27\n"
        f"{CENTRE},B-1,p-2,maybe,,2023-03-27\n"
        f"{CENTRE},B-1,p-2,no,,2023-03-27\n"
        f"{CENTRE},B-1,p-2,yes,,2031-01-01\n"
        f"{CENTRE},B-1,p-old,yes,Verified by the district office on paper,2023-03-27\n"
        f"{CENTRE},B-1,p-2,yes,,2023-03-27\n",
    )
    assert counts(enrolments) == (2, 0, 7)
    assert enrolments.refused == {
        2: [("participant.birth_year", "working_age")],
        3: [("override_reason", "required_out_of_region")],
        4: [("participant_id", "known_in_centre_regions")],
        5: [("exit_agreement", "bool_parsing")],
        6: [("exit_agreement", "exit_agreement_required")],
        7: [("enrolled_on", "not_in_future")],
        9: [("batch_ref", "batch_full")],  # capacity 2: p-1 and p-old (admin override) took the seats
    }
    own_operator = actor("centre_operator", unit=centre_id, sub="op-1")
    overriding = await process(
        runtime,
        backfill.ENROLMENTS,
        "centre_code,batch_ref,participant_id,exit_agreement,override_reason\n"
        f"{CENTRE},B-1,p-far,yes,Lives here since 2022 says the village head\n",
        own_operator,
    )
    assert overriding.refused == {1: [("override_reason", "override_not_allowed")]}  # an admin's only
    operator = actor("centre_operator", unit="someone-elses-centre", sub="op-9")
    foreign = await process(
        runtime,
        backfill.ATTENDANCE,
        f"centre_code,batch_ref,participant_id,session_date\n{CENTRE},B-1,p-1,2023-04-03\n",
        operator,
    )
    assert foreign.refused == {1: [("centre_code", "known_centre")]}  # out of reach: as if unknown
    attendance = await process(
        runtime,
        backfill.ATTENDANCE,
        "centre_code,batch_ref,participant_id,session_date,present\n"
        f"{CENTRE},B-1,p-1,2023-04-03,yes\n"
        f"{CENTRE},B-1,p-2,2023-04-03,yes\n"
        f"{CENTRE},B-1,p-1,2023-04-05,yes\n"
        f"{CENTRE},B-1,p-1,2023-04-03,perhaps\n",
    )
    assert counts(attendance) == (1, 0, 3)
    assert attendance.refused == {
        2: [("participant_id", "enrolled_participant")],
        3: [("session_date", "session_of_batch")],
        4: [("present", "bool_parsing")],
    }
    completions = await process(
        runtime,
        backfill.COMPLETIONS,
        "centre_code,batch_ref,completed_at\n"
        f"{CENTRE},B-1,2023-04-01\n"
        f"{CENTRE},B-1,2031-04-01T10:00:00+07:00\n"
        f"{CENTRE},B-1,yesterday\n",
    )
    assert completions.refused == {
        1: [("completed_at", "after_last_session")],
        2: [("completed_at", "not_in_future")],
        3: [("completed_at", "datetime_from_date_parsing")],
    }
    assert await outbox_names(runtime, "training") == [
        "training.batch_scheduled",
        "training.enrolled",
        "training.enrolled",
    ]


async def test_a_chunk_of_hundreds_of_attendance_rows_is_stored_once_and_counted_at_closing(runtime, api, auth) -> None:
    """600 attendance rows in one chunk (written through COPY from 500 rows): every one stored, the
    batch's closing counts them, and the same file again is all duplicates."""
    people = [f"p-{n}" for n in range(50)]
    days = [f"2023-04-{d:02d}" for d in (3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 17, 18)]
    await register(runtime, *people)
    async with api(runtime) as client:
        await create_centre(client, auth("admin"), CENTRE)
    key = f"{CENTRE},PDG-2023-09"
    files = (
        (
            backfill.BATCHES,
            "centre_code,batch_ref,business_field,method,start_date,end_date,region_code,capacity,status\n"
            f"{key},fashion_menjahit,life_skill_training,2023-04-03,2023-04-18,1371011001,50,running\n",
        ),
        (
            backfill.SESSIONS,
            "centre_code,batch_ref,session_date,module\n" + "".join(f"{key},{d},technical_skills\n" for d in days),
        ),
        (
            backfill.ENROLMENTS,
            "centre_code,batch_ref,participant_id,exit_agreement,enrolled_on\n"
            + "".join(f"{key},{p},yes,2023-03-27\n" for p in people),
        ),
    )
    assert [counts(await process(runtime, kind, text)) for kind, text in files] == [(1, 0, 0), (12, 0, 0), (50, 0, 0)]
    # everyone at every session but p-0, who missed three (9 of 12 = 0.75: dropped under the 0.8 rule)
    attendance = "centre_code,batch_ref,participant_id,session_date,present\n" + "".join(
        f"{key},{p},{d},{'no' if p == 'p-0' and n < 3 else 'yes'}\n" for p in people for n, d in enumerate(days)
    )
    assert counts(await process(runtime, backfill.ATTENDANCE, attendance)) == (597, 3, 0)
    assert await count_rows(runtime, "training", Attendance) == 597
    assert counts(await process(runtime, backfill.ATTENDANCE, attendance)) == (0, 600, 0)
    assert await count_rows(runtime, "training", Attendance) == 597
    closing = f"centre_code,batch_ref,completed_at\n{key},2023-04-19T10:00:00+07:00\n"
    assert counts(await process(runtime, backfill.COMPLETIONS, closing)) == (1, 0, 0)
    completed = await outbox_data(runtime, "training", "training.completed")
    assert len(completed) == 49
    assert {(c["sessions_attended"], c["sessions_total"]) for c in completed} == {(12, 12)}
    [dropped] = await outbox_data(runtime, "training", "training.dropped")
    assert (dropped["participant_id"], dropped["attendance_rate"]) == ("p-0", 0.75)
