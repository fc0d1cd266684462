"""statistics breakdowns: sex and birth year on the participant view, a batch view (method) and the
names of centres, methods and business fields as training announces them

Valid time needs no new column: an assessment's `visit_date` is the day the family's situation was
measured, a decision's `effective_date` (else the business day of `decided_at`) the day it took
effect; `assessed_at` / `decided_at` are the record times `known_at` compares with. Existing rows need
no backfill: the new participant columns fill from the next participant event of each person (or a
replay of participant.*), the batch view and names from training.batch_scheduled.

Revision ID: grad_statistics_01
Revises: grad_families_01
Create Date: 2026-11-30 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "grad_statistics_01"
down_revision: str | None = "grad_families_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "graduation_participant_view",
        sa.Column("sex", sqlmodel.sql.sqltypes.AutoString(length=1), nullable=True),
    )
    op.add_column("graduation_participant_view", sa.Column("birth_year", sa.Integer(), nullable=True))
    op.create_table(
        "graduation_batch_view",
        sa.Column("batch_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("centre_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("business_field", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    op.create_table(
        "graduation_reference_name",
        sa.Column("dimension", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dimension", "code"),
    )


def downgrade() -> None:
    op.drop_table("graduation_reference_name")
    op.drop_table("graduation_batch_view")
    op.drop_column("graduation_participant_view", "birth_year")
    op.drop_column("graduation_participant_view", "sex")
