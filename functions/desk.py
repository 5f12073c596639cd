"""Taking an order from a client, whatever the transport (local HTTP/WebSocket, a cloud HTTP
function): authenticate, decode and validate, idempotency, admission, `intake` inline (so an
acknowledged order is a stored order), and the hand-off to the next queue."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from dataclasses import dataclass
from typing import Literal

import msgspec

from functions import trigger
from functions.intake import order_assets, read_order
from functions.pipeline import PIPELINE
from shared.context import Context
from shared.domain.clients import ApiClient
from shared.domain.errors import FieldError, InputError
from shared.domain.messages import PRINTABLE_KEY, NewOrder, OrderRequest, QuoteOrder
from shared.domain.orders import AUTO_KEY_PREFIX
from shared.ports import ApiKeys, ClientLimits, Queues

_decoder = msgspec.json.Decoder(OrderRequest)
_quote_decoder = msgspec.json.Decoder(QuoteOrder)
_KEY_PATTERN = re.compile(PRINTABLE_KEY)
_REFUSALS = {
    "rate": "too many orders: over this client's orders per minute",
    "in_flight": "too many orders in flight: wait for one to finish",
}
_PATH = re.compile(r"at `\$\.([A-Za-z0-9_.\[\]]+)`")
_NAMED = re.compile(r"field `([A-Za-z0-9_]+)`")


def field_of(error: msgspec.ValidationError) -> str | None:
    """The request field a msgspec validation message is about, as a path from the body's top
    (`amount`, `quoteResponse.routePlan[0].swapInfo.ammKey`), if it names one."""
    text = str(error)
    path, named = _PATH.search(text), _NAMED.search(text)
    parts = [match.group(1) for match in (path, named) if match]
    return ".".join(parts) or None


def decode_body(raw: bytes | str, schema: type, decoder: msgspec.json.Decoder | None = None):
    """`raw` as `schema`, or an InputError: 400 if it is not JSON, 422 naming the field if it does not fit."""
    try:
        return (decoder or msgspec.json.Decoder(schema)).decode(raw)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: test it first
        raise InputError(422, str(exc), field_of(exc)) from None
    except msgspec.DecodeError as exc:
        raise InputError(400, f"body is not valid JSON: {exc}", None) from None
    except RecursionError:
        raise InputError(400, "body is nested too deeply", None) from None


class _QuoteProbe(msgspec.Struct):
    quote_response: msgspec.Raw = msgspec.field(default=msgspec.Raw(), name="quoteResponse")


_probe = msgspec.json.Decoder(_QuoteProbe)


def _is_quote(raw: bytes | str) -> bool:
    """Whether the body is a quote to execute (a top-level `quoteResponse`), not an order."""
    if ("quoteResponse" if isinstance(raw, str) else b"quoteResponse") not in raw:
        return False  # the common case, without a second parse
    try:
        return len(_probe.decode(raw).quote_response) > 0
    except (msgspec.DecodeError, RecursionError):
        return False  # the order decoder reports what is wrong with it


def decode_order(raw: bytes | str) -> OrderRequest | QuoteOrder:
    """An order, or a quote to execute (Jupiter's swap body: `{"quoteResponse": …}`)."""
    if _is_quote(raw):
        return decode_body(raw, QuoteOrder, _quote_decoder)
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


@dataclass(frozen=True, slots=True)
class _Proposed:
    """Ids for one submission: intake takes this id only if it creates the order, so a
    different id back means another request with the same key made it."""

    order_id_value: str

    def order_id(self) -> str:
        return self.order_id_value


@dataclass(frozen=True, slots=True)
class Submitted:
    order_id: str
    status: str
    repeat: bool = False
    """True when the idempotency key named an order this client already placed: nothing new was made."""


class OrderDesk:
    def __init__(self, ctx: Context, queues: Queues, limits: ClientLimits) -> None:
        self._ctx = ctx
        self._queues = queues
        self._limits = limits

    async def submit(
        self, raw: bytes | str, client: ApiClient, idempotency_key: str | None = None, order_id: str | None = None,
    ) -> Submitted:
        """Store the order and start its pipeline. A repeat of an idempotency key (header or
        clientOrderId) returns the original order; the same key with another order is a 409.
        Over the client's rate or in-flight limit: 429 with a retry delay. `order_id` is the id
        a new order gets (a socket subscribes to it before submitting); default: a new one."""
        request = decode_order(raw)
        if idempotency_key is not None and not _KEY_PATTERN.fullmatch(idempotency_key):
            raise InputError(422, "Idempotency-Key must be 1 to 128 printable characters", "Idempotency-Key")
        explicit = idempotency_key or request.client_order_id
        key = explicit or f"{AUTO_KEY_PREFIX}{uuid.uuid4().hex}"
        await self._ctx.tokens.ensure(*order_assets(request))
        try:  # the parsed order's fingerprint: equivalent requests are the same order
            terms = read_order(request, self._ctx.tokens, self._ctx.settings)
            digest = terms.fingerprint()
        except FieldError as exc:
            raise InputError(422, exc.message, exc.field) from None
        if explicit is not None:
            repeat = await self._repeat(client.client_id, key, digest, idempotency_key is not None)
            if repeat is not None:
                return repeat
        settings = self._ctx.settings
        proposed = order_id or self._ctx.ids.order_id()  # the id this submission gives a new order
        admission = await self._limits.admit(
            client.client_id, client.orders_per_minute or settings.orders_per_minute,
            client.max_in_flight or settings.max_in_flight, proposed,
        )
        if not admission.admitted:
            self._ctx.metrics.refused(admission.reason)
            raise InputError(429, _REFUSALS[admission.reason], None, retry_after_s=admission.retry_after_s)
        ctx = dataclasses.replace(self._ctx, ids=_Proposed(proposed))
        started = time.perf_counter()
        try:
            result = await PIPELINE["intake"].handle(NewOrder(request, client.client_id, key, digest), ctx)
        except FieldError as exc:
            await self._limits.release(client.client_id, proposed)
            raise InputError(422, exc.message, exc.field) from None
        except BaseException:
            await self._limits.release(client.client_id, proposed)
            raise
        if result is None or result.order_id != proposed:  # the same key raced in: that request owns the order
            await self._limits.release(client.client_id, proposed)
            repeat = await self._repeat(client.client_id, key, digest, idempotency_key is not None)
            if repeat is None:
                raise InputError(409, "a submission with this key is in progress: retry shortly", None)
            return repeat
        ctx.metrics.step_took("intake", time.perf_counter() - started)
        ctx.metrics.order_taken(terms.kind)
        try:  # the order is stored, so it is acknowledged whatever Redis does now
            await self._queues.send(result)
        except Exception as exc:  # the reconciler moves it on when Redis is back
            self._ctx.log.warning("order %s stored but not queued (%s); the reconciler will re-drive it",
                                  result.order_id, exc, extra={"order_id": result.order_id})
        return Submitted(result.order_id, "pending")

    async def _repeat(self, client_id: str, key: str, digest: str, from_header: bool) -> Submitted | None:
        existing = await self._ctx.orders.find_by_key(client_id, key)
        if existing is None:
            return None
        if existing.request_hash is not None and existing.request_hash != digest:
            field = "Idempotency-Key" if from_header else "clientOrderId"
            raise InputError(409, f"{field} {key[:64]!r} was already used for a different order", field)
        return Submitted(existing.id, existing.status.value, repeat=True)

    async def owned(self, order_id_text: str, client_id: str):
        """The client's order with this id, or InputError 404 (also for other clients' orders:
        whether an id exists is nobody else's business)."""
        order_id = parse_order_id(order_id_text)
        order = None if order_id is None else await self._ctx.orders.get(order_id)
        if order is None or order.client_id != client_id:
            raise InputError(404, "order not found", "orderId")
        return order

    async def cancel(self, order_id_text: str, client_id: str) -> str:
        """Cancel a pending or waiting order; returns its id. InputError 404 if the client has
        no such order, 409 (nothing changes) if it is already triggered or finished."""
        order_id = (await self.owned(order_id_text, client_id)).id
        if await trigger.cancel(order_id, self._ctx) is None:
            current = (await self._ctx.orders.get(order_id)).status
            raise InputError(409, f"order is {current}: only pending or waiting orders can be cancelled", "orderId")
        return order_id


async def authenticate(keys: ApiKeys, key: str | None) -> ApiClient:
    """The client the key belongs to, or InputError 401 naming the header."""
    if not key:
        raise InputError(401, "an API key is required: send it in the X-API-Key header (or ?apiKey=)", "X-API-Key")
    client = await keys.client(key) if len(key) <= 128 else None
    if client is None:
        raise InputError(401, "unknown or revoked API key", "X-API-Key")
    return client
