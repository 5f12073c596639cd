"""Migrations made of plain DDL statements (what Piccolo's auto migrations cannot express:
composite unique keys, partial indexes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder


def ddl_forwards(migration_id: str, description: str, statements: tuple[str, ...]) -> Callable[[], Awaitable]:
    """A migration's `forwards` that runs `statements` in order."""

    async def forwards() -> MigrationManager:
        manager = MigrationManager(migration_id=migration_id, app_name="engine", description=description)

        async def run() -> None:
            engine = engine_finder()
            for statement in statements:
                await engine.run_ddl(statement)

        manager.add_raw(run)
        return manager

    return forwards
