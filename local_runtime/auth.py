"""Who is calling: API keys (header `X-API-Key`, or `?apiKey=` on WebSockets for browsers),
the development key the local runtime prints at start-up, and revocations reaching the open
sockets of a key.

A revoked key stops working in this process as soon as the revocation is heard on Redis
(`{namespace}:revoked-keys`, carrying the key's hash; the hub's one subscription delivers it):
the key leaves the cache, so HTTP answers 401, and every open socket of the key is refused
(`KeySessions`). If the subscription was lost for a while, the messages sent meanwhile are lost
too: once it is back, the whole cache is dropped and every open socket's key is read again from
PostgreSQL. And a revocation that could not be announced at all (Redis unreachable from where it
was made) still takes effect within CACHE_TTL_S: cached keys expire, and the open sockets' keys
are re-read from PostgreSQL that often (one query per process, whatever the number of sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from redis.asyncio import Redis

from local_runtime.hub import EventHub
from shared.adapters.postgres.api_keys import CACHE_TTL_S, PgApiKeys, hash_key, is_key_hash, new_key, revoked_keys_channel
from functions.desk import authenticate
from shared.settings import Settings

API_KEY_HEADER = "x-api-key"
API_KEY_QUERY = "apiKey"
DEV_CLIENT = "dev"
DEV_KEY_LABEL = "development key"
DEV_KEY_FILE = Path(__file__).resolve().parent.parent / ".dev-api-key"
"""Where `python3 dev.py start` leaves the development key for the demo and the load tools (git-ignored)."""
RESYNC_RETRY_S = 1.0
log = logging.getLogger("engine.auth")


def presented_key(connection: ASGIConnection) -> str | None:
    return connection.headers.get(API_KEY_HEADER) or connection.query_params.get(API_KEY_QUERY)


async def api_key_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """HTTP guard: authenticates the caller and leaves the client in `connection.state.client`."""
    connection.state.client = await authenticate(connection.app.state.api_keys, presented_key(connection))


async def register_dev_key(keys: PgApiKeys, settings: Settings) -> str:
    """Register the development key (DEX_DEV_API_KEY, or a new one) for client "dev", then revoke
    every other development key made before it: one start, one development key. Returns it.
    Keys the dev client made itself (POST /api/keys, other labels) are not touched."""
    key, now = settings.dev_api_key or new_key(), datetime.now(UTC)
    await keys.register(key, DEV_CLIENT, now, label=DEV_KEY_LABEL)
    current = hash_key(key)
    for record in await keys.keys_of(DEV_CLIENT):
        # Made before this start only: of two processes starting together, the later one's key stays.
        if (record.label == DEV_KEY_LABEL and record.revoked_at is None and record.key_id != current
                and record.created_at < now):
            await keys.revoke_id(record.key_id, now, DEV_CLIENT)
    return key


def leave_dev_key(path: Path, key: str) -> None:
    """Write the development key where the demo, the load tools and the `dex` client look
    (`python3 dev.py start` asks for `.dev-api-key`), readable by this user only."""
    path.touch(mode=0o600)
    path.write_text(key + "\n")


def local_api_key() -> str:
    """The key a local tool should use: $DEX_API_KEY, else the one the runtime left at start-up."""
    key = os.environ.get("DEX_API_KEY") or os.environ.get("DEX_DEV_API_KEY")
    if key:
        return key
    try:
        return DEV_KEY_FILE.read_text().strip()
    except FileNotFoundError:
        raise SystemExit("no API key: start the runtime first (it writes .dev-api-key) or set DEX_API_KEY") from None


class KeySession:
    """One open socket's hold on the key it presented; `revoked` once that key is."""

    __slots__ = ("digest", "revoked", "_signal")

    def __init__(self, digest: str) -> None:
        self.digest = digest
        self.revoked = False
        self._signal = asyncio.Event()

    def revoke(self) -> None:
        self.revoked = True
        self._signal.set()

    async def wait_revoked(self) -> None:
        await self._signal.wait()


class KeySessions:
    """This process's open sockets by key hash, so that a revocation reaches them."""

    def __init__(self) -> None:
        self._open: dict[str, set[KeySession]] = {}

    @contextlib.contextmanager
    def hold(self, key: str | None) -> Iterator[KeySession]:
        """A session for the socket's key, registered before the key is checked (so a revocation
        racing the check still reaches it), until the socket ends."""
        session = KeySession(hash_key(key or ""))
        self._open.setdefault(session.digest, set()).add(session)
        try:
            yield session
        finally:
            sessions = self._open.get(session.digest)
            if sessions is not None:
                sessions.discard(session)
                if not sessions:
                    del self._open[session.digest]

    def revoke(self, digest: str) -> int:
        """Revoke every open session of this key hash; how many there were."""
        sessions = self._open.get(digest, ())
        for session in sessions:
            session.revoke()
        return len(sessions)

    def digests(self) -> list[str]:
        return list(self._open)


class Revocations:
    """Applies revocations heard on Redis to this process: the key cache and the open sockets."""

    def __init__(self, keys: PgApiKeys, sessions: KeySessions, sweep_interval_s: float = CACHE_TTL_S) -> None:
        self._keys = keys
        self._sessions = sessions
        self._sweep_interval_s = sweep_interval_s
        self._recheck: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None

    def start(self) -> None:
        """Re-read the open sockets' keys every `sweep_interval_s` (for revocations never announced)."""
        self._sweeper = asyncio.create_task(self._sweep(), name="revocations-sweep")

    def heard(self, payload: bytes) -> None:
        """A message on `{namespace}:revoked-keys`: the revoked key's hash."""
        digest = payload.decode(errors="replace")
        if not is_key_hash(digest):
            log.warning("ignored a revocation that is not a key hash")
            return
        self._keys.forget(digest)
        refused = self._sessions.revoke(digest)
        log.info("key %s… revoked: %d open socket(s) refused", digest[:12], refused)

    def resubscribed(self) -> None:
        """The subscription was lost and is back: revocations sent meanwhile may be lost. Drop every
        cached key (the next request reads PostgreSQL) and re-check the open sockets' keys."""
        self._keys.forget_all()
        if self._recheck is not None:
            self._recheck.cancel()
        self._recheck = asyncio.create_task(self._recheck_open_sockets(), name="revocations-recheck")

    async def _recheck_open_sockets(self) -> None:
        while not await self._refuse_revoked_sockets():  # PostgreSQL unreachable: again until it answers
            await asyncio.sleep(RESYNC_RETRY_S)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            await self._refuse_revoked_sockets()

    async def _refuse_revoked_sockets(self) -> bool:
        """Read every open socket's key in PostgreSQL and refuse those revoked; False if it could not."""
        try:
            revoked = await self._keys.revoked_among(self._sessions.digests())
        except Exception as exc:
            log.warning("re-checking the open sockets' keys failed (%s)", type(exc).__name__)
            return False
        refused = sum(self._sessions.revoke(digest) for digest in revoked)
        if refused:
            log.info("%d open socket(s) of revoked keys refused (found in PostgreSQL)", refused)
        return True

    async def stop(self) -> None:
        for task in (self._recheck, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


@dataclass
class KeyWatch:
    """This process's view of API keys: the key cache, the open sockets by key, and the one Redis
    subscription (the event hub's) that brings revocations to both."""

    keys: PgApiKeys
    sessions: KeySessions
    revocations: Revocations
    hub: EventHub

    @classmethod
    async def start(cls, keys: PgApiKeys, redis: Redis, namespace: str, home: str) -> KeyWatch:
        """`keys`: the process's key store (the composition root's); `home`: this process's mark in
        the ids of the orders it takes (its event channels)."""
        sessions = KeySessions()
        revocations = Revocations(keys, sessions)
        hub = EventHub(redis, namespace, home, channels={revoked_keys_channel(namespace): revocations.heard},
                       on_resubscribed=revocations.resubscribed)
        await hub.start()
        revocations.start()
        return cls(keys, sessions, revocations, hub)

    async def stop(self) -> None:
        await self.hub.stop()
        await self.revocations.stop()
