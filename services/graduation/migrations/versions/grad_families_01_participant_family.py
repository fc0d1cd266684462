"""the participant read model keeps the family: household_id and kk_token

Revision ID: grad_families_01
Revises: grad_3c1e7a52
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "grad_families_01"
down_revision: str | None = "grad_3c1e7a52"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "graduation_participant_view",
        sa.Column("household_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    )
    op.add_column(
        "graduation_participant_view",
        sa.Column("kk_token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("graduation_participant_view", "kk_token")
    op.drop_column("graduation_participant_view", "household_id")
