"""The HTTP answer when Redis or PostgreSQL is down (see shared/outages.py)."""

from __future__ import annotations

from litestar import Request, Response

from shared.adapters.outages import unavailable_message


def service_unavailable(_: Request, exc: Exception) -> Response:
    return Response({"error": unavailable_message(exc), "field": None}, status_code=503, headers={"Retry-After": "1"})
