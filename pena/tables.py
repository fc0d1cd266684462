"""Kernel tables every service database carries: outbox, inbox, dead letters, scheduled jobs,
audit log, idempotency keys, the chunks of uploads being imported and the import runs. SQLAlchemy Core on their own
metadata, created beside each service's own tables (services keep theirs on their own SQLModel registry)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

KERNEL_METADATA = MetaData()


def _ts(name: str, nullable: bool = False, default: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable, server_default=func.now() if default else None)


outbox = Table(
    "outbox",
    KERNEL_METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("event_name", String(80), nullable=False),
    Column("message_key", String(80), nullable=True),
    Column("envelope", JSONB, nullable=False),
    _ts("created_at", default=True),
    _ts("published_at", nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    # relays claim only unpublished rows: the partial index keeps that cheap however long the history
    Index("outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
)

inbox = Table(
    "inbox",
    KERNEL_METADATA,
    Column("consumer", String(80), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(120), nullable=False),
    _ts("processed_at", default=True),
)

dead_letters = Table(
    "dead_letters",
    KERNEL_METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("consumer", String(80), nullable=False),
    Column("event_id", String(64), nullable=True),
    Column("event_type", String(120), nullable=True),
    Column("origin", String(200), nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("envelope", JSONB, nullable=True),
    Column("raw_preview", Text, nullable=True),  # malformed input, NIK-shaped digits masked
    _ts("created_at", default=True),
    _ts("replayed_at", nullable=True),
    Column("replay_outcome", String(40), nullable=True),
)

scheduled_jobs = Table(
    "scheduled_jobs",
    KERNEL_METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", String(60), nullable=False),
    Column("job_key", String(200), nullable=False, unique=True),
    _ts("due_at"),
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _ts("created_at", default=True),
    _ts("done_at", nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    # the claim query walks only pending rows in due order: cost follows due work, not backlog
    Index("scheduled_jobs_pending_due", "due_at", postgresql_where=text("done_at IS NULL")),
)

audit_log = Table(
    "audit_log",
    KERNEL_METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    _ts("at", default=True),
    Column("actor", String(200), nullable=True),
    Column("client_id", String(200), nullable=True),
    Column("roles", String(200), nullable=True),
    Column("unit", String(80), nullable=True),
    Column("action", String(80), nullable=False),
    Column("subject_type", String(60), nullable=False),
    Column("subject_id", String(80), nullable=True),  # pseudonymous ids only, never a NIK or a name
    Column("purpose", String(200), nullable=True),
    Column("outcome", String(40), nullable=False),
    Column("request_id", String(80), nullable=True),
    Column("correlation_id", String(80), nullable=True),
    Column("details", JSONB, nullable=True),
    Index("audit_log_subject", "subject_type", "subject_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    KERNEL_METADATA,
    Column("client_id", String(200), primary_key=True),
    Column("idem_key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("response_body", JSONB, nullable=True),
    _ts("created_at", default=True),
)

# An upload being imported (pena.imports): its rows in chunks, encrypted, each deleted in the
# transaction that processes it.
import_chunks = Table(
    "import_chunks",
    KERNEL_METADATA,
    Column("import_id", String(40), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("first_row", Integer, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("content_enc", Text, nullable=False),
)

# A bulk import (pena.import_runs): who asked, with which reach, and how far it got. Its refused
# fields are in import_errors: row, field and rule, never a value.
import_runs = Table(
    "import_runs",
    KERNEL_METADATA,
    Column("id", String(40), primary_key=True),
    Column("kind", String(60), nullable=False),
    Column("status", String(12), nullable=False),  # queued, running, done
    Column("filename", String(200), nullable=True),
    Column("total_rows", Integer, nullable=False, server_default="0"),
    Column("processed_rows", Integer, nullable=False, server_default="0"),
    Column("created_rows", Integer, nullable=False, server_default="0"),
    Column("duplicate_rows", Integer, nullable=False, server_default="0"),
    Column("error_rows", Integer, nullable=False, server_default="0"),
    Column("requested_by", String(200), nullable=False),
    Column("requested_client", String(200), nullable=True),
    Column("requested_roles", String(200), nullable=True),
    Column("requested_unit", String(80), nullable=True),  # the uploader's reach, for each row
    _ts("created_at"),
    _ts("updated_at"),
    _ts("finished_at", nullable=True),
)

import_errors = Table(
    "import_errors",
    KERNEL_METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("import_id", String(40), nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("field", String(60), nullable=False),
    Column("rule", String(60), nullable=False),
    Index("import_errors_run_row", "import_id", "row_number"),
)

OUTBOX_CHANNEL = "pena_outbox"

# A statement that writes outbox rows queues a NOTIFY for the relay (delivered on commit, once per
# transaction: PostgreSQL folds identical notifications), so emitters need no extra round trip for it.
OUTBOX_NOTIFY_SQL = f"""
CREATE OR REPLACE FUNCTION pena_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('{OUTBOX_CHANNEL}', ''); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
FOR EACH STATEMENT EXECUTE FUNCTION pena_outbox_notify();
"""

# Audit rows are append-only: the database itself refuses UPDATE and DELETE on them.
AUDIT_APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION pena_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION pena_audit_append_only();
"""
