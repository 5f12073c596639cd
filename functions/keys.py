"""A client managing its own API keys: make one no stronger than the key asking, list them, revoke
one. Another client's key is exactly as unknown as a key that does not exist."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec

from functions.desk import decode_body
from shared.domain.clients import ApiClient
from shared.domain.errors import FieldError, InputError
from shared.ports import ApiKeys, KeyRecord, Revocation
from shared.settings import Settings

MAX_ACTIVE_KEYS = 100
"""Active keys a client may hold at once (revoke one to make another)."""
LABEL_CHARS = 64
_LABEL = re.compile(r"[^\x00-\x1f\x7f]*")
_KEY_ID = re.compile(r"[0-9a-f]{64}")
Limit = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]


class KeyRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """The body of POST /api/keys. A limit left out is the asking key's own."""

    label: str = ""
    orders_per_minute: Limit | None = None
    max_in_flight: Limit | None = None


_decoder = msgspec.json.Decoder(KeyRequest)


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits that apply to a key: its own, or the engine's defaults where it has none."""

    orders_per_minute: int
    max_in_flight: int

    @classmethod
    def of(cls, key: ApiClient | KeyRecord, settings: Settings) -> Limits:
        return cls(key.orders_per_minute or settings.orders_per_minute, key.max_in_flight or settings.max_in_flight)


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str
    """The key itself: shown once, never stored."""
    record: KeyRecord


def read_key_request(raw: bytes) -> KeyRequest:
    """The body (empty: every default), or InputError 400/422 naming the field."""
    request = decode_body(raw if raw.strip() else b"{}", KeyRequest, _decoder)
    if len(request.label) > LABEL_CHARS or not _LABEL.fullmatch(request.label):
        raise FieldError("label", f"label must be at most {LABEL_CHARS} characters, none of them a control character")
    return request


async def create_key(keys: ApiKeys, caller: ApiClient, request: KeyRequest, settings: Settings,
                     now: datetime) -> NewKey:
    """A new key for the caller's own client. Its limits may not exceed the caller's (422 naming the
    field); one left out is the caller's, so a key never makes a stronger one. 409 at MAX_ACTIVE_KEYS."""
    cap = Limits.of(caller, settings)
    for field, asked, allowed in (("ordersPerMinute", request.orders_per_minute, cap.orders_per_minute),
                                  ("maxInFlight", request.max_in_flight, cap.max_in_flight)):
        if asked is not None and asked > allowed:
            raise FieldError(field, f"{field} may be at most {allowed}: the limit of the key asking")
    per_minute = caller.orders_per_minute if request.orders_per_minute is None else request.orders_per_minute
    in_flight = caller.max_in_flight if request.max_in_flight is None else request.max_in_flight
    issued = await keys.issue(caller.client_id, now, label=request.label, orders_per_minute=per_minute,
                              max_in_flight=in_flight, max_active=MAX_ACTIVE_KEYS)
    if issued is None:
        raise InputError(409, f"this client already has {MAX_ACTIVE_KEYS} active keys: revoke one first", None)
    return NewKey(*issued)


async def client_keys(keys: ApiKeys, caller: ApiClient) -> list[KeyRecord]:
    return await keys.keys_of(caller.client_id)


async def revoke_key(keys: ApiKeys, caller: ApiClient, key_id: str, now: datetime) -> Revocation:
    """Revoke one of the caller's client's keys (the caller's own included: it answers, then it is
    dead). 404 for an unknown key and for another client's alike."""
    digest = key_id.lower()
    revocation = await keys.revoke_id(digest, now, client_id=caller.client_id) if _KEY_ID.fullmatch(digest) else None
    if revocation is None or not revocation.known:
        raise InputError(404, "key not found", "keyId")
    return revocation
