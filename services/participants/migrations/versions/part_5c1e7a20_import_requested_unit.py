"""import jobs keep the uploader's unit (its reach is checked per row)

Revision ID: part_5c1e7a20
Revises: part_ae1b5e2d
Create Date: 2026-11-30 05:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "part_5c1e7a20"
down_revision: str | None = "part_ae1b5e2d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "participant_imports",
        sa.Column("requested_unit", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("participant_imports", "requested_unit")
