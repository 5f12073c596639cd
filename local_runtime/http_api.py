"""HTTP routes: submit an order, read it and its events, health."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import Parameter

from local_runtime.bootstrap import Engine
from local_runtime.submission import InputError, OrderDesk, parse_order_id
from local_runtime.views import order_view
from shared.events import Event

ANONYMOUS_CLIENT = "public"


def error_response(status: int, message: str, field: str | None = None) -> Response:
    return Response({"error": message, "field": field}, status_code=status)


@post("/api/orders/execute", status_code=201, summary="Submit an order")
async def submit_order(request: Request, state: State) -> Response:
    """Body: {"type":"market","side":"sell","baseAsset":"SOL","quoteAsset":"USDC","amount":"1.5","slippageBps":100}.
    Returns 201 {"orderId","status":"pending"}; 400 when the body is not JSON, 422 when a field is wrong
    (the body names it)."""
    desk: OrderDesk = state.desk
    try:
        order_id = await desk.submit(await request.body(), ANONYMOUS_CLIENT, request.headers.get("idempotency-key"))
    except InputError as exc:
        return Response(exc.body(), status_code=exc.status)
    return Response({"orderId": order_id, "status": "pending"}, status_code=201)


@delete("/api/orders/{order_id:str}", status_code=200, summary="Cancel a pending or waiting order")
async def cancel_order(order_id: str, state: State) -> Response:
    """200 {"orderId","status":"cancelled"}; 409 if the order already triggered or finished; 404 if unknown."""
    desk: OrderDesk = state.desk
    try:
        cancelled = await desk.cancel(order_id, ANONYMOUS_CLIENT)
    except InputError as exc:
        return Response(exc.body(), status_code=exc.status)
    return Response({"orderId": cancelled, "status": "cancelled"})


@get("/api/orders/{order_id:str}", summary="An order and its current state")
async def get_order(order_id: str, state: State) -> Response:
    engine: Engine = state.engine
    parsed = parse_order_id(order_id)
    order = None if parsed is None else await engine.ctx.orders.get(parsed)
    if order is None:
        return error_response(404, "order not found", "orderId")
    return Response(order_view(order, engine.ctx.tokens))


@get("/api/orders/{order_id:str}/events", summary="An order's events, oldest first")
async def get_events(
    order_id: str, state: State, after: int = Parameter(default=0, ge=0, description="only events after this seq")
) -> Response:
    engine: Engine = state.engine
    parsed = parse_order_id(order_id)
    order = None if parsed is None else await engine.ctx.orders.get(parsed)
    if order is None:
        return error_response(404, "order not found", "orderId")
    events: list[Event] = await engine.ctx.orders.events(parsed, after)
    return Response(events)


@get("/healthz", summary="Reachability of Redis and PostgreSQL")
async def healthz(state: State) -> Response:
    engine: Engine = state.engine
    checks: dict[str, Any] = {}
    try:
        await engine.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    try:
        await engine.pool.fetchval("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"unreachable: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return Response({"status": "ok" if healthy else "degraded", **checks}, status_code=200 if healthy else 503)


ROUTES = [submit_order, cancel_order, get_order, get_events, healthz]
