"""Partial fills: what an order actually sold (`filled_amount_in`), beside what it asked to sell
(`amount_in`) and what it bought (`amount_out`); set when it ends confirmed, partially filled
or failed after execution."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Numeric
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T16:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "orders.filled_amount_in"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="engine", description=DESCRIPTION)
    manager.add_column(
        table_class_name="Order",
        tablename="orders",
        column_name="filled_amount_in",
        db_column_name="filled_amount_in",
        column_class_name="Numeric",
        column_class=Numeric,
        params={
            "default": None,
            "digits": (20, 0),
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    return manager
