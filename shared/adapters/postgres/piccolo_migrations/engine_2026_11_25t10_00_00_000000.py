"""Fewer indexes on the hot table: every status change rewrites an order's index entries
(the status is in partial-index predicates, so no update is HOT). `orders_client_id` is
covered by the unique (client_id, idempotency_key) index; `orders_open_by_age` was
superseded by `orders_moving_by_age` (the reconciler's query) and nothing reads it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.engine import engine_finder

ID = "2026-11-25T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "drop the orders indexes nothing reads"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="engine", description=DESCRIPTION)
    manager.alter_column(
        table_class_name="Order",
        tablename="orders",
        column_name="client_id",
        db_column_name="client_id",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    async def drop_unused() -> None:
        await engine_finder().run_ddl("DROP INDEX IF EXISTS orders_open_by_age")

    manager.add_raw(drop_unused)
    return manager
