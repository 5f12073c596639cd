"""Taking an order from a client: decode and validate it, run `intake` inline (so an
acknowledged order is a stored order), and hand the result to the next queue."""

from __future__ import annotations

import re
import uuid
from typing import Literal

import msgspec

from functions import trigger
from functions.chain import CHAIN
from shared.adapters.saq_queue import SaqQueues
from shared.context import Context
from shared.messages import NewOrder, OrderRequest
from shared.errors import FieldError

AUTO_KEY_PREFIX = "auto:"
"""Marks a submission key the engine made up because the client sent none."""
_decoder = msgspec.json.Decoder(OrderRequest)
_FIELD_PATTERNS = (
    re.compile(r"at `\$\.([A-Za-z0-9_]+)"),
    re.compile(r"field `([A-Za-z0-9_]+)`"),
)


class InputError(Exception):
    """What the client sent cannot become an order. `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, field: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def body(self) -> dict[str, str | None]:
        return {"error": self.message, "field": self.field}


def field_of(error: msgspec.ValidationError) -> str | None:
    """The request field a msgspec validation message is about, if it names one."""
    for pattern in _FIELD_PATTERNS:
        match = pattern.search(str(error))
        if match:
            return match.group(1)
    return None


def decode_body(raw: bytes | str, schema: type, decoder: msgspec.json.Decoder | None = None):
    """`raw` as `schema`, or an InputError: 400 if it is not JSON, 422 naming the field if it does not fit."""
    try:
        return (decoder or msgspec.json.Decoder(schema)).decode(raw)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: test it first
        raise InputError(422, str(exc), field_of(exc)) from None
    except msgspec.DecodeError as exc:
        raise InputError(400, f"body is not valid JSON: {exc}", None) from None


def decode_order(raw: bytes | str) -> OrderRequest:
    return decode_body(raw, OrderRequest, _decoder)


class CancelAction(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A WebSocket command: {"action": "cancel", "orderId": "…"}."""

    action: Literal["cancel"]
    order_id: str


def parse_order_id(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


class OrderDesk:
    def __init__(self, ctx: Context, queues: SaqQueues) -> None:
        self._ctx = ctx
        self._queues = queues

    async def submit(self, raw: bytes | str, client_id: str, idempotency_key: str | None = None) -> str:
        """Store the order and start its pipeline; returns the order id."""
        request = decode_order(raw)
        key = idempotency_key or request.client_order_id or f"{AUTO_KEY_PREFIX}{uuid.uuid4().hex}"
        message = NewOrder(request, client_id, key)
        step = CHAIN["intake"]
        try:
            result = await step.handle(message, self._ctx)
        except FieldError as exc:
            raise InputError(422, exc.message, exc.field) from None
        if result is None:
            existing = await self._ctx.orders.find_by_key(client_id, key)
            return existing.id
        await self._queues.send(result)
        return result.order_id

    async def cancel(self, order_id_text: str, client_id: str) -> str:
        """Cancel a pending or waiting order; returns its id. InputError 404 if the client has
        no such order, 409 (nothing changes) if it is already triggered or finished."""
        order_id = parse_order_id(order_id_text)
        order = None if order_id is None else await self._ctx.orders.get(order_id)
        if order is None or order.client_id != client_id:
            raise InputError(404, "order not found", "orderId")
        if await trigger.cancel(order_id, self._ctx) is None:
            current = (await self._ctx.orders.get(order_id)).status
            raise InputError(409, f"order is {current}: only pending or waiting orders can be cancelled", "orderId")
        return order_id
