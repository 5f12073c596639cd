"""The Litestar application factory: HTTP API, WebSockets, OpenAPI, and the engine's lifespan."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from litestar import Litestar, Request, Response, Router
from litestar.exceptions import ValidationException
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from functions.chain import CHAIN
from local_runtime.auth import DEV_CLIENT, api_key_guard, register_dev_key
from local_runtime.bootstrap import start_engine
from local_runtime.gc_tuning import freeze_startup_heap
from local_runtime.http_api import ORDER_ROUTES, healthz, refusal
from local_runtime.hub import EventHub
from local_runtime.outages import service_unavailable
from local_runtime.quote_api import get_quote
from local_runtime.sim_api import SIM_ROUTES
from local_runtime.ws_api import SOCKETS, SocketSlots
from shared.adapters.redis_limits import ClientLimits
from shared.db.api_keys import PgApiKeys
from shared.outages import SERVICE_ERRORS
from shared.settings import Settings
from shared.submission import InputError, OrderDesk

API_DESCRIPTION = """
Order execution engine for Solana DEX trading on simulated Raydium and Meteora pools.

WebSockets (not listed below, as OpenAPI cannot describe them):

Every /api route needs an API key: header `X-API-Key` (WebSockets also take `?apiKey=`).
The local runtime prints a development key at start-up.

* `ws://HOST/api/orders/execute`: send an order as a JSON text frame (the body of
  POST /api/orders/execute); receive `{"orderId","seq","status","ts","data"}` events
  (pending, routing, routed, building, submitted, confirmed | failed). Several orders
  may share one socket. A bad message gets `{"type":"error","error","field"}` and the
  socket stays open.
* `ws://HOST/api/orders/{orderId}/stream?after=N`: stored events after seq N, then live
  ones until the terminal event; the server then closes the socket.
"""


def invalid_parameter(_: Request, exc: ValidationException) -> Response:
    """Litestar's own parameter checks (query and path types, ranges) in the engine's error shape."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    key = extra[0].get("key") if extra and isinstance(extra[0], dict) else None
    field = None if key is None else re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)  # the API's camelCase
    message = extra[0].get("message", exc.detail) if extra and isinstance(extra[0], dict) else exc.detail
    return Response({"error": f"{field}: {message}" if field else message, "field": field}, status_code=400)


def create_app(settings: Settings, worker_steps: Iterable[str] = tuple(CHAIN)) -> Litestar:
    """The app; its lifespan starts the engine and SAQ workers for `worker_steps` in this process."""
    steps = tuple(worker_steps)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        engine = await start_engine(settings)
        hub = EventHub(engine.redis, settings.namespace)
        await hub.start()
        app.state.engine, app.state.hub = engine, hub
        app.state.api_keys = PgApiKeys(engine.pool)
        limits = ClientLimits(engine.redis, settings.namespace, settings.batch_max)
        app.state.desk = OrderDesk(engine.ctx, engine.queues, limits)
        app.state.socket_slots = SocketSlots(settings.ws_max_sockets_per_client)
        dev_key = await register_dev_key(app.state.api_keys, settings)
        print(f"development API key (client {DEV_CLIENT!r}): {dev_key}", flush=True)
        await engine.run_workers(steps)
        engine.run_watchers()
        freeze_startup_heap()
        try:
            yield
        finally:
            await hub.stop()
            await engine.close()

    api = Router(path="/", route_handlers=[*ORDER_ROUTES, get_quote, *SIM_ROUTES], guards=[api_key_guard],
                 security=[{"apiKey": []}])
    return Litestar(
        route_handlers=[api, healthz, *SOCKETS],
        lifespan=[lifespan],
        exception_handlers={
            InputError: lambda _, exc: refusal(exc),
            ValidationException: invalid_parameter,
            **{error: service_unavailable for error in SERVICE_ERRORS},
        },
        openapi_config=OpenAPIConfig(
            title="DEX order execution engine", version="0.1.0", description=API_DESCRIPTION,
            components=Components(security_schemes={
                "apiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
            }),
        ),
        logging_config=LoggingConfig(root={"handlers": ["queue_listener"], "level": settings.log_level.upper()},
                                     log_exceptions="always", disable_stack_trace={404, 405}),
        debug=False,
    )
