"""WebSocket routes: submit orders and watch them on one socket, or follow an existing order.

One writer task owns `send`, fed by a bounded queue; the reader loop runs in the
handler. Bad messages get an `error` message and the socket stays usable.

An accepted order's events outlast an outage: its stream waits for PostgreSQL (a `notice`, once)
and goes on from the last seq sent. "Nothing was accepted" is said only of a submission refused.

Each socket holds a `KeySession` for its key: when the key is revoked (heard on Redis, see
local_runtime/auth.py), a guard task sends the 401 error, closes the socket with 1008 and ends
it; the reader also checks the session right before each submit or cancel, so a message racing
the revocation is not taken.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from functions.bootstrap import Services
from functions.desk import CancelAction, OrderDesk, Submitted, authenticate
from functions.socket_messages import (
    REVOKED_MESSAGE,
    SubscribeAction,
    cancelled_frame,
    error_frame,
    read_message,
    refusal,
)
from local_runtime.auth import KeySession, KeySessions, presented_key
from local_runtime.hub import EventHub, Subscription
from local_runtime.streaming import follow_order
from shared.adapters.outages import SERVICE_ERRORS, service_name, unavailable_message
from shared.domain.clients import ApiClient
from shared.domain.errors import InputError
from shared.domain.events import Event, RelayedEvent, encode_event, parse_after

OUTBOX_SIZE = 1024
REVOKED_DRAIN_S = 1.0
"""How long a revoked socket's last message may take to go out before the socket is closed anyway."""
_encoder = msgspec.json.Encoder()


def outage_notice(order_id: str, exc: BaseException) -> bytes:
    """A followed order's stream is waiting for PostgreSQL: not an error, and not the end of it."""
    return _encoder.encode({"type": "notice", "orderId": order_id, "error": (
        f"{service_name(exc)} is unavailable ({type(exc).__name__}); still following, events will resume")})


def cannot_open_stream(exc: BaseException) -> bytes:
    """An outage met while a stream opens: say so without a word about whether the order was taken."""
    return error_frame(f"{service_name(exc)} is unavailable ({type(exc).__name__}); cannot open the stream now, "
                       "retry shortly", None, status=503)


class Outbox:
    """The socket's only writer."""

    def __init__(self, socket: WebSocket) -> None:
        self._socket = socket
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(OUTBOX_SIZE)
        self._sealed = False

    async def put(self, frame: bytes) -> None:
        if not self._sealed:
            await self._queue.put(frame)

    async def deliver(self, event: Event | RelayedEvent) -> None:
        if not self._sealed:
            await self._queue.put(encode_event(event))

    def deliver_now(self, event: Event | RelayedEvent) -> bool:
        """Queue the event without waiting; False if the outbox is full."""
        if self._sealed:
            return True  # dropped: the socket is closing
        if self._queue.full():
            return False
        self._queue.put_nowait(encode_event(event))
        return True

    def seal(self, frame: bytes) -> None:
        """`frame` is the last thing this socket sends: what is still queued, and anything offered
        later, is dropped."""
        self._sealed = True
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
        self._queue.put_nowait(frame)

    async def run(self) -> None:
        while True:
            frame = await self._queue.get()
            await self._socket.send_text(frame.decode())
            self._queue.task_done()

    async def drain(self) -> None:
        """Wait until everything put so far has been sent."""
        await self._queue.join()


async def _read_text(socket: WebSocket) -> str | None:
    """The next text frame; None for a binary frame (which this protocol does not use)."""
    message = await socket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(detail="client went away", code=message.get("code", 1000))
    return message.get("text")


async def _authenticated(socket: WebSocket, session: KeySession, route: str) -> ApiClient | None:
    """The socket's client; on a bad key an error message, close 1008, and None."""
    try:
        client = await authenticate(socket.app.state.api_keys, presented_key(socket))
        if session.revoked:  # revoked while it was being looked up
            raise InputError(401, REVOKED_MESSAGE, "X-API-Key")
    except InputError as exc:
        await socket.send_text(refusal(exc).decode())
        await socket.close(code=1008)
        return None
    except SERVICE_ERRORS as exc:
        refused = error_frame(unavailable_message(exc), None, status=503) if route == "execute" \
            else cannot_open_stream(exc)
        await socket.send_text(refused.decode())
        await socket.close(code=1011)
        return None
    return client


class _Revoked(Exception):
    """Ends a socket whose key was revoked (it has been told, and closed)."""


async def _refuse_when_revoked(socket: WebSocket, session: KeySession, outbox: Outbox) -> None:
    """The socket's guard: once its key is revoked, the 401 error is the last message, then close
    1008, and the socket's tasks end (raises _Revoked into its task group)."""
    await session.wait_revoked()
    outbox.seal(error_frame(REVOKED_MESSAGE, "X-API-Key", status=401))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(REVOKED_DRAIN_S):  # a client that does not read cannot hold it open
            await outbox.drain()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(REVOKED_DRAIN_S):
            await socket.close(code=1008)
    raise _Revoked


async def _still_valid(socket: WebSocket, session: KeySession) -> bool:
    """Right before a submit or a cancel: False once the key is revoked (the guard then closes the
    socket). The key is looked up again through the cache as well, so a revocation whose message was
    lost still stops orders within the cache's TTL."""
    if not session.revoked and await socket.app.state.api_keys.client_by_hash(session.digest) is None:
        session.revoke()
    return not session.revoked


class SocketSlots:
    """Open sockets per client in this process (`ws_max_sockets_per_client`)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open: dict[str, int] = {}

    @contextlib.contextmanager
    def hold(self, client_id: str) -> Iterator[bool]:
        if self._open.get(client_id, 0) >= self._limit:
            yield False
            return
        self._open[client_id] = self._open.get(client_id, 0) + 1
        try:
            yield True
        finally:
            self._open[client_id] -= 1
            if not self._open[client_id]:
                del self._open[client_id]


@contextlib.asynccontextmanager
async def _opened(socket: WebSocket, route: str) -> AsyncIterator[tuple[ApiClient | None, KeySession]]:
    """Accept the socket and register it under its key (so a revocation reaches it) for as long as
    it is open: (its client, or None once refused, with the refusal sent; its key session). The
    socket counts as open (metrics, by `route`) from its acceptance to the end of its handler."""
    await socket.accept()
    metrics = socket.app.state.services.ctx.metrics
    metrics.socket_opened(route)
    try:
        sessions: KeySessions = socket.app.state.key_sessions
        with sessions.hold(presented_key(socket)) as session:
            yield await _authenticated(socket, session, route), session
    finally:
        metrics.socket_closed(route)


@websocket("/api/orders/execute")
async def execute_socket(socket: WebSocket) -> None:
    """Send an order as JSON (same body as POST /api/orders/execute); receive its events until terminal."""
    async with _opened(socket, "execute") as (client, session):
        if client is None:
            return
        slots: SocketSlots = socket.app.state.socket_slots
        with slots.hold(client.client_id) as admitted:
            if not admitted:
                refused = error_frame("too many open sockets for this client", None, status=429)
                await socket.send_text(refused.decode())
                await socket.close(code=1008)
                return
            await _serve_orders(socket, client, session)


async def _serve_orders(socket: WebSocket, client: ApiClient, session: KeySession) -> None:
    services: Services = socket.app.state.services
    desk: OrderDesk = socket.app.state.services.desk
    settings = services.settings
    hub: EventHub = socket.app.state.hub
    outbox = Outbox(socket)
    following: set[asyncio.Task] = set()
    try:
        async with asyncio.TaskGroup() as tasks:
            writer = tasks.create_task(outbox.run())
            guard = tasks.create_task(_refuse_when_revoked(socket, session, outbox))
            while not session.revoked:
                try:
                    async with asyncio.timeout(settings.ws_idle_timeout_s):
                        text = await _read_text(socket)
                except TimeoutError:
                    if following:
                        continue  # orders still in progress: not idle
                    await outbox.put(error_frame("idle timeout: closing", None, status=408))
                    await outbox.drain()
                    writer.cancel()  # or the task group would wait for the writer for ever
                    guard.cancel()
                    await socket.close(code=1000)
                    return
                try:
                    message = read_message(text, settings.ws_max_message_bytes, subscribe=True)
                    if not await _still_valid(socket, session):
                        break  # the guard tells the client and closes the socket
                    if isinstance(message, CancelAction):
                        await outbox.put(cancelled_frame(await desk.cancel(message.order_id, client.client_id)))
                        continue
                    if isinstance(message, SubscribeAction):  # as on API Gateway's socket: one of this client's orders
                        after, order = message.after_seq(), await desk.owned(message.order_id, client.client_id)
                        follow = _follow(socket, order.id, outbox, after)
                    else:
                        done, subscription = await _submit_subscribed(message, client, desk, hub, services)
                        follow = _follow(socket, done.order_id, outbox, subscription=subscription)
                except InputError as exc:
                    await outbox.put(refusal(exc))
                    continue
                except SERVICE_ERRORS as exc:  # refused, the socket and its other streams go on
                    await outbox.put(error_frame(unavailable_message(exc), None, status=503))
                    continue
                task = tasks.create_task(follow)
                following.add(task)
                task.add_done_callback(following.discard)
    except* _Revoked:
        pass
    except* (WebSocketDisconnect, OSError):
        pass


async def _submit_subscribed(
    text: str, client: ApiClient, desk: OrderDesk, hub: EventHub, services: Services,
) -> tuple[Submitted, Subscription | None]:
    """Submit with the order's events subscribed to before the order exists, so its stream
    starts live, with no replay from PostgreSQL. A repeat (the key named an existing order)
    gets no subscription: it is followed from what is stored."""
    proposed = services.ctx.ids.order_id()
    subscription = await hub.watch(proposed)
    try:
        done = await desk.submit(text, client, order_id=proposed)
    except BaseException:
        await hub.unwatch(subscription)
        raise
    if done.order_id != proposed:
        await hub.unwatch(subscription)
        return done, None
    return done, subscription


async def _follow(socket: WebSocket, order_id: str, outbox: Outbox, after: int = 0,
                  subscription: Subscription | None = None) -> None:
    """Stream one order's events after seq `after` to the socket, to its terminal event, through
    outages (a `notice` when one begins)."""
    async def notify(exc: BaseException) -> None:
        await outbox.put(outage_notice(order_id, exc))

    ctx = socket.app.state.services.ctx
    await follow_order(order_id, after, socket.app.state.hub, ctx.orders, outbox.deliver, subscription,
                       outbox.deliver_now, ctx.metrics, notify)


@websocket("/api/orders/{order_id:str}/stream")
async def stream_socket(socket: WebSocket, order_id: str) -> None:
    """Replays stored events after `?after=N` (default 0), then live ones until the terminal event."""
    async with _opened(socket, "stream") as (client, session):
        if client is None:
            return
        await _stream_order(socket, order_id, client, session)


async def _stream_order(socket: WebSocket, order_id: str, client: ApiClient, session: KeySession) -> None:
    desk: OrderDesk = socket.app.state.services.desk
    try:
        after = parse_after(socket.query_params.get("after"))  # the one reading of ?after= (HTTP /events too)
        order = await desk.owned(order_id, client.client_id)
    except InputError as exc:
        await socket.send_text(refusal(exc).decode())
        await socket.close(code=1008)
        return
    except SERVICE_ERRORS as exc:
        await socket.send_text(cannot_open_stream(exc).decode())
        await socket.close(code=1011)
        return
    outbox = Outbox(socket)
    try:
        async with asyncio.TaskGroup() as tasks:
            writer = tasks.create_task(outbox.run())
            guard = tasks.create_task(_refuse_when_revoked(socket, session, outbox))
            await _follow(socket, order.id, outbox, after)
            await outbox.drain()
            writer.cancel()
            guard.cancel()
        await socket.close()
    except* _Revoked:
        pass
    except* (WebSocketDisconnect, OSError):
        pass


SOCKETS = [execute_socket, stream_socket]
