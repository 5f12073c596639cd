"""A lean WebSocket client for the bench: one asyncio protocol per socket, no task per message.

The bench's load client shares the machine's two cores with the engine, so its own cost per
order is part of every figure (the table reports it). The `websockets` library spends ~0.25 ms
of CPU per order here (a frame object, a queue hop and a task wake-up per message); this
client parses frames in `data_received` and hands each text message to the socket's current
listener directly. It speaks just what the bench needs (RFC 6455): the opening handshake,
masked text frames out, unfragmented text frames in, ping → pong, close.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

_MAX_HEADER = 16 * 1024


class HandshakeFailed(Exception):
    pass


class LeanSocket(asyncio.Protocol):
    """Each text message goes to `on_message(text)` (set it before sending what it answers);
    `on_message(None)` tells the listener the connection is gone."""

    def __init__(self) -> None:
        self.on_message: Callable[[str | None], None] = lambda text: None
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._upgraded = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._upgraded.done():
            self._upgraded.set_exception(exc or HandshakeFailed("connection closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)
        self.on_message(None)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded.done():
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEADER:
                    self._upgraded.set_exception(HandshakeFailed("no end of the handshake response"))
                return
            status = bytes(self._buffer[: self._buffer.find(b"\r\n")])
            del self._buffer[: end + 4]
            if b" 101 " not in status:
                self._upgraded.set_exception(HandshakeFailed(status.decode(errors="replace")))
                return
            self._upgraded.set_result(None)
        self._read_frames()

    def _read_frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
            start = 2
            if length == 126:
                if len(buffer) < 4:
                    return
                (length,) = struct.unpack_from("!H", buffer, 2)
                start = 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                (length,) = struct.unpack_from("!Q", buffer, 2)
                start = 10
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start: start + length])
            del buffer[: start + length]
            if opcode == 0x1:
                self.on_message(payload.decode())
            elif opcode == 0x9:
                self._send_frame(0xA, payload)
            elif opcode == 0x8:
                self._send_frame(0x8, payload[:2])
                self._transport.close()
                return

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        keystream = (mask * (length // 4 + 1))[:length]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(length, "big")
        self._transport.write(header + mask + masked)

    def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    async def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._send_frame(0x8, struct.pack("!H", 1000))
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), 5)
            except TimeoutError:
                self._transport.close()


    async def handshake(self, host: str, target: str, headers: dict[str, str]) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
                 *(f"{name}: {value}" for name, value in headers.items())]
        self._transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._upgraded


async def connect(url: str, headers: dict[str, str], timeout_s: float = 30) -> LeanSocket:
    """Open a WebSocket to `url` (ws://host:port/path?query) with these extra request headers."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    _, socket = await asyncio.wait_for(loop.create_connection(LeanSocket, parts.hostname, parts.port or 80),
                                       timeout_s)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    await asyncio.wait_for(socket.handshake(parts.netloc, target, headers), timeout_s)
    return socket
