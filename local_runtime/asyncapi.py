"""The AsyncAPI 3.0 description of the two WebSockets, served at /schema/asyncapi.json: what a client
sends, what the engine sends back, the close codes, and the `?after=` replay.

Payload schemas come from the msgspec types the sockets decode and encode with where there is a
type (orders, the cancel command, the event envelope, the quotes and plans inside events), so the
document cannot drift from the decoder; what has no type (each status's `data`, the error, the
outage notice and the cancel acknowledgement) is written here, from the code that records or sends it. The document
describes the engine: its `receive` operations are what clients send, `send` what it sends them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get

from functions.desk import CancelAction
from functions.socket_messages import SubscribeAction
from local_runtime.auth import API_KEY_QUERY
from shared.domain.events import MAX_SEQ, Event
from shared.domain.market import Venue
from shared.domain.messages import ORDER_BODIES, Leg, Plan, QuoteCurve, VenueFailure, VenueQuote
from shared.domain.orders import FailureReason, Kind, Side
from shared.domain.states import TERMINAL_STATUSES, Status
from shared.domain.tokens import SOL, USDC
from shared.settings import Settings

ASYNCAPI_VERSION = "3.0.0"
OUTPUT_TYPES = (Event, VenueQuote, VenueFailure, QuoteCurve, Plan, Leg)
"""Types the engine only encodes: the document closes them (no other field is ever sent)."""
MAX_FRAME_BYTES = 64 * 1024
"""uvicorn's `ws_max_size` as local_runtime/cli.py starts it: a bigger message closes the socket with 1009."""
DEFAULT_HOST = "localhost:8000"
REF = "#/components/schemas/{name}"
HEADER = "X-API-Key"
EXAMPLE_ORDER_ID = "01a2115b-8a9b-7faa-9f0a-524c06abb1b7"

_INT = {"type": "integer"}
_COUNT = {"type": "integer", "minimum": 0}
_BASE_UNITS = {"type": "integer", "minimum": 0, "description": "base units (lamports, USDC micro-units, …)"}
_DECIMAL = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "description": "a decimal number as text"}
_TEXT = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_UUID = {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
         "description": "an order id (a UUID)"}
_MINT = {"type": "string", "description": "a token's mint address (base58)"}
_VENUE = {"enum": [venue.value for venue in Venue]}
_ERROR_REASON = {"type": "string", "description": "why it did not fill: "
                 + ", ".join(f"`{reason.value}`" for reason in FailureReason)
                 + ", `insufficient liquidity: …`, or the last error of a step that gave up"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None, description: str = "") -> dict[str, Any]:
    """A closed object: these properties (`required` ones always present), no other."""
    schema = {"type": "object", "properties": {**required, **(optional or {})}, "required": list(required),
              "additionalProperties": False}
    return {"description": description, **schema} if description else schema


def _mapping(values: dict[str, Any], description: str) -> dict[str, Any]:
    return {"type": "object", "description": description, "propertyNames": _VENUE, "additionalProperties": values}


# --- schemas derived from the types --------------------------------------------------------------

def _for_asyncapi(node: Any) -> Any:
    """msgspec writes OpenAPI's `discriminator` object beside a tagged union; an AsyncAPI Schema's
    `discriminator` is something else (a property name, for inheritance): the union stays, the
    object goes (each alternative's `type` is a one-value enum anyway)."""
    if isinstance(node, dict):
        return {key: _for_asyncapi(value) for key, value in node.items()
                if not (key == "discriminator" and ("anyOf" in node or "oneOf" in node))}
    if isinstance(node, (list, tuple)):
        return [_for_asyncapi(value) for value in node]
    return node


def _alternatives(schemas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The schemas side by side: a union's members taken out of its `anyOf`."""
    return [member for schema in schemas for member in (schema["anyOf"] if set(schema) == {"anyOf"} else [schema])]


def typed_schemas() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(the `order` message's payload, the components generated from the types)."""
    generated, components = msgspec.json.schema_components((*ORDER_BODIES, CancelAction, SubscribeAction, *OUTPUT_TYPES),
                                                           ref_template=REF)
    generated, components = _for_asyncapi(generated), _for_asyncapi(components)
    for model in OUTPUT_TYPES:
        components[model.__name__]["additionalProperties"] = False
    envelope = components["Event"]["properties"]  # the type's own words, made precise
    envelope["orderId"] = {**_UUID, **envelope["orderId"]}
    envelope["seq"] = {"description": "1, 2, 3 … per order, with no gaps", **envelope["seq"], "minimum": 1,
                       "maximum": MAX_SEQ}
    if "$ref" not in envelope["status"]:
        envelope["status"] = {**envelope["status"], "enum": [status.value for status in Status]}
    envelope["ts"] = {"description": "when: ISO 8601, UTC, milliseconds", **envelope["ts"], **_TIME}
    order = {"anyOf": _alternatives(generated[: len(ORDER_BODIES)])}
    return order, components


# --- each status's `data` (functions/intake, trigger, quote, route, execute, pipeline) -------------

def _launch_facts() -> dict[str, Any]:
    return _object({"venue": _VENUE, "liquidity": _DECIMAL, "price": _DECIMAL, "priceImpactBps": _COUNT},
                   description="the new pool for this order's size: its depth in quoteAsset, the price (quote per "
                               "base) and impact")


def _fill(unfilled: bool) -> dict[str, Any]:
    """A terminal event of `execute`: what was sold, bought, at what price, and what was left."""
    leg = _object({"venue": _VENUE, "txHash": _TEXT, "slot": _COUNT, "amountIn": _BASE_UNITS,
                   "amountOut": _BASE_UNITS, "succeeded": {"type": "boolean"}, "error": _nullable(_ERROR_REASON)})
    required = {"venue": {"type": "string", "description": "the venue, or `split`"}, "amountIn": _BASE_UNITS,
                "amountOut": _BASE_UNITS, "executionPrice": _nullable(_DECIMAL), "unfilledAmountIn": _BASE_UNITS,
                "attempts": _COUNT}
    landed = {"txHash": _TEXT, "slot": _COUNT}
    optional = {"legs": {"type": "array", "items": leg, "description": "a split: each leg's landing"}}
    if not unfilled:
        return _object({**required, **landed}, optional, "every leg landed")
    return _object({**required, "error": _ERROR_REASON, "requestedAmountIn": _BASE_UNITS}, {**landed, **optional},
                   "not everything filled (txHash and slot when some leg landed)")


def _routed(components: dict[str, Any]) -> dict[str, Any]:
    """The Plan (as generated from its type), its legs with their share, and the decision's figures."""
    plan, leg = components["Plan"], components["Leg"]
    share = {**_DECIMAL, "description": "percent of the order"}
    split_leg = {**leg, "properties": {**leg["properties"], "sharePct": share}}
    decision = _object(
        {"legs": {"type": "array", "items": split_leg},
         "venue": {"type": "string", "description": "the venue, or `split`"}, "slippageBps": _COUNT, "effectivePrices": _mapping(_DECIMAL, "each quoting venue's output per input"),
         "priceImpact": _mapping(_TEXT, "each quoting venue's price impact"),
         "advantageBps": _nullable({**_INT, "description": "over the runner-up venue"})},
        {"splitGainBps": _nullable({**_INT, "description": "a split: over the best single venue"})},
        "the decision: one venue, or a split with each leg's share")
    return {**decision, "properties": {**plan["properties"], **decision["properties"]},
            "required": list(dict.fromkeys([*plan["required"], *decision["required"]]))}


def _failed() -> dict[str, Any]:
    failures = {"type": "array", "items": _ref("VenueFailure")}
    return {"description": "the order failed before or while executing", "anyOf": [
        _fill(unfilled=True),
        _object({"error": _ERROR_REASON, "expectedAmountOut": _BASE_UNITS, "floorAmountOut": _BASE_UNITS,
                 "venue": _VENUE, "legExpectedAmountOut": _BASE_UNITS, "legMinAmountOut": _BASE_UNITS},
                description="routing: no plan gives the order's floor (minAmountOut, slippage or the limit)"),
        _object({"error": {"const": FailureReason.NO_ROUTE.value}, "reason": _TEXT, "failures": failures,
                 "attempts": _COUNT}, description="quoting: no pool can fill this size"),
        _object({"error": _ERROR_REASON, "attempts": _COUNT}, description="a step gave up after its attempts"),
    ]}


def event_data(components: dict[str, Any]) -> dict[Status, dict[str, Any]]:
    """Each status's `data`, as the step that records it writes it."""
    pending = _object(
        {"type": {"enum": [kind.value for kind in Kind]}, "side": {"enum": [side.value for side in Side]},
         "baseAsset": _TEXT, "quoteAsset": _TEXT, "inputMint": _MINT, "outputMint": _MINT, "amountIn": _BASE_UNITS,
         "slippageBps": _COUNT, "clientOrderId": _nullable(_TEXT)},
        {"expiresAt": _TIME, "limitPrice": _DECIMAL, "minAmountOut": _BASE_UNITS,
         "conditions": _object({"minLiquidity": _nullable(_DECIMAL), "maxPrice": _nullable(_DECIMAL),
                                "maxPriceImpactBps": _nullable(_COUNT)}, description="a sniper's checks")},
        "the order as validated (expiresAt: limit and sniper orders; limitPrice: limit; minAmountOut: the floor)")
    return {
        Status.PENDING: pending,
        Status.WAITING: {"description": "resting (limit and sniper orders); again for each launch a sniper refuses",
                         "anyOf": [_object({"expiresAt": _TIME}),
                                   _object({"refused": _TEXT, "launch": {"anyOf": [
                                       _launch_facts(), {"type": "object", "maxProperties": 0}]}})]},
        Status.TRIGGERED: {"description": "what fired it: the price (limit) or the launch (sniper)", "anyOf": [
            _object({"venue": _VENUE, "price": _DECIMAL, "limitPrice": _DECIMAL}),
            _object({"launch": _launch_facts()})]},
        Status.ROUTING: _object({"quotes": {"type": "array", "items": _ref("VenueQuote")},
                                 "failures": {"type": "array", "items": _ref("VenueFailure")},
                                 "curves": {"type": "array", "items": _ref("QuoteCurve")}},
                                description="every venue's quote, failures, and output curves when a split may pay"),
        Status.ROUTED: _routed(components),
        Status.BUILDING: _object({"legs": {"type": "array", "items": _object(
            {"venue": _VENUE, "signature": _TEXT, "amountIn": _BASE_UNITS, "minAmountOut": _BASE_UNITS})}},
            description="the transactions, one per leg"),
        Status.SUBMITTED: _object({"signatures": {"type": "array", "items": _TEXT}}, description="one per leg"),
        Status.CONFIRMED: _fill(unfilled=False),
        Status.PARTIALLY_FILLED: _fill(unfilled=True),
        Status.FAILED: _failed(),
        Status.CANCELLED: _object({"reason": _TEXT}),
        Status.EXPIRED: _object({"expiresAt": _TIME}),
    }


def _data_name(status: Status) -> str:
    return "".join(word.title() for word in status.value.split("_")) + "Data"


# --- the messages --------------------------------------------------------------------------------

def _event_schemas(components: dict[str, Any]) -> dict[str, Any]:
    data = event_data(components)
    schemas = {_data_name(status): schema for status, schema in data.items()}
    schemas["OrderEvent"] = {
        "description": "An order's event: its status changed. `data` depends on the status.",
        "allOf": [_ref("Event")],
        "oneOf": [{"properties": {"status": {"const": status.value}, "data": _ref(_data_name(status))}}
                  for status in data],
    }
    return schemas


ERROR = _object(
    {"type": {"const": "error"}, "error": {"type": "string", "description": "what is wrong, in words"},
     "field": _nullable({"type": "string", "description": "the field, header or parameter it is about (as sent)"}),
     "status": {"type": "integer", "minimum": 400, "maximum": 599, "description": "the HTTP status it would be"}},
    {"retryAfter": {**_COUNT, "description": "429: seconds until an order may be taken"}})
NOTICE = _object(
    {"type": {"const": "notice"}, "orderId": {**_UUID, "description": "the order still being followed"},
     "error": {"type": "string", "description": "the outage, in words"}},
    description="PostgreSQL went away while this order was followed: not an error, and not the end of its "
                "events. The order goes on (do not send it again); its events resume in seq order, none missing, "
                "none repeated, once PostgreSQL is back. Sent once per outage.")
CANCEL_ACK = _object({"type": {"const": "cancelled"}, "orderId": _UUID})


def _event_example(seq: int, status: Status, data: dict[str, Any]) -> dict[str, Any]:
    return {"orderId": EXAMPLE_ORDER_ID, "seq": seq, "status": status.value, "ts": "2026-11-25T10:00:00.123Z",
            "data": data}


def _messages(order_payload: dict[str, Any]) -> dict[str, Any]:
    market = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1.5",
              "slippageBps": 100}
    signature = "5" * 88
    return {
        "order": {
            "name": "order", "title": "Place an order", "contentType": "application/json",
            "summary": "An order: the body of POST /api/orders/execute (any of the payload's alternatives).",
            "payload": order_payload,
            "examples": [{"name": "market", "payload": market},
                         {"name": "limit", "payload": {**market, "type": "limit", "amount": "2", "limitPrice": "180.5",
                                                       "expiresAt": 3600}}],
        },
        "cancel": {
            "name": "cancel", "title": "Cancel an order", "contentType": "application/json",
            "summary": "Cancel one of this client's pending or waiting orders (any socket's or HTTP's).",
            "payload": _ref("CancelAction"),
            "examples": [{"payload": {"action": "cancel", "orderId": EXAMPLE_ORDER_ID}}],
        },
        "subscribe": {
            "name": "subscribe", "title": "Follow an order", "contentType": "application/json",
            "summary": "Follow one of this client's orders on this socket: its stored events after seq `after` "
                       "(default 0; a number, or the digits `?after=` takes), then its live ones, to its terminal "
                       "event (404: no such order of this client; 422 naming `after`). The same command as on the "
                       "cloud's WebSocket API.",
            "payload": _ref("SubscribeAction"),
            "examples": [{"payload": {"action": "subscribe", "orderId": EXAMPLE_ORDER_ID, "after": 2}}],
        },
        "event": {
            "name": "event", "title": "Order event", "contentType": "application/json",
            "summary": "An order's status changed: `{orderId, seq, status, ts, data}`.",
            "payload": _ref("OrderEvent"),
            "examples": [
                {"name": "pending", "payload": _event_example(1, Status.PENDING, {
                    "type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "inputMint": SOL.mint,
                    "outputMint": USDC.mint, "amountIn": 1_500_000_000, "slippageBps": 100, "clientOrderId": None})},
                {"name": "submitted", "payload": _event_example(5, Status.SUBMITTED, {"signatures": [signature]})},
                {"name": "confirmed", "payload": _event_example(6, Status.CONFIRMED, {
                    "venue": "meteora", "amountIn": 1_500_000_000, "amountOut": 268_411_871, "executionPrice": "178.94",
                    "unfilledAmountIn": 0, "attempts": 1, "txHash": signature, "slot": 1042})},
            ],
        },
        "error": {
            "name": "error", "title": "Refusal", "contentType": "application/json",
            "summary": "A message, or the socket, was refused: the HTTP status it would be and the field at fault.",
            "payload": _ref("Error"),
            "examples": [
                {"name": "bad field", "payload": {"type": "error", "error": "amount must be a decimal number",
                                                  "field": "amount", "status": 422}},
                {"name": "over the rate", "payload": {"type": "error", "field": None, "status": 429, "retryAfter": 12,
                                                      "error": "too many orders: over this client's orders per minute"}},
                {"name": "bad key", "payload": {"type": "error", "error": "unknown or revoked API key",
                                                "field": HEADER, "status": 401}},
            ],
        },
        "notice": {
            "name": "notice", "title": "Still following", "contentType": "application/json",
            "summary": "An outage: the order's events wait for PostgreSQL and resume where they stopped.",
            "payload": _ref("Notice"),
            "examples": [{"payload": {"type": "notice", "orderId": EXAMPLE_ORDER_ID, "error": (
                "PostgreSQL is unavailable (ConnectionRefusedError); still following, events will resume")}}],
        },
        "cancelAck": {
            "name": "cancelAck", "title": "Cancel taken", "contentType": "application/json",
            "summary": "The cancel was taken; the order's `cancelled` event is sent to whoever follows it.",
            "payload": _ref("CancelAck"),
            "examples": [{"payload": {"type": "cancelled", "orderId": EXAMPLE_ORDER_ID}}],
        },
    }


# --- channels, operations, the document ----------------------------------------------------------

_UNEXPECTED = "an error the server did not expect (a bug: Litestar's close for an uncaught exception)"


def _close_codes(settings: Settings, stream: bool) -> dict[str, str]:
    """Every close code the server sends on this socket, with when."""
    key = "no, unknown or revoked API key (error 401 first; also a socket open when its key is revoked)"
    if stream:
        return {
            "1000": "after the terminal event; at once when `after` is at or past it",
            "1007": "a text frame that is not UTF-8",
            "1008": f"{key}; an unknown order or another client's (error 404, field orderId); `after` is not a seq "
                    "(error 422, field after)",
            "1009": f"a message over {MAX_FRAME_BYTES // 1024} KiB",
            "1011": "PostgreSQL or Redis unreachable when the socket opened (error 503 first); no answer to the "
                    "server's keepalive ping",
            "1012": "the server is shutting down",
            "4500": _UNEXPECTED,
        }
    return {
        "1000": f"idle: no message for {settings.ws_idle_timeout_s} s and no order in progress (error 408 first)",
        "1007": "a text frame that is not UTF-8",
        "1008": f"{key}; more than {settings.ws_max_sockets_per_client} open sockets of this client in this web "
                "process (error 429 first)",
        "1009": f"a message over {MAX_FRAME_BYTES // 1024} KiB",
        "1011": "PostgreSQL or Redis unreachable while the key was checked (error 503 first); no answer to the "
                "server's keepalive ping",
        "1012": "the server is shutting down",
        "4500": _UNEXPECTED,
    }


def _described(description: str, codes: dict[str, str]) -> str:
    return description + "\n\nClose codes:\n\n" + "\n".join(f"* `{code}`: {when}" for code, when in codes.items())


def _bindings(query: dict[str, Any]) -> dict[str, Any]:
    key = {"type": "string", "description": "the API key (or the X-API-Key header)"}
    return {"ws": {"method": "GET", "bindingVersion": "0.1.0",
                   "query": {"type": "object", "properties": {**query, API_KEY_QUERY: key}},
                   "headers": {"type": "object", "properties": {HEADER: {"type": "string",
                                                                         "description": "the API key"}}}}}


def _channels(settings: Settings) -> dict[str, Any]:
    execute = (
        "Send orders, cancels and subscribes as JSON text frames; receive the events of every order placed or "
        "subscribed to on this socket, "
        "until each one's terminal event. Several orders may share the socket. An order repeating a "
        "`clientOrderId` of this client gets the original order's events again from seq 1. A bad message gets an "
        "`error` and the socket stays usable: a binary frame (400), not JSON (400), a wrong field (422, naming it), "
        f"a message over {settings.ws_max_message_bytes} bytes (413), a rate or in-flight limit (429 with "
        "`retryAfter`), a `clientOrderId` reused for a different order (409), PostgreSQL or Redis down (503: that order was not "
        "taken). "
        "A cancel gets `cancelAck` (404: no such order of this "
        "client; 409: already triggered or finished); when the order is followed here its `cancelled` event comes "
        "too, in either order. An outage does not end an order's events: when PostgreSQL goes away while an "
        "order is followed, a `notice` naming it comes once, and its events resume, in seq order, none missing "
        "or repeated, once PostgreSQL and Redis are back. The server pings every 20 s (uvicorn's keepalive); WebSocket clients answer on their own.")
    stream = (
        "Replay then follow one order: the stored events with seq after `after` (default 0), then the live ones, "
        "in seq order, each once, until the terminal event (" + ", ".join(sorted(TERMINAL_STATUSES)) + "); then "
        "the server closes the socket. An outage of PostgreSQL or Redis midway does not end it: a `notice` "
        "when PostgreSQL goes away, then the events resume where they stopped. To resume after a lost connection, "
        "reconnect with `after` = the last seq received. What the client sends on this socket is ignored.")
    after = {"type": "string", "pattern": "^[0-9]+$", "default": "0",
             "description": f"the seq to start after: ASCII digits only, 0 to {MAX_SEQ}; anything else (a sign, a "
                            "space, a decimal point, other digits, empty, too large) gets an error 422 naming "
                            "`after`, then close 1008"}
    return {
        "execute": {
            "address": "/api/orders/execute", "title": "Place and cancel orders",
            "description": _described(execute, _close_codes(settings, stream=False)),
            "messages": {name: {"$ref": f"#/components/messages/{name}"}
                         for name in ("order", "cancel", "subscribe", "event", "notice", "error", "cancelAck")},
            "bindings": _bindings({}),
            "x-close-codes": _close_codes(settings, stream=False),
        },
        "stream": {
            "address": "/api/orders/{orderId}/stream", "title": "Follow one order",
            "description": _described(stream, _close_codes(settings, stream=True)),
            "parameters": {"orderId": {"description": "the order's id (one of this client's orders)"}},
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in ("event", "notice", "error")},
            "bindings": _bindings({"after": after}),
            "x-close-codes": _close_codes(settings, stream=True),
        },
    }


def _operation(action: str, channel: str, messages: tuple[str, ...], summary: str) -> dict[str, Any]:
    return {"action": action, "channel": {"$ref": f"#/channels/{channel}"}, "summary": summary,
            "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in messages]}


OPERATIONS = {
    "placeOrder": ("receive", "execute", ("order",), "A client places an order"),
    "cancelOrder": ("receive", "execute", ("cancel",), "A client cancels an order"),
    "subscribeToOrder": ("receive", "execute", ("subscribe",), "A client follows one of its orders from a seq"),
    "sendOrderEvents": ("send", "execute", ("event", "notice", "error", "cancelAck"),
                        "The events of the orders placed on this socket, outage notices, refusals, acks"),
    "sendStream": ("send", "stream", ("event", "notice", "error"),
                   "One order's events after `after`, to its terminal event (an outage notice midway)"),
}


def asyncapi_document(settings: Settings, title: str = "DEX order execution engine", version: str = "0.1.0",
                      host: str = DEFAULT_HOST) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the WebSockets, with this runtime's limits."""
    order, components = typed_schemas()
    schemas = {**components, **_event_schemas(components), "Error": ERROR, "Notice": NOTICE, "CancelAck": CANCEL_ACK}
    security = [{"$ref": "#/components/securitySchemes/apiKeyHeader"},
                {"$ref": "#/components/securitySchemes/apiKeyQuery"}]
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": f"{title}: WebSockets", "version": version,
            "description": (
                "The engine's WebSockets; the HTTP API is described by OpenAPI at /schema/openapi.json. Every "
                f"socket needs an API key: header `{HEADER}` or query `?{API_KEY_QUERY}=` (for browsers). The "
                "server accepts every handshake and refuses over the socket: an `error` message, then a close "
                "code. Frames are JSON text. Amounts are integers in base units; prices are decimal strings. "
                f"Limits: {settings.ws_max_message_bytes} bytes a message (larger: error 413; over "
                f"{MAX_FRAME_BYTES // 1024} KiB: close 1009), {settings.ws_max_sockets_per_client} open sockets "
                f"per client in each web process, an order socket idle for {settings.ws_idle_timeout_s} s with no "
                "order in progress is closed."),
        },
        "defaultContentType": "application/json",
        "servers": {"engine": {"host": "{host}", "protocol": "ws", "title": "The local runtime",
                               "variables": {"host": {"default": host, "description": "host:port of a web process"}},
                               "security": security}},
        "channels": _channels(settings),
        "operations": {name: _operation(*spec) for name, spec in OPERATIONS.items()},
        "components": {
            "schemas": schemas,
            "messages": _messages(order),
            "securitySchemes": {
                "apiKeyHeader": {"type": "httpApiKey", "name": HEADER, "in": "header",
                                 "description": "the API key in a header"},
                "apiKeyQuery": {"type": "httpApiKey", "name": API_KEY_QUERY, "in": "query",
                                "description": "the API key in the query (browsers cannot set headers on a socket)"},
            },
        },
    }


@get("/schema/asyncapi.json", include_in_schema=False, sync_to_thread=False)
def asyncapi_json(request: Request) -> dict[str, Any]:
    """The AsyncAPI document (no key needed, like /schema), its server's host the one asked."""
    config = request.app.openapi_config
    return asyncapi_document(request.app.state.services.settings, config.title, config.version,
                             request.headers.get("host", DEFAULT_HOST))
