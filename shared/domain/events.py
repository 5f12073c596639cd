"""The event envelope every client sees: {orderId, seq, status, ts, data}."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from shared.domain.errors import InputError
from shared.domain.states import Status


MAX_SEQ = 2**31 - 1
"""Sequence numbers are PostgreSQL integers."""
_ASCII_DIGITS = re.compile(r"[0-9]+")
_MAX_SEQ_DIGITS = len(str(MAX_SEQ))


def parse_after(text: str | None) -> int:
    """`?after=N`, the seq a client starts after, as every transport reads it (HTTP /events, the
    /stream socket, the cloud HTTP function): ASCII digits only, 0..MAX_SEQ; absent means 0.
    Anything else (other Unicode digits such as `²` or `٣`, a sign, a space, a decimal point, an
    empty value, a number past MAX_SEQ) is `InputError(422, …, "after")`."""

    if text is None:
        return 0
    if _ASCII_DIGITS.fullmatch(text):
        significant = text.lstrip("0") or "0"
        if len(significant) <= _MAX_SEQ_DIGITS and int(significant) <= MAX_SEQ:  # no int() of a huge string
            return int(significant)
    raise InputError(422, f"after must be a seq: a whole number from 0 to {MAX_SEQ} in ASCII digits", "after")


class Event(msgspec.Struct, frozen=True, rename="camel"):
    """One status change of an order, as stored and as every client receives it."""

    order_id: Annotated[str, msgspec.Meta(description="the order's id (a UUID)")]
    seq: Annotated[int, msgspec.Meta(description="1, 2, 3 ... per order, without gaps: a gap means a missed event")]
    status: Status
    """The order's status from this event on."""
    ts: Annotated[str, msgspec.Meta(description="when it happened: ISO 8601 in UTC, milliseconds",
                                    examples=["2026-11-25T10:00:00.123Z"])]
    data: Annotated[dict[str, Any], msgspec.Meta(
        description="what this step found or did: the validated order (`pending`), every venue's quote "
                    "(`routing`), the routing decision (`routed`), the transactions (`building`, `submitted`), "
                    "the fill or the failure (`confirmed`, `partially_filled`, `failed`), the trigger "
                    "(`triggered`) or the reason (`waiting`, `cancelled`, `expired`)")]


def format_ts(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds: 2026-11-25T10:00:00.123Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RelayedEvent(msgspec.Struct, frozen=True, rename="camel"):
    """An event passed on as received: the same envelope, its `data` kept as the JSON it came
    in (a process that only forwards events never parses or re-encodes their payloads)."""

    order_id: str
    seq: int
    status: str
    ts: str
    data: msgspec.Raw


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)
_relay_decoder = msgspec.json.Decoder(RelayedEvent)


def encode_event(event: Event | RelayedEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(raw: bytes | str) -> Event:
    return _decoder.decode(raw)


def decode_for_relay(raw: bytes | str) -> RelayedEvent:
    return _relay_decoder.decode(raw)
