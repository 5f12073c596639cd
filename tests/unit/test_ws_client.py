"""The bench's lean WebSocket client, on a fake transport: framing both ways, byte by byte."""

from __future__ import annotations

import struct

import pytest

from loadtest.ws_client import HandshakeFailed, LeanSocket

UPGRADED = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing


def server_frame(opcode: int, payload: bytes) -> bytes:
    """A frame as a server sends it (unmasked), with the shortest length encoding."""
    if len(payload) < 126:
        return struct.pack("!BB", 0x80 | opcode, len(payload)) + payload
    if len(payload) < 1 << 16:
        return struct.pack("!BBH", 0x80 | opcode, 126, len(payload)) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, len(payload)) + payload


def unmask(frame: bytes) -> tuple[int, bytes]:
    """(opcode, payload) of a client frame, checking that it is masked as RFC 6455 requires."""
    opcode, length = frame[0] & 0x0F, frame[1] & 0x7F
    assert frame[0] & 0x80 and frame[1] & 0x80, "final and masked"
    start = 2 + {126: 2, 127: 8}.get(length, 0)
    if length == 126:
        (length,) = struct.unpack_from("!H", frame, 2)
    elif length == 127:
        (length,) = struct.unpack_from("!Q", frame, 2)
    mask, body = frame[start:start + 4], frame[start + 4:]
    assert len(body) == length
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(body))


def connected() -> tuple[LeanSocket, Transport, list[str | None]]:
    socket, transport, received = LeanSocket(), Transport(), []
    socket.connection_made(transport)
    socket.on_message = received.append
    return socket, transport, received


async def test_messages_of_every_length_arrive_whole_however_the_bytes_are_cut():
    socket, _, received = connected()
    texts = ["{}", "x" * 200, "é" * 40_000]  # 7-bit, 16-bit and 64-bit length fields
    stream = UPGRADED + b"".join(server_frame(0x1, t.encode()) for t in texts)
    for i in range(len(stream)):
        socket.data_received(stream[i:i + 1])
    assert received == texts


async def test_text_goes_out_masked_and_a_ping_is_answered_with_its_payload():
    socket, transport, _ = connected()
    socket.data_received(UPGRADED + server_frame(0x9, b"hi"))
    socket.send_text('{"type":"market"}' * 10)
    assert unmask(transport.written[0]) == (0xA, b"hi")
    assert unmask(transport.written[1]) == (0x1, b'{"type":"market"}' * 10)


async def test_a_close_frame_is_answered_and_the_listener_told_when_the_connection_ends():
    socket, transport, received = connected()
    socket.data_received(UPGRADED + server_frame(0x8, struct.pack("!H", 1000)))
    assert unmask(transport.written[0]) == (0x8, struct.pack("!H", 1000))
    assert transport.closing
    socket.connection_lost(None)
    assert received == [None]
    assert socket.closed.done()


async def test_a_refused_upgrade_fails_the_handshake_with_the_status_line():
    socket, _, _ = connected()
    socket.data_received(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
    with pytest.raises(HandshakeFailed, match="401 Unauthorized"):
        await socket._upgraded
