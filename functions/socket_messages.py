"""The order socket's messages, whatever carries them (the local runtime's WebSocket, API Gateway's
WebSocket routes): what a client's message asks for, and the frames that answer it.

A message is an order (the same JSON as POST /api/orders/execute), or a command with a top-level
"action": `{"action":"cancel","orderId"}` or `{"action":"subscribe","orderId","after"}` (follow one
of the client's orders from seq `after`: API Gateway has no stream socket, and the local order
socket takes it too, so a client cannot tell the two apart). Refusals are error frames
`{"type":"error","error","field","status"}` (+ `retryAfter` on a 429), the same text on every side.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from functions.desk import CancelAction, decode_body
from shared.domain.errors import InputError
from shared.domain.events import parse_after

REVOKED_MESSAGE = "API key revoked"
BINARY_MESSAGE = "send orders as text frames of JSON"
_encoder = msgspec.json.Encoder()


class SubscribeAction(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """{"action": "subscribe", "orderId": "…", "after": N}: the order's stored events after seq N
    (default 0), then its live ones. `after` as a number or as the digits `?after=` takes."""

    action: Literal["subscribe"]
    order_id: str
    after: int | str = 0

    def after_seq(self) -> int:
        """`after` read as every transport reads it (InputError 422 naming `after` otherwise)."""
        return parse_after(str(self.after))


_cancel_decoder = msgspec.json.Decoder(CancelAction)
_subscribe_decoder = msgspec.json.Decoder(SubscribeAction)


class _ActionProbe(msgspec.Struct):
    action: Any = None


_probe = msgspec.json.Decoder(_ActionProbe)


def _action_of(text: str) -> Any:
    """The message's top-level "action" (None: an order, or not JSON at all)."""
    try:
        return _probe.decode(text).action
    except (msgspec.DecodeError, RecursionError):
        return None  # the order decoder reports what is wrong with it


def read_message(text: str | None, max_bytes: int, subscribe: bool = False) -> str | CancelAction | SubscribeAction:
    """What a client's message asks for: a command, or the order's text to submit. InputError
    400 for a binary frame (`text` None), 413 past `max_bytes`, 400/422 for a malformed command.
    `subscribe`: the transport takes subscribe commands; elsewhere one is refused like any
    command other than cancel."""
    if text is None:
        raise InputError(400, BINARY_MESSAGE, None)
    if len(text) > max_bytes or (len(text) * 4 > max_bytes and len(text.encode()) > max_bytes):
        raise InputError(413, f"message too large: at most {max_bytes} bytes", None)
    if '"action"' not in text:
        return text
    action = _action_of(text)
    if action is None:
        return text
    if subscribe and action == "subscribe":
        return decode_body(text, SubscribeAction, _subscribe_decoder)
    return decode_body(text, CancelAction, _cancel_decoder)


def error_frame(message: str, field: str | None, **extra: Any) -> bytes:
    return _encoder.encode({"type": "error", "error": message, "field": field, **extra})


def refusal(exc: InputError) -> bytes:
    """The error frame answering a refused message (with `retryAfter` when there is one)."""
    retry = {} if exc.retry_after_s is None else {"retryAfter": exc.retry_after_s}
    return error_frame(exc.message, exc.field, status=exc.status, **retry)


def cancelled_frame(order_id: str) -> bytes:
    return _encoder.encode({"type": "cancelled", "orderId": order_id})
