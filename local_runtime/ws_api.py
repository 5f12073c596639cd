"""WebSocket routes: submit orders and watch them on one socket, or follow an existing order.

One writer task owns `send`, fed by a bounded queue; the reader loop runs in the
handler. Bad messages get an `error` message and the socket stays usable.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from local_runtime.bootstrap import Engine
from local_runtime.http_api import ANONYMOUS_CLIENT
from local_runtime.streaming import follow_order
from local_runtime.submission import CancelAction, InputError, OrderDesk, decode_body, parse_order_id
from shared.events import Event, encode_event

OUTBOX_SIZE = 1024
_encoder = msgspec.json.Encoder()
_cancel_decoder = msgspec.json.Decoder(CancelAction)


def _error(message: str, field: str | None, **extra: Any) -> bytes:
    return _encoder.encode({"type": "error", "error": message, "field": field, **extra})


class Outbox:
    """The socket's only writer."""

    def __init__(self, socket: WebSocket) -> None:
        self._socket = socket
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(OUTBOX_SIZE)

    async def put(self, frame: bytes) -> None:
        await self._queue.put(frame)

    async def deliver(self, event: Event) -> None:
        await self._queue.put(encode_event(event))

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


@websocket("/api/orders/execute")
async def execute_socket(socket: WebSocket) -> None:
    """Send an order as JSON (same body as POST /api/orders/execute); receive its events until terminal."""
    engine: Engine = socket.app.state.engine
    desk: OrderDesk = socket.app.state.desk
    await socket.accept()
    outbox = Outbox(socket)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(outbox.run())
            while True:
                text = await _read_text(socket)
                if text is None:
                    await outbox.put(_error("send orders as text frames of JSON", None))
                    continue
                try:
                    if '"action"' in text:
                        action = decode_body(text, CancelAction, _cancel_decoder)
                        cancelled = await desk.cancel(action.order_id, ANONYMOUS_CLIENT)
                        await outbox.put(_encoder.encode({"type": "cancelled", "orderId": cancelled}))
                        continue
                    order_id = await desk.submit(text, ANONYMOUS_CLIENT)
                except InputError as exc:
                    await outbox.put(_error(exc.message, exc.field, status=exc.status))
                    continue
                tasks.create_task(follow_order(order_id, 0, socket.app.state.hub, engine.ctx.orders, outbox.deliver))
    except* (WebSocketDisconnect, OSError):
        pass


@websocket("/api/orders/{order_id:str}/stream")
async def stream_socket(socket: WebSocket, order_id: str) -> None:
    """Replays stored events after `?after=N` (default 0), then live ones until the terminal event."""
    engine: Engine = socket.app.state.engine
    await socket.accept()
    parsed = parse_order_id(order_id)
    after_text = socket.query_params.get("after", "0")
    after = int(after_text) if after_text.isdigit() else -1
    order = None if parsed is None else await engine.ctx.orders.get(parsed)
    if order is None or after < 0:
        field = "orderId" if order is None else "after"
        message = "order not found" if order is None else "after must be a non-negative integer"
        await socket.send_text(_error(message, field).decode())
        await socket.close(code=1008)
        return
    outbox = Outbox(socket)
    try:
        async with asyncio.TaskGroup() as tasks:
            writer = tasks.create_task(outbox.run())
            await follow_order(parsed, after, socket.app.state.hub, engine.ctx.orders, outbox.deliver)
            await outbox.drain()
            writer.cancel()
        await socket.close()
    except* (WebSocketDisconnect, OSError):
        pass


SOCKETS = [execute_socket, stream_socket]
