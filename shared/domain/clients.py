"""Who places orders and what they may do: an API client and its limits, an admission verdict."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ApiClient:
    client_id: str
    orders_per_minute: int | None = None
    """This client's own limits; None: the engine's defaults."""
    max_in_flight: int | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    reason: str | None = None
    """"rate" (orders per minute) or "in_flight"."""
    retry_after_s: int = 0
