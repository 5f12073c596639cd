"""The event envelope every client sees: {orderId, seq, status, ts, data}."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec


MAX_SEQ = 2**31 - 1
"""Sequence numbers are PostgreSQL integers."""


class Event(msgspec.Struct, frozen=True, rename="camel"):
    order_id: str
    seq: int
    status: str
    ts: str
    data: dict[str, Any]


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
