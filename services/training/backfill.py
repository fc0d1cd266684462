"""The training backfill imports: the programme's history loaded from spreadsheets (CSV or XLSX) in
the order it happened, on the kernel's import runs (pena.imports: restartable background jobs, one
chunk per transaction, progress, an error file of row, field and rule, published templates).

| kind | one row per | then |
|---|---|---|
| `training.batches` | batch, with the file's `batch_ref` (unique in its centre) | training.batch_scheduled |
| `training.sessions` | session of a batch (date, module) | |
| `training.enrolments` | participant in a batch (exit agreement, override, `enrolled_on`) | training.enrolled |
| `training.attendance` | participant at a session (present or not) | |
| `training.completions` | batch closed with its `completed_at` | training.completed / training.dropped |

Later files name a batch by `centre_code` and `batch_ref`. Each row meets the rules of the matching
single-record route (the same rule functions), and produces the same rows, events and audit entries;
a row already recorded counts as a duplicate, so a file uploaded twice changes nothing the second
time. Reach is the uploader's, as on the routes: an operator loads their centre's history only."""

from __future__ import annotations

from pena.import_runs import ImportKind
from pena.imports import Layout
from services.training.backfill_batches import process_batches, process_sessions
from services.training.backfill_completions import process_completions
from services.training.backfill_enrolments import process_attendance, process_enrolments

BATCH_KEY = ("centre_code", "batch_ref")
CHUNK_ROWS = 5000
# a completion row closes a whole batch (its ~25 outcomes and events): 200 a chunk keep a transaction
# near the others' 5,000 rows (bench.backfill_import --full closed 2,014 batches in one chunk: the service
# peaked at ~400 MiB)
COMPLETION_CHUNK_ROWS = 200

BATCHES = ImportKind(
    name="training.batches",
    path="batches",
    audit_action="training.import",
    audit_subject="training_import",
    layout=Layout(
        required=(*BATCH_KEY, "business_field", "method", "start_date", "end_date", "region_code", "capacity"),
        optional=("name", "modules", "trainers", "min_attendance_rate", "status"),
        chunk_rows=CHUNK_ROWS,
    ),
    process=process_batches,
    example={
        "centre_code": "BBPPKS-PADANG",
        "batch_ref": "PDG-2023-01",
        "business_field": "fashion_menjahit",
        "method": "life_skill_training",
        "start_date": "2023-04-03",
        "end_date": "2023-04-12",
        "region_code": "1371011001",
        "capacity": "25",
        "name": "Angkatan 2023 Menjahit",
        "modules": "pena_introduction;motivation_work_ethic;social_entrepreneurship_basics;technical_skills",
        "trainers": "trainer-padang-03",
        "min_attendance_rate": "0.8",
        "status": "running",
    },
    description=(
        "Batches (angkatan), one a row, known by centre_code and batch_ref; status planned (default), open "
        "or running; modules and trainers separated by ';'"
    ),
)

SESSIONS = ImportKind(
    name="training.sessions",
    path="sessions",
    audit_action="training.import",
    audit_subject="training_import",
    layout=Layout(required=(*BATCH_KEY, "session_date", "module"), chunk_rows=CHUNK_ROWS),
    process=process_sessions,
    example={
        "centre_code": "BBPPKS-PADANG",
        "batch_ref": "PDG-2023-01",
        "session_date": "2023-04-03",
        "module": "pena_introduction",
    },
    description="Sessions of imported batches, one a row: the date (within the batch) and one of its modules",
)

ENROLMENTS = ImportKind(
    name="training.enrolments",
    path="enrolments",
    audit_action="training.import",
    audit_subject="training_import",
    layout=Layout(
        required=(*BATCH_KEY, "participant_id"),
        optional=("exit_agreement", "override_reason", "enrolled_on"),
        chunk_rows=CHUNK_ROWS,
    ),
    process=process_enrolments,
    example={
        "centre_code": "BBPPKS-PADANG",
        "batch_ref": "PDG-2023-01",
        "participant_id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
        "exit_agreement": "yes",
        "override_reason": "",
        "enrolled_on": "2023-03-27",
    },
    description=(
        "Enrolments, one participant a row, checked by the entry rules in force on enrolled_on (default "
        "today); override_reason only for an admin"
    ),
)

ATTENDANCE = ImportKind(
    name="training.attendance",
    path="attendance",
    audit_action="training.import",
    audit_subject="training_import",
    layout=Layout(
        required=(*BATCH_KEY, "participant_id", "session_date"), optional=("module", "present"), chunk_rows=CHUNK_ROWS
    ),
    process=process_attendance,
    example={
        "centre_code": "BBPPKS-PADANG",
        "batch_ref": "PDG-2023-01",
        "participant_id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
        "session_date": "2023-04-03",
        "module": "pena_introduction",
        "present": "yes",
    },
    description=(
        "Attendance of running batches, one participant and session a row (module when a day has two); "
        "present yes (default) or no"
    ),
)

COMPLETIONS = ImportKind(
    name="training.completions",
    path="completions",
    audit_action="training.import",
    audit_subject="training_import",
    layout=Layout(required=(*BATCH_KEY, "completed_at"), chunk_rows=COMPLETION_CHUNK_ROWS),
    process=process_completions,
    example={"centre_code": "BBPPKS-PADANG", "batch_ref": "PDG-2023-01", "completed_at": "2023-04-14T10:00:00+07:00"},
    description=(
        "Closes running batches as POST /close does, one a row: completed_at (ISO 8601; a date is its start "
        "in the business time zone; empty: now)"
    ),
)

KINDS = (BATCHES, SESSIONS, ENROLMENTS, ATTENDANCE, COMPLETIONS)
