"""HTTP routes (submit an order, read it and its events, health) and the app's error answers: a
refusal (InputError, FieldError) or a backing service down (503). A route raises; the app's
exception handlers answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType
from litestar.params import Parameter, QueryParameter

from functions.bootstrap import Services
from functions.desk import OrderDesk, parse_order_id
from local_runtime.openapi import json_body, refusals
from shared.adapters.outages import unavailable_message
from shared.domain.errors import FieldError, InputError
from shared.domain.messages import ORDER_BODIES, PRINTABLE_KEY
from shared.domain.views import OrderAccepted, OrderCancelled, OrderPage, OrderRepeated, OrderView, order_view
from shared.domain.events import MAX_SEQ, Event, parse_after

ORDER_ID = Annotated[str, Parameter(description="the order's id (a UUID); anything else is a 404")]

def error_response(status: int, message: str, field: str | None = None) -> Response:
    return Response({"error": message, "field": field}, status_code=status)


def refusal(_: Request, exc: InputError) -> Response:
    return Response(exc.body(), status_code=exc.status, headers=exc.headers())


def invalid_field(_: Request, exc: FieldError) -> Response:
    return error_response(422, exc.message, exc.field)


def service_unavailable(_: Request, exc: Exception) -> Response:
    """Redis or PostgreSQL is down (shared/adapters/outages.py says which errors mean that)."""
    return Response({"error": unavailable_message(exc), "field": None}, status_code=503, headers={"Retry-After": "1"})


@post("/api/orders/execute", status_code=201, summary="Submit an order", operation_id="submitOrder",
      dto=json_body(*ORDER_BODIES), return_dto=None,
      responses={200: ResponseSpec(OrderRepeated, generate_examples=False, description=(
          "a repeated submission (the same `Idempotency-Key` or `clientOrderId` with the same order): the order it"
          " placed first")),
          **refusals(400, 401, 409, 422, 429, 503, _409=(
              "this `Idempotency-Key` or `clientOrderId` was used for a different order (`field` names which), or a"
              " submission with it is still in progress"))})
async def submit_order(
    request: Request, state: State, data: bytes = b"",
    idempotency_key: Annotated[str | None, Parameter(
        header="Idempotency-Key", schema_extra={"one_of": None, "type": OpenAPIType.STRING, "pattern": PRINTABLE_KEY},
        description=(
            "makes a resubmission return the same order (1 to 128 characters, no control characters; anything else"
            " is a 422 naming it); it takes precedence over `clientOrderId`"))] = None,
) -> Response[OrderAccepted]:
    """An order (`type`: market, limit or sniper; see each body's fields): 201 once it is stored, its events
    follow. A bad field is a 422 naming it (camelCase, as sent); a body that is not JSON a 400."""
    desk: OrderDesk = state.services.desk
    done = await desk.submit(data, request.state.client, idempotency_key)
    if done.repeat:
        events = await state.services.ctx.orders.events(done.order_id)
        return Response(OrderRepeated(done.order_id, done.status, True, events), status_code=200)
    return Response(OrderAccepted(done.order_id, "pending"), status_code=201)


@delete("/api/orders/{order_id:str}", status_code=200, summary="Cancel a pending or waiting order",
        operation_id="cancelOrder", responses=refusals(
            401, 404, 409, 503, _409="the order already triggered or finished: only pending or waiting orders can be"
                                     " cancelled (nothing changes)"))
async def cancel_order(order_id: ORDER_ID, request: Request, state: State) -> Response[OrderCancelled]:
    desk: OrderDesk = state.services.desk
    cancelled = await desk.cancel(order_id, request.state.client.client_id)
    return Response(OrderCancelled(cancelled, "cancelled"))


@get("/api/orders/{order_id:str}", summary="An order and its current state", operation_id="getOrder",
     responses=refusals(401, 404, 503, _404="no such order for this client (another client's is a 404 too)"))
async def get_order(order_id: ORDER_ID, request: Request, state: State) -> Response[OrderView]:
    desk: OrderDesk = state.services.desk
    order = await desk.owned(order_id, request.state.client.client_id)
    return Response(order_view(order, state.services.ctx.tokens))


@get("/api/orders/{order_id:str}/events", summary="An order's events, oldest first", operation_id="getOrderEvents",
     responses=refusals(401, 404, 422, 503, _404="no such order for this client", _422="`after` is not a seq"))
async def get_events(
    order_id: ORDER_ID, request: Request, state: State,
    after: Annotated[str | None, QueryParameter(
        description=f"only events after this seq: ASCII digits, 0 to {MAX_SEQ} (default 0); anything else is a 422"
                    " naming `after`",
    )] = None,
) -> Response[list[Event]]:
    """Each event is `{"orderId","seq","status","ts","data"}`; seq runs 1, 2, 3 ... without gaps."""
    start = parse_after(after)  # the one reading of ?after= (the /stream socket and the cloud function share it)
    desk: OrderDesk = state.services.desk
    order = await desk.owned(order_id, request.state.client.client_id)
    events: list[Event] = await state.services.ctx.orders.events(order.id, start)
    return Response(events)


RECENT_LIMIT_MAX = 100


@get("/api/orders", summary="The client's recent orders, newest first (a page at a time)", operation_id="listOrders",
     responses=refusals(401, 422, 503, _422="`limit` or `before` is wrong: `field` names it"))
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
) -> Response[OrderPage]:
    """The caller's own orders, newest first, each as `GET /api/orders/{orderId}` shows it (`lastSeq` is
    its latest event's seq), and the cursor of the next page (`next`, null after the last)."""
    cursor = None
    if before is not None and (cursor := parse_order_id(before)) is None:
        raise FieldError("before", "before must be an order id (the `next` of the previous page)")
    page = await state.services.ctx.orders.recent(request.state.client.client_id, cursor, limit + 1)
    tokens = state.services.ctx.tokens
    await tokens.ensure(*{mint for order in page for mint in (order.base_mint, order.quote_mint)})  # launched ones
    return Response(OrderPage([order_view(order, tokens) for order in page[:limit]],
                              page[limit - 1].id if len(page) > limit else None))


class Health(msgspec.Struct, frozen=True):
    """Whether the engine's backing services answer."""

    status: Annotated[Literal["ok", "degraded"], msgspec.Meta(description="`ok` when both answer")]
    redis: Annotated[str, msgspec.Meta(description="`ok`, or `unreachable: <error>`")]
    postgres: Annotated[str, msgspec.Meta(description="`ok`, or `unreachable: <error>`")]


@get("/healthz", summary="Reachability of Redis and PostgreSQL", operation_id="healthz",
     responses={503: ResponseSpec(Health, generate_examples=False, description="Redis or PostgreSQL does not answer")})
async def healthz(state: State) -> Response[Health]:
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
    return Response(Health("ok" if healthy else "degraded", **checks), status_code=200 if healthy else 503)


ORDER_ROUTES = [submit_order, list_orders, cancel_order, get_order, get_events]
"""Behind the API-key guard."""
