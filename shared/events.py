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


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_event(raw: bytes | str) -> Event:
    return _decoder.decode(raw)
