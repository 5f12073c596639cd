"""HTTP routes (submit an order, read it and its events, health) and the app's error answers: a
refusal (InputError, FieldError) or a backing service down (503). A route raises; the app's
exception handlers answer."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import QueryParameter

from functions.bootstrap import Services
from functions.desk import OrderDesk, parse_order_id
from shared.adapters.outages import unavailable_message
from shared.domain.errors import FieldError, InputError
from shared.domain.views import order_view
from shared.domain.events import MAX_SEQ, Event, parse_after

def error_response(status: int, message: str, field: str | None = None) -> Response:
    return Response({"error": message, "field": field}, status_code=status)


def refusal(_: Request, exc: InputError) -> Response:
    return Response(exc.body(), status_code=exc.status, headers=exc.headers())


def invalid_field(_: Request, exc: FieldError) -> Response:
    return error_response(422, exc.message, exc.field)


def service_unavailable(_: Request, exc: Exception) -> Response:
    """Redis or PostgreSQL is down (shared/adapters/outages.py says which errors mean that)."""
    return Response({"error": unavailable_message(exc), "field": None}, status_code=503, headers={"Retry-After": "1"})


@post("/api/orders/execute", status_code=201, summary="Submit an order")
async def submit_order(request: Request, state: State) -> Response:
    """Body: {"type":"market","side":"sell","baseAsset":"SOL","quoteAsset":"USDC","amount":"1.5","slippageBps":100}.
    Returns 201 {"orderId","status":"pending"}; 400 when the body is not JSON, 422 when a field is wrong
    (the body names it). With an `Idempotency-Key` header (or `clientOrderId`) already used: 200 with the
    original order's id, status and events (`"repeat": true`), or 409 if the body differs. 429 with
    `Retry-After` over the client's rate or in-flight limit; 503 when a backing service is down."""
    desk: OrderDesk = state.services.desk
    done = await desk.submit(await request.body(), request.state.client, request.headers.get("idempotency-key"))
    if done.repeat:
        events = await state.services.ctx.orders.events(done.order_id)
        return Response({"orderId": done.order_id, "status": done.status, "repeat": True, "events": events},
                        status_code=200)
    return Response({"orderId": done.order_id, "status": done.status}, status_code=201)


@delete("/api/orders/{order_id:str}", status_code=200, summary="Cancel a pending or waiting order")
async def cancel_order(order_id: str, request: Request, state: State) -> Response:
    """200 {"orderId","status":"cancelled"}; 409 if the order already triggered or finished; 404 if unknown."""
    desk: OrderDesk = state.services.desk
    cancelled = await desk.cancel(order_id, request.state.client.client_id)
    return Response({"orderId": cancelled, "status": "cancelled"})


@get("/api/orders/{order_id:str}", summary="An order and its current state")
async def get_order(order_id: str, request: Request, state: State) -> Response:
    desk: OrderDesk = state.services.desk
    order = await desk.owned(order_id, request.state.client.client_id)
    return Response(order_view(order, state.services.ctx.tokens))


@get("/api/orders/{order_id:str}/events", summary="An order's events, oldest first")
async def get_events(
    order_id: str, request: Request, state: State,
    after: Annotated[str | None, QueryParameter(
        description=f"only events after this seq: ASCII digits, 0 to {MAX_SEQ} (default 0); anything else is a 422"
                    " naming `after`",
    )] = None,
) -> Response:
    """422 (`field`: `after`) when `after` is not a seq; 404 if the order is unknown or another client's."""
    start = parse_after(after)  # the one reading of ?after= (the /stream socket and the cloud function share it)
    desk: OrderDesk = state.services.desk
    order = await desk.owned(order_id, request.state.client.client_id)
    events: list[Event] = await state.services.ctx.orders.events(order.id, start)
    return Response(events)


RECENT_LIMIT_MAX = 100


@get("/api/orders", summary="The client's recent orders, newest first (a page at a time)")
async def list_orders(
    request: Request, state: State,
    limit: Annotated[int, QueryParameter(
        ge=1, le=RECENT_LIMIT_MAX, description=f"orders per page, 1 to {RECENT_LIMIT_MAX}; anything else is a 422"
                                               " naming `limit`",
    )] = 20,
    before: Annotated[str | None, QueryParameter(
        description="the cursor: the `next` of the page before (the id of its last order); only orders older than"
                    " it. Absent: from the newest. Not an order id: a 422 naming `before`",
    )] = None,
) -> Response:
    """The caller's own orders, newest first, each as `GET /api/orders/{id}` shows it (`lastSeq` is
    its latest event's seq). 200 `{"orders": [...], "next": <the cursor of the next page, or null
    when this page is the last>}`."""
    cursor = None
    if before is not None and (cursor := parse_order_id(before)) is None:
        raise FieldError("before", "before must be an order id (the `next` of the previous page)")
    page = await state.services.ctx.orders.recent(request.state.client.client_id, cursor, limit + 1)
    tokens = state.services.ctx.tokens
    await tokens.ensure(*{mint for order in page for mint in (order.base_mint, order.quote_mint)})  # launched ones
    return Response({"orders": [order_view(order, tokens) for order in page[:limit]],
                     "next": page[limit - 1].id if len(page) > limit else None})


@get("/healthz", summary="Reachability of Redis and PostgreSQL")
async def healthz(state: State) -> Response:
    services: Services = state.services
    checks: dict[str, Any] = {}
    try:
        await services.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    try:
        await services.pool.fetchval("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"unreachable: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return Response({"status": "ok" if healthy else "degraded", **checks}, status_code=200 if healthy else 503)


ORDER_ROUTES = [submit_order, list_orders, cancel_order, get_order, get_events]
"""Behind the API-key guard."""
