"""API Gateway's management API for one WebSocket stage: post a message to a connection, close one.

boto3 is synchronous: each call runs on a thread of the event loop's executor, so posts to several
connections go out together and the loop keeps running. Throttling and 5xx answers are retried by
botocore (standard mode, three attempts); what still fails is raised to the caller, except a
closed connection, which is `Gone`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from shared.settings import Settings

ATTEMPTS = 3
TIMEOUT_S = 5


class Gone(Exception):
    """The connection is closed (API Gateway's GoneException, HTTP 410): forget it."""


def _error_code(exc: Exception) -> str | None:
    return getattr(exc, "response", {}).get("Error", {}).get("Code")


class ManagementApi:
    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> ManagementApi:
        import boto3  # provided by the Lambda runtime; imported only where a stage is named
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "max_attempts": ATTEMPTS}, connect_timeout=TIMEOUT_S,
                        read_timeout=TIMEOUT_S, max_pool_connections=32)
        return cls(boto3.client("apigatewaymanagementapi", endpoint_url=settings.ws_management_url, config=config))

    async def post(self, connection_id: str, frame: bytes) -> None:
        """PostToConnection; `Gone` if the connection is closed."""
        try:
            await asyncio.to_thread(self._client.post_to_connection, ConnectionId=connection_id, Data=frame)
        except Exception as exc:
            if _error_code(exc) == "GoneException":
                raise Gone(connection_id) from None
            raise

    async def close(self, connection_id: str) -> None:
        """DeleteConnection (a connection already gone is fine)."""
        try:
            await asyncio.to_thread(self._client.delete_connection, ConnectionId=connection_id)
        except Exception as exc:
            if _error_code(exc) != "GoneException":
                raise
