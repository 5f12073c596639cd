"""Piccolo's configuration: the engine's database (DATABASE_URL) and its one app."""

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine

from shared.settings import load_settings

DB = PostgresEngine(config={"dsn": load_settings().database_url})

APP_REGISTRY = AppRegistry(apps=["shared.adapters.postgres.piccolo_app"])
