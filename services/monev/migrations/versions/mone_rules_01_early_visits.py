"""early visits: monev_surveys.early and early_reason_encrypted (the visit-date rule)

Formula versions need no rewrite: monev_surveys.formula_version exists since the initial schema and
every result stored before this revision holds `2026.1` (the only version computed until then); new
results hold `2026.2`. Earlier results keep theirs.

Revision ID: mone_rules_01
Revises: mone_mentoring_01
Create Date: 2026-11-30 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mone_rules_01"
down_revision: str | None = "mone_mentoring_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("monev_surveys", sa.Column("early", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.add_column("monev_surveys", sa.Column("early_reason_encrypted", sa.String(), nullable=True))


def downgrade() -> None:
    op.drop_column("monev_surveys", "early_reason_encrypted")
    op.drop_column("monev_surveys", "early")
