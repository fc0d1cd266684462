"""Alembic environment shared by every service: the caller (pena.migrate) hands in the connection
and the metadata (kernel tables + the service's own), so there is no alembic.ini to keep in sync."""

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=config.attributes["target_metadata"],
    compare_type=True,
    compare_server_default=False,
)
with context.begin_transaction():
    context.run_migrations()
