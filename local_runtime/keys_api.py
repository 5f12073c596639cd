"""HTTP routes for a client's own API keys: make one (shown once), list them, revoke one. Behind the
API-key guard: the caller's key says whose keys these are (functions/keys.py holds the rules)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Request, delete, get, post
from litestar.datastructures import State

from functions import keys
from local_runtime.auth import presented_key
from local_runtime.openapi import json_body, refusals
from shared.adapters.postgres.api_keys import hash_key
from shared.domain.events import format_ts
from shared.ports import KeyRecord


def _doc(kind: type, description: str):
    return Annotated[kind, msgspec.Meta(description=description)]


KeyId = _doc(str, "the key's SHA-256 in hex: what is stored, safe to show")
PerMinute = _doc(int, "orders per minute this key may place (its own limit, or the engine's default)")
InFlight = _doc(int, "orders this key may have in flight (its own limit, or the engine's default)")
Moment = _doc(str, "ISO 8601, UTC, milliseconds")


class KeyView(msgspec.Struct, rename="camel", frozen=True):
    """A key as its client sees it, never the key itself."""

    key_id: KeyId
    label: str
    orders_per_minute: PerMinute
    max_in_flight: InFlight
    created_at: Moment
    revoked_at: _doc(str | None, "when it was revoked; null while it works")
    current: _doc(bool, "it is the key this request was made with")


class KeyList(msgspec.Struct, rename="camel", frozen=True):
    keys: _doc(list[KeyView], "every active key, then the most recently revoked, newest first")


class CreatedKey(msgspec.Struct, rename="camel", frozen=True):
    api_key: _doc(str, "the key itself: shown this once, stored only as its SHA-256 (keyId)")
    key_id: KeyId
    client_id: _doc(str, "the client the key acts as: the calling key's")
    label: str
    orders_per_minute: PerMinute
    max_in_flight: InFlight
    created_at: Moment


class RevokedKey(msgspec.Struct, rename="camel", frozen=True):
    key_id: KeyId
    revoked: _doc(bool, "always true: the key no longer works (it may have been revoked before)")
    revoked_at: Moment
    announced: _doc(bool, "every web process was told at once over Redis; false: Redis was unreachable, and"
                          " the key is refused within the key cache's TTL instead")


def _view(record: KeyRecord, state: State, current_id: str) -> KeyView:
    limits = keys.Limits.of(record, state.services.ctx.settings)
    return KeyView(record.key_id, record.label, limits.orders_per_minute, limits.max_in_flight,
                   format_ts(record.created_at), None if record.revoked_at is None else format_ts(record.revoked_at),
                   record.key_id == current_id)


@post("/api/keys", status_code=201, summary="Make an API key for this client (the key is shown once)",
      dto=json_body(keys.KeyRequest), return_dto=None, responses=refusals(400, 401, 409, 422, 503, _409="this client has as many active keys as it may hold"))
async def create_key(request: Request, state: State, data: bytes = b"") -> CreatedKey:
    """Body (every field optional): `{"label": "…", "ordersPerMinute": N, "maxInFlight": N}`. The key
    belongs to the caller's client; its limits may not exceed the calling key's (those it has, or
    the engine's defaults): over them, 422 naming the field. A limit left out is the calling key's.
    201 with the key (`apiKey`, shown only this once) and its `keyId` (its SHA-256, what is stored)."""
    body = keys.read_key_request(data)
    made = await keys.create_key(state.services.keys, request.state.client, body, state.services.ctx.settings,
                                 state.services.ctx.clock.now())
    record, limits = made.record, keys.Limits.of(made.record, state.services.ctx.settings)
    return CreatedKey(made.key, record.key_id, record.client_id, record.label, limits.orders_per_minute,
                      limits.max_in_flight, format_ts(record.created_at))


@get("/api/keys", summary="This client's API keys (never the keys themselves)", responses=refusals(401, 503))
async def list_keys(request: Request, state: State) -> KeyList:
    """Every active key of the caller's client and the most recently revoked ones, newest first;
    `current` marks the key this request was made with."""
    current = hash_key(presented_key(request) or "")
    records = await keys.client_keys(state.services.keys, request.state.client)
    return KeyList([_view(record, state, current) for record in records])


@delete("/api/keys/{key_id:str}", status_code=200, summary="Revoke one of this client's API keys",
        responses=refusals(401, 404, 503, _404="no key with this id for this client"))
async def revoke_key(key_id: str, request: Request, state: State) -> RevokedKey:
    """Every web process refuses the key within a second (HTTP 401; its open sockets get the error
    and close 1008). The key this request is made with may be revoked too: this answer is its last.
    Revoking a revoked key again answers the same (and announces it again). 404 for an unknown key
    and for another client's alike."""
    done = await keys.revoke_key(state.services.keys, request.state.client, key_id, state.services.ctx.clock.now())
    return RevokedKey(key_id.lower(), True, format_ts(done.revoked_at), done.announced)


KEY_ROUTES = [create_key, list_keys, revoke_key]
"""Behind the API-key guard."""
