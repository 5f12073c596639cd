"""What the OpenAPI document says beyond what Litestar infers: the error body every refusal has,
and the refusals each operation can give (one table, so every route documents them alike)."""

from __future__ import annotations

import msgspec
from litestar.openapi.datastructures import ResponseSpec


class ErrorBody(msgspec.Struct, frozen=True):
    """Every refusal's body: what is wrong, and the request field it is about (null when it is
    about no one field)."""

    error: str
    field: str | None = None


REFUSALS = {
    400: "the body is not JSON",
    401: "no API key, or an unknown or revoked one (`field`: X-API-Key)",
    404: "no such resource for this client",
    409: "a conflict with the resource's state or an earlier request",
    422: "a field is wrong: `field` names it",
    429: "over the client's rate or in-flight limit; `Retry-After` says when to retry",
    503: "Redis or PostgreSQL is unreachable; `Retry-After` says when to retry",
}
"""What each refusal status means, in the words every operation's documentation uses."""


def refusals(*statuses: int, **descriptions: str) -> dict[int, ResponseSpec]:
    """`responses=` for a route: each status with the error body; `descriptions` (e.g.
    `_409="..."`) override the general wording for this route."""
    return {status: ResponseSpec(ErrorBody, generate_examples=False,
                                 description=descriptions.get(f"_{status}", REFUSALS[status]))
            for status in statuses}
