"""The Piccolo app holding the engine's tables and their migrations."""

import os

from piccolo.conf.apps import AppConfig

from shared.adapters.postgres.tables import ApiKey, ChainTransaction, OpenOrder, Order, OrderEvent, SimPair, SimPool, SimToken

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="engine",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=[Order, OrderEvent, ChainTransaction, ApiKey, OpenOrder, SimPair, SimPool, SimToken],
    migration_dependencies=[],
    commands=[],
)
