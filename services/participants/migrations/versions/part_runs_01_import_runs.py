"""the kernel's import runs: participant_imports and participant_import_errors become the kernel's
import_runs (kind `participants`) and import_errors (pena.import_runs); pending chunk jobs move to the
kernel's job kind

Revision ID: part_runs_01
Revises: part_bulk_01
Create Date: 2026-11-30 11:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "part_runs_01"
down_revision: str | None = "part_bulk_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RUN_COLUMNS = (
    "id, status, filename, total_rows, processed_rows, created_rows, duplicate_rows, error_rows, requested_by, "
    "requested_client, requested_roles, requested_unit, created_at, updated_at, finished_at"
)


def _create_runs() -> None:
    op.create_table(
        "import_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=True),
        sa.Column("total_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("processed_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("duplicate_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_client", sa.String(length=200), nullable=True),
        sa.Column("requested_roles", sa.String(length=200), nullable=True),
        sa.Column("requested_unit", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "import_errors",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("import_id", sa.String(length=40), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=60), nullable=False),
        sa.Column("rule", sa.String(length=60), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("import_errors_run_row", "import_errors", ["import_id", "row_number"], unique=False)


def _drop_runs() -> None:
    op.drop_index("import_errors_run_row", table_name="import_errors")
    op.drop_table("import_errors")
    op.drop_table("import_runs")


def upgrade() -> None:
    _create_runs()
    op.execute(
        f"INSERT INTO import_runs (kind, {_RUN_COLUMNS}) SELECT 'participants', {_RUN_COLUMNS} FROM participant_imports"  # noqa: S608
    )
    op.execute(
        "INSERT INTO import_errors (import_id, row_number, field, rule) "
        "SELECT import_id, row_number, field, rule FROM participant_import_errors ORDER BY id"
    )
    op.execute(
        "UPDATE scheduled_jobs SET kind = 'pena.import_chunk', job_key = replace(job_key, "
        "'participants.import_chunk:', 'pena.import_chunk:') WHERE kind = 'participants.import_chunk'"
    )
    op.drop_index("participant_import_errors_job_row", table_name="participant_import_errors")
    op.drop_table("participant_import_errors")
    op.drop_table("participant_imports")


def downgrade() -> None:
    op.create_table(
        "participant_imports",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=True),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("processed_rows", sa.Integer(), nullable=False),
        sa.Column("created_rows", sa.Integer(), nullable=False),
        sa.Column("duplicate_rows", sa.Integer(), nullable=False),
        sa.Column("error_rows", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_client", sa.String(length=200), nullable=True),
        sa.Column("requested_roles", sa.String(length=200), nullable=True),
        sa.Column("requested_unit", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "participant_import_errors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("import_id", sa.String(length=40), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=60), nullable=False),
        sa.Column("rule", sa.String(length=60), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "participant_import_errors_job_row", "participant_import_errors", ["import_id", "row_number"], unique=False
    )
    op.execute(
        f"INSERT INTO participant_imports ({_RUN_COLUMNS}) SELECT {_RUN_COLUMNS} FROM import_runs "  # noqa: S608
        "WHERE kind = 'participants'"
    )
    op.execute(
        "INSERT INTO participant_import_errors (import_id, row_number, field, rule) "
        "SELECT e.import_id, e.row_number, e.field, e.rule FROM import_errors e "
        "JOIN import_runs r ON r.id = e.import_id WHERE r.kind = 'participants' ORDER BY e.id"
    )
    op.execute(
        "UPDATE scheduled_jobs SET kind = 'participants.import_chunk', job_key = replace(job_key, "
        "'pena.import_chunk:', 'participants.import_chunk:') WHERE kind = 'pena.import_chunk'"
    )
    _drop_runs()
