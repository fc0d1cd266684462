"""backfill imports: batches.batch_ref (the client's reference, unique within the centre) and one session
per (batch, date, module)

Batches scheduled through the API keep batch_ref NULL (NULLs never collide). POST /v1/batches already
refuses the same module twice on one date, so existing sessions satisfy the new unique constraint.

Revision ID: trai_backfill_01
Revises: trai_runs_01
Create Date: 2026-11-30 11:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "trai_backfill_01"
down_revision: str | None = "trai_runs_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("batches", sa.Column("batch_ref", sa.String(length=60), nullable=True))
    op.create_unique_constraint("batches_centre_batch_ref", "batches", ["centre_id", "batch_ref"])
    op.create_unique_constraint(
        "batch_sessions_batch_date_module", "batch_sessions", ["batch_id", "session_date", "module"]
    )


def downgrade() -> None:
    op.drop_constraint("batch_sessions_batch_date_module", "batch_sessions", type_="unique")
    op.drop_constraint("batches_centre_batch_ref", "batches", type_="unique")
    op.drop_column("batches", "batch_ref")
