"""Who is calling: API keys (header `X-API-Key`, or `?apiKey=` on WebSockets for browsers),
and the development key the local runtime prints at start-up."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from shared.db.api_keys import PgApiKeys, new_key
from shared.submission import authenticate
from shared.settings import Settings

API_KEY_HEADER = "x-api-key"
API_KEY_QUERY = "apiKey"
DEV_CLIENT = "dev"
DEV_KEY_FILE = Path(__file__).resolve().parent.parent / ".dev-api-key"
"""Where start-up leaves the development key for the demo and the load tests (git-ignored)."""


def presented_key(connection: ASGIConnection) -> str | None:
    return connection.headers.get(API_KEY_HEADER) or connection.query_params.get(API_KEY_QUERY)


async def api_key_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """HTTP guard: authenticates the caller and leaves the client in `connection.state.client`."""
    connection.state.client = await authenticate(connection.app.state.api_keys, presented_key(connection))


async def register_dev_key(keys: PgApiKeys, settings: Settings) -> str:
    """Register the development key (the configured one, or a new one) and leave it where the
    demo and the load tests look; returns it."""
    key = settings.dev_api_key or new_key()
    await keys.register(key, DEV_CLIENT, datetime.now(UTC), label="development key")
    if not settings.dev_api_key:
        DEV_KEY_FILE.touch(mode=0o600)
        DEV_KEY_FILE.write_text(key + "\n")
    return key


def local_api_key() -> str:
    """The key a local tool should use: $DEX_API_KEY, else the one the runtime left at start-up."""
    key = os.environ.get("DEX_API_KEY") or os.environ.get("DEX_DEV_API_KEY")
    if key:
        return key
    try:
        return DEV_KEY_FILE.read_text().strip()
    except FileNotFoundError:
        raise SystemExit("no API key: start the runtime first (it writes .dev-api-key) or set DEX_API_KEY") from None
