"""the participants table's indexes reviewed against every query that reads it (issue 16 item 2):
the single-column indexes on status, business_field, dtsen_decile and flagged, and the one on
kk_token, go (no query needs them: a list page walks participants_created_id or, for a unit,
participants_region; households are found by households.kk_token); the admins' duplicate review
(flagged) gets a small partial index in the list's order. Every registration and import writes
five index entries fewer (docs/benchmarks.md, "Registration: lean indexes ...").

Revision ID: part_indexes_01
Revises: part_runs_01
Create Date: 2026-11-30 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "part_indexes_01"
down_revision: str | None = "part_runs_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROPPED = (
    ("ix_participants_status", "status"),
    ("ix_participants_business_field", "business_field"),
    ("ix_participants_dtsen_decile", "dtsen_decile"),
    ("ix_participants_flagged", "flagged"),
    ("participants_kk_token", "kk_token"),
)


def upgrade() -> None:
    for name, _ in _DROPPED:
        op.drop_index(name, table_name="participants")
    op.create_index(
        "participants_flagged_created",
        "participants",
        ["created_at", "id"],
        unique=False,
        postgresql_where=sa.text("flagged"),
    )


def downgrade() -> None:
    op.drop_index("participants_flagged_created", table_name="participants", postgresql_where=sa.text("flagged"))
    for name, column in _DROPPED:
        op.create_index(name, "participants", [column], unique=False)
