"""Lambda entry point of the WebSocket API (API Gateway, route selection `$request.body.action`):
the local order socket's messages over API Gateway's connections, every route in this function.

  $connect     the key (`?apiKey=` or X-API-Key) authenticated; the connection stored with its id
  $disconnect  the connection and its subscriptions forgotten
  subscribe    {"action":"subscribe","orderId","after"}: the stored events after `after`, then live ones
  cancel       {"action":"cancel","orderId"} → {"type":"cancelled","orderId"}
  $default     an order, the same JSON as on the local socket → its events from `pending`, live; any
               other message → the same error message as locally

Nothing is answered through route responses: every message goes out through the management API's
PostToConnection, events through the fan-out (shared/adapters/aws/socket_fanout.py) that keeps each
connection's events in seq order whichever function records them.

A function hears no revocation: every message looks the connection's key up in PostgreSQL; a
revoked key gets the 401 error and the connection is closed. A refused $connect is an HTTP answer
(API Gateway posts nothing before a connection is accepted): 401, or 503 when PostgreSQL or Redis
is down.
"""

from __future__ import annotations

from typing import Any

from cloud.container import Container, container
from functions.desk import CancelAction, authenticate
from functions.socket_messages import (REVOKED_MESSAGE, SubscribeAction, cancelled_frame, error_frame, read_message,
                                       refusal)
from shared.adapters.aws.socket_fanout import SocketFanout, StreamBusy
from shared.adapters.outages import SERVICE_ERRORS, unavailable_message
from shared.adapters.postgres.api_keys import hash_key
from shared.domain.clients import ApiClient
from shared.domain.errors import InputError
from shared.domain.states import TERMINAL_STATUSES

UNKNOWN_CONNECTION = "unknown connection: connect again with your API key"
BUSY_MESSAGE = "the order's stream is busy: subscribe again shortly"
ACCEPTED = {"statusCode": 200}


def _sockets(box: Container) -> SocketFanout:
    publisher = box.ctx.publisher
    if not isinstance(publisher, SocketFanout):
        raise RuntimeError("DEX_WS_MANAGEMENT_URL is not set: this function posts through the stage's management API")
    return publisher


async def connect(event: dict[str, Any], box: Container) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    key = headers.get("x-api-key") or (event.get("queryStringParameters") or {}).get("apiKey")
    try:
        await authenticate(box.services.keys, key)
        await _sockets(box).registry.connect(event["requestContext"]["connectionId"], hash_key(key))
    except InputError as exc:
        return {"statusCode": exc.status, "body": refusal(exc).decode()}
    except SERVICE_ERRORS as exc:
        return {"statusCode": 503, "body": error_frame(unavailable_message(exc), None, status=503).decode()}
    return ACCEPTED


async def disconnect(event: dict[str, Any], box: Container) -> dict[str, Any]:
    await _sockets(box).registry.forget(event["requestContext"]["connectionId"])
    return ACCEPTED


async def message(event: dict[str, Any], box: Container) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    sockets = _sockets(box)
    text = None if event.get("isBase64Encoded") else (event.get("body") or "")
    try:
        client = await _client(connection_id, sockets, box)
        if client is None:
            return ACCEPTED
        command = read_message(text, box.settings.ws_max_message_bytes, subscribe=True)
        if isinstance(command, SubscribeAction):
            after = command.after_seq()
            order = await box.services.desk.owned(command.order_id, client.client_id)
            await sockets.subscribe(connection_id, order.id, after, finished=order.status in TERMINAL_STATUSES)
        elif isinstance(command, CancelAction):
            cancelled = await box.services.desk.cancel(command.order_id, client.client_id)
            await sockets.send(connection_id, cancelled_frame(cancelled))
        else:
            await _submit(command, client, connection_id, sockets, box)
    except InputError as exc:
        await sockets.send(connection_id, refusal(exc))
    except StreamBusy:
        await sockets.send(connection_id, error_frame(BUSY_MESSAGE, None, status=503))
    except SERVICE_ERRORS as exc:
        await sockets.send(connection_id, error_frame(unavailable_message(exc), None, status=503))
    return ACCEPTED


async def _client(connection_id: str, sockets: SocketFanout, box: Container) -> ApiClient | None:
    """The connection's client, its key looked up again; None (the 401 sent, the connection
    closed) once the key is revoked or the connection unknown."""
    key_id = await sockets.registry.key_of(connection_id)
    client = None if key_id is None else await box.services.keys.client_by_hash(key_id)
    if client is None:
        await sockets.send(connection_id, error_frame(REVOKED_MESSAGE if key_id else UNKNOWN_CONNECTION, "X-API-Key",
                                                      status=401))
        await sockets.close(connection_id)
    return client


async def _submit(text: str, client: ApiClient, connection_id: str, sockets: SocketFanout, box: Container) -> None:
    """Submit with the connection following the order's id before the order exists, so its events,
    `pending` first, reach it as they are recorded (as the local socket does). A repeat (the
    clientOrderId named an existing order) is replayed from seq 1."""
    proposed = box.ctx.ids.order_id()
    await sockets.registry.watch(connection_id, proposed)
    try:
        done = await box.services.desk.submit(text, client, order_id=proposed)
    except BaseException:
        await sockets.registry.unwatch(connection_id, proposed)
        raise
    if done.order_id != proposed:
        await sockets.registry.unwatch(connection_id, proposed)
        await sockets.subscribe(connection_id, done.order_id, 0)


ROUTES = {"CONNECT": connect, "DISCONNECT": disconnect, "MESSAGE": message}
"""By the event's `requestContext.eventType`: every message route ($default, subscribe, cancel) is
read by its content, as the local socket reads it."""


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    box = container()
    return box.invoke(ROUTES[event["requestContext"]["eventType"]](event, box))
