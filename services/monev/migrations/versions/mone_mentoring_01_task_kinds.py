"""mentoring tasks: monev_tasks.kind and decision_id; uniqueness per kind (partial unique indexes)

Revision ID: mone_mentoring_01
Revises: mone_families_01
Create Date: 2026-11-30 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mone_mentoring_01"
down_revision: str | None = "mone_families_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("monev_tasks", sa.Column("kind", sa.String(length=20), server_default="follow_up", nullable=False))
    op.add_column("monev_tasks", sa.Column("decision_id", sa.String(length=40), nullable=True))
    # the follow-up rule stays (participant, batch, wave); mentoring visits are unique per (decision, wave)
    op.drop_constraint("monev_tasks_participant_batch_wave", "monev_tasks", type_="unique")
    op.create_index(
        "monev_tasks_participant_batch_wave",
        "monev_tasks",
        ["participant_id", "batch_id", "wave"],
        unique=True,
        postgresql_where=sa.text("kind = 'follow_up'"),
    )
    op.create_index(
        "monev_tasks_decision_wave",
        "monev_tasks",
        ["decision_id", "wave"],
        unique=True,
        postgresql_where=sa.text("kind = 'mentoring'"),
    )


def downgrade() -> None:
    op.drop_index("monev_tasks_decision_wave", table_name="monev_tasks")
    op.drop_index("monev_tasks_participant_batch_wave", table_name="monev_tasks")
    # a downgrade loses the mentoring visits (the old schema cannot hold them)
    op.execute("DELETE FROM monev_surveys WHERE task_id IN (SELECT id FROM monev_tasks WHERE kind <> 'follow_up')")
    op.execute("DELETE FROM monev_tasks WHERE kind <> 'follow_up'")
    op.create_unique_constraint(
        "monev_tasks_participant_batch_wave", "monev_tasks", ["participant_id", "batch_id", "wave"]
    )
    op.drop_column("monev_tasks", "decision_id")
    op.drop_column("monev_tasks", "kind")
