"""reverification after a reversal: graduation_assessment.reverification_required

Revision ID: grad_3c1e7a52
Revises: grad_f9eadfc0
Create Date: 2026-11-30 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "grad_3c1e7a52"
down_revision: str | None = "grad_f9eadfc0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "graduation_assessment",
        sa.Column("reverification_required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("graduation_assessment", "reverification_required")
