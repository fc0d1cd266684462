"""entry rules at enrolment: entry_policies (seeded with version 2023.1), the facts the rules read in
participant_eligibility, and the policy version, exit agreement and overridden rules on each enrolment

Enrolments made before this revision keep policy_version NULL (no entry rule was checked then).
Participants announced before it have no birth year, programmes, decile or business field in the read
model until the registry announces them again (participant.updated); until then the rules that need
those facts fail for them (fail closed) and an admin override with a reason enrols them.

Revision ID: trai_rules_01
Revises: trai_f5b3cc61
Create Date: 2026-11-30 08:30:00
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "trai_rules_01"
down_revision: str | None = "trai_f5b3cc61"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIRST_POLICY = {
    "version": "2023.1",
    "effective_from": date(2023, 1, 1),
    "parameters": {
        "min_age": 18,
        "max_age": 64,
        "kpm_programmes": ["PKH", "BPNT"],
        "max_dtsen_decile": 4,
        "require_business": True,
        "require_exit_agreement": True,
    },
    "source": (
        "PENA programme selection: productive-age members of KPM in PKH/BPNT (DTSEN deciles 1-4) who run or "
        "plan a small business and agree to leave assistance once independent"
    ),
}


def upgrade() -> None:
    policies = op.create_table(
        "entry_policies",
        sa.Column("version", sa.String(length=20), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("parameters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
        sa.UniqueConstraint("effective_from"),
    )
    op.bulk_insert(policies, [FIRST_POLICY | {"created_at": datetime(2026, 11, 30, tzinfo=UTC)}])
    op.add_column("participant_eligibility", sa.Column("birth_year", sa.Integer(), nullable=True))
    op.add_column("participant_eligibility", sa.Column("business_field", sa.String(length=40), nullable=True))
    op.add_column(
        "participant_eligibility",
        sa.Column("assistance_programmes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("participant_eligibility", sa.Column("dtsen_decile", sa.Integer(), nullable=True))
    op.add_column("enrolments", sa.Column("policy_version", sa.String(length=20), nullable=True))
    op.add_column("enrolments", sa.Column("exit_agreement", sa.Boolean(), nullable=True))
    op.add_column("enrolments", sa.Column("overridden_rules", postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column("enrolments", "overridden_rules")
    op.drop_column("enrolments", "exit_agreement")
    op.drop_column("enrolments", "policy_version")
    for column in ("dtsen_decile", "assistance_programmes", "business_field", "birth_year"):
        op.drop_column("participant_eligibility", column)
    op.drop_table("entry_policies")
