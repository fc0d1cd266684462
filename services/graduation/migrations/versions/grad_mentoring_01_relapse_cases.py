"""mentoring: graduation_decision.mentoring_follow_ups and graduation_relapse_case

Revision ID: grad_mentoring_01
Revises: grad_statistics_01
Create Date: 2026-11-30 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "grad_mentoring_01"
down_revision: str | None = "grad_statistics_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "graduation_decision",
        sa.Column(
            "mentoring_follow_ups",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.create_table(
        "graduation_relapse_case",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("participant_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("decision_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("monev_task_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("submission_version", sa.Integer(), nullable=False),
        sa.Column("wave", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=False),
        sa.Column("region_code", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("monthly_household_income", sa.Integer(), nullable=False),
        sa.Column("household_size", sa.Integer(), nullable=False),
        sa.Column("income_per_member", sa.Integer(), nullable=False),
        sa.Column("poverty_line", sa.Integer(), nullable=False),
        sa.Column("poverty_line_year", sa.Integer(), nullable=False),
        sa.Column("poverty_line_source", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("monev_task_id", name="graduation_relapse_case_task"),
    )
    op.create_index("graduation_relapse_case_list", "graduation_relapse_case", ["flagged_at", "id"], unique=False)
    op.create_index(
        op.f("ix_graduation_relapse_case_participant_id"), "graduation_relapse_case", ["participant_id"], unique=False
    )
    op.create_index(
        op.f("ix_graduation_relapse_case_region_code"), "graduation_relapse_case", ["region_code"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_graduation_relapse_case_region_code"), table_name="graduation_relapse_case")
    op.drop_index(op.f("ix_graduation_relapse_case_participant_id"), table_name="graduation_relapse_case")
    op.drop_index("graduation_relapse_case_list", table_name="graduation_relapse_case")
    op.drop_table("graduation_relapse_case")
    op.drop_column("graduation_decision", "mentoring_follow_ups")
