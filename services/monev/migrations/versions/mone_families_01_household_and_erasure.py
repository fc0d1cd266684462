"""families: baselines keep the household; tasks can be cancelled; survey figures erasable

Revision ID: mone_families_01
Revises: mone_bb5dc0aa
Create Date: 2026-11-30 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "mone_families_01"
down_revision: str | None = "mone_bb5dc0aa"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# blanked when the participant is erased (UU PDP); what statistics count in aggregate stays
ERASABLE = (
    ("monthly_revenue", sa.Integer()),
    ("monthly_household_income", sa.Integer()),
    ("household_size", sa.Integer()),
    ("workers_employed", sa.Integer()),
    ("business_assets", sa.Integer()),
    ("savings", sa.Integer()),
    ("welfare_self_assessment", sa.Integer()),
    ("income_per_member", sa.Integer()),
    ("welfare_index", sa.Float()),
    ("independence_index", sa.Float()),
)


def upgrade() -> None:
    op.add_column(
        "monev_baselines", sa.Column("household_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True)
    )
    op.add_column("monev_tasks", sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("monev_tasks", sa.Column("cancel_reason", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True))
    op.add_column("monev_surveys", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    for name, type_ in ERASABLE:
        op.alter_column("monev_surveys", name, existing_type=type_, nullable=True)


def downgrade() -> None:
    for name, type_ in ERASABLE:
        op.alter_column("monev_surveys", name, existing_type=type_, nullable=False)
    op.drop_column("monev_surveys", "erased_at")
    op.drop_column("monev_tasks", "cancel_reason")
    op.drop_column("monev_tasks", "cancelled_at")
    op.drop_column("monev_baselines", "household_id")
