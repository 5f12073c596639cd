"""Lambda entry point of the web side: API Gateway HTTP API (payload v2) → intake and order
reads, with the same validation, authentication and error bodies as the local runtime.

Routes: POST /api/orders/execute, GET /api/orders/{orderId}, GET /api/orders/{orderId}/events,
DELETE /api/orders/{orderId}. The order socket is API Gateway's WebSocket API, on its own function
(cloud/ws_handler.py).

A function cannot hold a Redis subscription, so it hears of no revocation: it reads the key in
PostgreSQL on every request (no cache), and a revoked key is refused by the next request.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from cloud.container import Container, container
from shared.domain.events import parse_after
from shared.adapters.outages import SERVICE_ERRORS, unavailable_message
from functions.desk import authenticate
from shared.domain.errors import InputError
from shared.domain.views import order_view

_encoder = msgspec.json.Encoder()


def _response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json", **(headers or {})},
            "body": _encoder.encode(body).decode()}


def _body(event: dict[str, Any]) -> bytes:
    raw = event.get("body") or ""
    return base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()


async def route_request(event: dict[str, Any], box: Container) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET")
    parts = [p for p in event.get("rawPath", "/").split("/") if p]
    desk = box.services.desk
    try:
        client = await authenticate(box.services.keys, headers.get("x-api-key"))  # no cache: see the docstring
        if method == "POST" and parts == ["api", "orders", "execute"]:
            done = await desk.submit(_body(event), client, headers.get("idempotency-key"))
            if done.repeat:
                events = await box.ctx.orders.events(done.order_id)
                return _response(200, {"orderId": done.order_id, "status": done.status, "repeat": True,
                                       "events": events})
            return _response(201, {"orderId": done.order_id, "status": done.status})
        if len(parts) in (3, 4) and parts[:2] == ["api", "orders"]:
            if method == "DELETE" and len(parts) == 3:
                return _response(200, {"orderId": await desk.cancel(parts[2], client.client_id),
                                       "status": "cancelled"})
            order = await desk.owned(parts[2], client.client_id)
            if method == "GET" and len(parts) == 3:
                return _response(200, order_view(order, box.ctx.tokens))
            if method == "GET" and parts[3] == "events":
                after = parse_after((event.get("queryStringParameters") or {}).get("after"))
                return _response(200, await box.ctx.orders.events(order.id, after))
        return _response(404, {"error": "no such route", "field": None})
    except InputError as exc:
        return _response(exc.status, exc.body(), exc.headers())
    except SERVICE_ERRORS as exc:
        return _response(503, {"error": unavailable_message(exc), "field": None}, {"Retry-After": "1"})


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    box = container()
    return box.invoke(route_request(event, box))

