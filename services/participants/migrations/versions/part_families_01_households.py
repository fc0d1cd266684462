"""households (KPM): one per KK token, every participant linked to one; existing rows backfilled

Revision ID: part_families_01
Revises: part_5c1e7a20
Create Date: 2026-11-30 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "part_families_01"
down_revision: str | None = "part_5c1e7a20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "households",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("kk_token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("households_kk_token", "households", ["kk_token"], unique=True)
    op.add_column("participants", sa.Column("household_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
    op.create_index("participants_household", "participants", ["household_id"], unique=False)
    # one household per distinct KK token, then one of its own for each participant without a token
    # (erased before households existed): every participant links to exactly one
    op.execute(
        """
        INSERT INTO households (id, kk_token, created_at, updated_at)
        SELECT gen_random_uuid()::text, kk_token, min(created_at), now()
        FROM participants WHERE kk_token IS NOT NULL GROUP BY kk_token
        """
    )
    op.execute(
        """
        UPDATE participants AS p SET household_id = h.id
        FROM households AS h WHERE h.kk_token = p.kk_token
        """
    )
    op.execute(
        """
        WITH orphans AS (
            SELECT id AS participant_id, gen_random_uuid()::text AS household_id, created_at
            FROM participants WHERE household_id IS NULL
        ), created AS (
            INSERT INTO households (id, kk_token, created_at, updated_at)
            SELECT household_id, NULL, created_at, now() FROM orphans
        )
        UPDATE participants AS p SET household_id = o.household_id
        FROM orphans AS o WHERE p.id = o.participant_id
        """
    )


def downgrade() -> None:
    op.drop_index("participants_household", table_name="participants")
    op.drop_column("participants", "household_id")
    op.drop_index("households_kk_token", table_name="households")
    op.drop_table("households")
