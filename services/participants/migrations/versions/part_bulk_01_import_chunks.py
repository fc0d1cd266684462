"""the kernel's import_chunks: uploads being imported, in encrypted chunks (pena.imports);
participant_imports no longer keeps the file

Revision ID: part_bulk_01
Revises: part_families_01
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "part_bulk_01"
down_revision: str | None = "part_families_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_chunks",
        sa.Column("import_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("first_row", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("content_enc", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("import_id", "seq"),
    )
    op.drop_column("participant_imports", "content_enc")  # the upload now waits in import_chunks


def downgrade() -> None:
    op.add_column("participant_imports", sa.Column("content_enc", sa.Text(), nullable=True))
    op.drop_table("import_chunks")
