"""SocketBody against gunicorn's real body objects over a real socket pair."""

from __future__ import annotations

import hashlib
import os
import socket
import threading

import pytest
from gunicorn.http.body import Body, ChunkedReader, LengthReader
from gunicorn.http.unreader import SocketUnreader

from fileconvert import storage
from fileconvert.wsgi_input import SocketBody, content_length_body
from uploads.services import stream_into


def gunicorn_body(sock: socket.socket, length: int, read_ahead: bytes = b"") -> Body:
    unreader = SocketUnreader(sock)
    if read_ahead:
        unreader.unread(read_ahead)  # what the header parser had already received
    return Body(LengthReader(unreader, length))


def meta_for(body: Body, sock: socket.socket) -> dict:
    return {"gunicorn.socket": sock, "wsgi.input": body}


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def send_later(sock: socket.socket, data: bytes, close: bool = False) -> threading.Thread:
    def run() -> None:
        try:
            sock.sendall(data)
            if close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:  # the reader stopped early on purpose (limit tests)
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_reads_exactly_the_body_and_leaves_the_next_request(pair):
    server, client = pair
    payload = os.urandom(3 * 1024 * 1024 + 17)
    ahead, rest = payload[:1000], payload[1000:]
    body = gunicorn_body(server, len(payload), read_ahead=ahead)
    sender = send_later(client, rest + b"GET /next HTTP/1.1\r\n\r\n")
    direct = content_length_body(meta_for(body, server), len(payload))
    assert isinstance(direct, SocketBody)
    buffer = bytearray(256 * 1024)
    received = bytearray()
    while n := direct.readinto_full(buffer):
        received += buffer[:n]
    sender.join()
    assert bytes(received) == payload
    assert body.reader.length == 0  # gunicorn knows the body is consumed
    assert body.read() == b""
    assert body.reader.unreader.read(22) == b"GET /next HTTP/1.1\r\n\r\n"


def test_read_ahead_beyond_the_body_is_given_back(pair):
    server, _client = pair
    body = gunicorn_body(server, 5, read_ahead=b"helloPIPELINED")
    direct = content_length_body(meta_for(body, server), 5)
    buffer = bytearray(64)
    assert direct.readinto_full(buffer) == 5 and bytes(buffer[:5]) == b"hello"
    assert direct.readinto_full(buffer) == 0
    assert body.reader.unreader.read(9) == b"PIPELINED"


def test_client_disconnect_gives_a_short_body(pair):
    server, client = pair
    body = gunicorn_body(server, 10_000)
    send_later(client, b"x" * 4000, close=True).join()
    direct = content_length_body(meta_for(body, server), 10_000)
    writer = storage.LocalWriter("org/fil/short.bin")
    with pytest.raises(Exception) as caught:
        stream_into(writer, direct, limit=1_000_000, expected_length=10_000)
    writer.abort()
    assert getattr(caught.value, "code", "") == "INCOMPLETE_BODY"
    assert not writer._tmp.exists()


def test_stream_into_hashes_and_writes_through_the_socket_path(pair):
    server, client = pair
    payload = os.urandom(2 * 1024 * 1024 + 5)
    body = gunicorn_body(server, len(payload))
    sender = send_later(client, payload)
    writer = storage.LocalWriter("org/fil/data.bin")
    received = stream_into(writer, content_length_body(meta_for(body, server), len(payload)), limit=10**9)
    writer.commit()
    sender.join()
    assert received.size == len(payload)
    assert received.sha256 == hashlib.sha256(payload).hexdigest()
    assert received.head == payload[:8192]
    assert storage.local_path("org/fil/data.bin").read_bytes() == payload


def test_limit_is_enforced_on_the_socket_path(pair):
    server, client = pair
    body = gunicorn_body(server, 3 * 1024 * 1024)
    send_later(client, b"y" * (3 * 1024 * 1024))
    writer = storage.LocalWriter("org/fil/big.bin")
    with pytest.raises(Exception) as caught:
        stream_into(writer, content_length_body(meta_for(body, server), 3 * 1024 * 1024), limit=1024 * 1024)
    writer.abort()
    assert caught.value.status_code == 413


@pytest.mark.parametrize("case", ["not gunicorn", "chunked", "buffered"])
def test_anything_unexpected_falls_back_to_the_server_stream(pair, case):
    server, _client = pair
    if case == "not gunicorn":
        assert content_length_body({"wsgi.input": gunicorn_body(server, 3)}, 3) is None
    elif case == "chunked":
        body = Body(ChunkedReader(None, SocketUnreader(server)))
        assert content_length_body(meta_for(body, server), 3) is None
    else:
        body = gunicorn_body(server, 3)
        body.buf.write(b"a")
        assert content_length_body(meta_for(body, server), 3) is None
