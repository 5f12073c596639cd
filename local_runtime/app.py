"""The Litestar application factory: HTTP API, WebSockets, OpenAPI, and the engine's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig

from functions.chain import CHAIN
from local_runtime.bootstrap import start_engine
from local_runtime.http_api import ROUTES
from local_runtime.quote_api import get_quote
from local_runtime.sim_api import SIM_ROUTES
from local_runtime.hub import EventHub
from local_runtime.submission import OrderDesk
from local_runtime.ws_api import SOCKETS
from shared.settings import Settings

API_DESCRIPTION = """
Order execution engine for Solana DEX trading on simulated Raydium and Meteora pools.

WebSockets (not listed below, as OpenAPI cannot describe them):

* `ws://HOST/api/orders/execute`: send an order as a JSON text frame (the body of
  POST /api/orders/execute); receive `{"orderId","seq","status","ts","data"}` events
  (pending, routing, routed, building, submitted, confirmed | failed). Several orders
  may share one socket. A bad message gets `{"type":"error","error","field"}` and the
  socket stays open.
* `ws://HOST/api/orders/{orderId}/stream?after=N`: stored events after seq N, then live
  ones until the terminal event; the server then closes the socket.
"""


def create_app(settings: Settings, worker_steps: Iterable[str] = tuple(CHAIN)) -> Litestar:
    """The app; its lifespan starts the engine and SAQ workers for `worker_steps` in this process."""
    steps = tuple(worker_steps)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        engine = await start_engine(settings)
        hub = EventHub(engine.redis, settings.namespace)
        await hub.start()
        app.state.engine, app.state.hub = engine, hub
        app.state.desk = OrderDesk(engine.ctx, engine.queues)
        await engine.run_workers(steps)
        engine.run_watchers()
        try:
            yield
        finally:
            await hub.stop()
            await engine.close()

    return Litestar(
        route_handlers=[*ROUTES, get_quote, *SIM_ROUTES, *SOCKETS],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="DEX order execution engine", version="0.1.0",
                                     description=API_DESCRIPTION),
        logging_config=LoggingConfig(log_exceptions="always", disable_stack_trace={404, 405}),
        debug=False,
    )
