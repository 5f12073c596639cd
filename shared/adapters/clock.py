"""The real clock and the ids new orders get (time-ordered, marked with this process's home)."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class TimeOrderedIds:
    """UUIDs whose first 48 bits are the millisecond time (as UUIDv7): new orders land at the
    right end of the primary-key index instead of all over it. Bytes 10–11 are this process's
    `home` (random per process): an order's events go to a channel under its home's prefix, so
    each web process receives the events of the orders it took, not every process's."""

    def __init__(self, home: bytes | None = None) -> None:
        self._home = home or os.urandom(2)
        self.home = self._home.hex()

    def order_id(self) -> str:
        millis = time.time_ns() // 1_000_000
        raw = bytearray(millis.to_bytes(6, "big") + os.urandom(4) + self._home + os.urandom(4))
        raw[6] = (raw[6] & 0x0F) | 0x70
        raw[8] = (raw[8] & 0x3F) | 0x80
        return str(uuid.UUID(bytes=bytes(raw)))
