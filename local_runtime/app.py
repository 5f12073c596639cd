"""The Litestar application factory: HTTP API, WebSockets, OpenAPI, and the engine's lifespan."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from logging import Logger
from urllib.parse import parse_qsl, urlencode

from litestar import Litestar, Request, Response, Router
from litestar.exceptions import HTTPException, ValidationException
from litestar.logging import LoggingConfig
from litestar.openapi.spec import Components, SecurityScheme

from functions.bootstrap import bootstrap
from functions.pipeline import PIPELINE
from local_runtime.asyncapi import asyncapi_json
from local_runtime.auth import API_KEY_QUERY, DEV_CLIENT, KeyWatch, api_key_guard, register_dev_key
from local_runtime.console_api import CONSOLE_ROUTES, MARKET_ROUTES
from local_runtime.gc_tuning import freeze_startup_heap
from local_runtime.http_api import ORDER_ROUTES, healthz, invalid_field, refusal, service_unavailable
from local_runtime.keys_api import KEY_ROUTES
from local_runtime.metrics_api import metrics
from local_runtime.openapi import FinishedOpenAPIConfig
from local_runtime.logs import litestar_formatters
from local_runtime.quote_api import get_quote
from local_runtime.saq_ui import saq_ui_routes
from local_runtime.sim_api import SIM_ROUTES
from local_runtime.swap_api import SWAP_ROUTES
from local_runtime.ws_api import SOCKETS, SocketSlots
from shared.domain.errors import FieldError, InputError
from shared.adapters.outages import SERVICE_ERRORS
from shared.settings import Settings

API_DESCRIPTION = """
Order execution engine for Solana DEX trading on simulated Raydium and Meteora pools.

Every /api route needs an API key: header `X-API-Key` (WebSockets also take `?apiKey=`).
The local runtime prints a development key at start-up.

WebSockets (OpenAPI cannot describe them; their AsyncAPI 3.0 document is
[/schema/asyncapi.json](/schema/asyncapi.json): every message, close code and limit):

* `ws://HOST/api/orders/execute`: send orders (the body of POST /api/orders/execute) and
  `{"action":"cancel","orderId"}` as JSON text frames; receive each order's
  `{"orderId","seq","status","ts","data"}` events until its terminal one, and refusals as
  `{"type":"error","error","field","status"}` (the socket stays open).
* `ws://HOST/api/orders/{orderId}/stream?after=N`: the order's events after seq N, stored then
  live, until the terminal event; then the server closes the socket.

A revoked key is refused within a second in every web process: HTTP answers 401, and each open
socket of the key gets `{"type":"error","field":"X-API-Key","status":401}` and closes with 1008.
A bad query parameter (wrong type, out of range, missing) is a 422 `{"error","field"}` naming it.
"""
_MISSING = re.compile(r"Missing required \w+ parameter '([^']+)'")
LOG_QUERY_CHARS = 200


def parameter_error(exc: ValidationException) -> tuple[str, str | None]:
    """The message and the field (camelCase, as the client sent it) of Litestar's parameter check."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    first = extra[0] if extra and isinstance(extra[0], dict) else {}
    key = first.get("key")
    if key is None and (missing := _MISSING.search(str(exc.detail))):
        key = missing.group(1)
    field = None if key is None else re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)  # the API's camelCase
    message = first.get("message") or (f"{field} is required" if field else "invalid parameter")
    return (f"{field}: {message}" if field else message), field


def invalid_parameter(_: Request, exc: ValidationException) -> Response:
    """Litestar's own parameter checks (query and path types, ranges, a missing one) as the API's
    other field errors: 422 `{"error","field"}`."""
    message, field = parameter_error(exc)
    return Response({"error": message, "field": field}, status_code=422)


def log_exception(logger: Logger, scope, traceback: list[str]) -> None:
    """What Litestar logs for an exception a handler or guard raised: a client's error (any 4xx: a
    bad parameter, a missing key) is one line; anything else gets its traceback."""
    exc = sys.exc_info()[1]
    status = 422 if isinstance(exc, FieldError) else exc.status if isinstance(exc, InputError) \
        else getattr(exc, "status_code", None)
    if isinstance(exc, (InputError, FieldError, HTTPException)) and isinstance(status, int) and 400 <= status < 500:
        if isinstance(exc, ValidationException):
            status, detail = 422, parameter_error(exc)[0]  # as invalid_parameter answers it
        else:
            detail = exc.message if isinstance(exc, (InputError, FieldError)) else exc.detail
        logger.info("%s %r%s -> %d %s: %r", scope.get("method", scope["type"]), scope["path"], _query(scope), status,
                    type(exc).__name__, str(detail)[:LOG_QUERY_CHARS])
        return
    logger.error("Uncaught exception (connection_type=%s, path=%r%s):", scope["type"], scope["path"], _query(scope),
                 exc_info=exc)  # the traceback: after the line in text, its own field in JSON


def _query(scope) -> str:
    """The query string for a log line, the API key's value masked."""
    raw = scope.get("query_string", b"").decode("latin-1")
    if not raw:
        return ""
    pairs = [(k, "***" if k == API_KEY_QUERY else v) for k, v in parse_qsl(raw, keep_blank_values=True)]
    return "?" + urlencode(pairs)[:LOG_QUERY_CHARS]


def create_app(settings: Settings, worker_steps: Iterable[str] = tuple(PIPELINE)) -> Litestar:
    """The app; its lifespan starts the engine and SAQ workers for `worker_steps` in this process."""
    steps = tuple(worker_steps)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = await bootstrap(settings)
        watch = await KeyWatch.start(services.keys, services.redis, settings.namespace, services.ctx.ids.home)
        app.state.services, app.state.hub = services, watch.hub
        app.state.api_keys, app.state.key_sessions = watch.keys, watch.sessions
        app.state.socket_slots = SocketSlots(settings.ws_max_sockets_per_client)
        dev_key = await register_dev_key(app.state.api_keys, settings)
        print(f"development API key (client {DEV_CLIENT!r}): {dev_key}", flush=True)
        await services.run_workers(steps)
        services.run_driver()
        freeze_startup_heap()
        try:
            yield
        finally:
            await watch.stop()
            await services.close()

    api = Router(path="/", route_handlers=[*ORDER_ROUTES, get_quote, *SWAP_ROUTES, *SIM_ROUTES, *MARKET_ROUTES,
                                           *KEY_ROUTES],
                 guards=[api_key_guard], security=[{"apiKey": []}])
    return Litestar(
        route_handlers=[api, healthz, metrics, asyncapi_json, *SOCKETS, *CONSOLE_ROUTES, *saq_ui_routes(settings)],
        lifespan=[lifespan],
        exception_handlers={
            InputError: refusal,
            FieldError: invalid_field,
            ValidationException: invalid_parameter,
            **{error: service_unavailable for error in SERVICE_ERRORS},
        },
        openapi_config=FinishedOpenAPIConfig(
            title="DEX order execution engine", version="0.1.0", description=API_DESCRIPTION,
            components=Components(security_schemes={
                "apiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
            }),
        ),
        logging_config=LoggingConfig(root={"handlers": ["queue_listener"], "level": settings.log_level.upper()},
                                     log_exceptions="always", disable_stack_trace={404, 405},
                                     exception_logging_handler=log_exception,
                                     formatters=litestar_formatters(settings.log_format)),
        debug=False,
    )
