"""Through a real gunicorn (``bench/_server.py``): on local disk the body goes out with
``sendfile`` from the bounded file's offset, so check the exact bytes of whole, ranged and
multipart downloads over a real socket, and that HEAD sends no body."""

from __future__ import annotations

import email
import http.client
import json
import os

import pytest

from bench._server import BenchServer

SIZE = 3 * 1024 * 1024 + 333


@pytest.fixture(scope="module")
def served():
    server = BenchServer(workers=1, threads=2, cpu=None).start()
    data = os.urandom(SIZE)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        headers = {"X-API-Key": server.key, "Content-Type": "application/json"}
        conn.request("POST", "/api/uploads/init", body=json.dumps({"filename": "g.bin", "size": SIZE}), headers=headers)
        started = json.loads(conn.getresponse().read())["data"]
        conn.request(
            "PUT",
            f"/api/uploads/{started['file_id']}/data",
            body=data,
            headers={"X-API-Key": server.key, "Content-Type": "application/octet-stream"},
        )
        uploaded = json.loads(conn.getresponse().read())["data"]
        conn.close()
        yield server, f"/api/files/{uploaded['organization_id']}/{uploaded['id']}/download", data
    finally:
        server.stop()


def get(server: BenchServer, path: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request(method, path, headers={"X-API-Key": server.key, **headers})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), body


def test_whole_file(served):
    server, path, data = served
    status, headers, body = get(server, path)
    assert status == 200 and body == data
    assert headers["Content-Length"] == str(SIZE)


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=1048576-2097151", 1048576, 2097151),
        ("bytes=-333", SIZE - 333, SIZE - 1),
        ("bytes=3000000-", 3000000, SIZE - 1),
    ],
)
def test_single_ranges_send_exactly_the_window(served, header, start, end):
    server, path, data = served
    status, headers, body = get(server, path, Range=header)
    assert status == 206
    assert headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert body == data[start : end + 1]


def test_multipart_ranges(served):
    server, path, data = served
    status, headers, body = get(server, path, Range="bytes=10-19,2000000-2000009")
    assert status == 206
    message = email.message_from_bytes(f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body)
    assert [p.get_payload(decode=True) for p in message.get_payload()] == [data[10:20], data[2000000:2000010]]


def test_head_and_keep_alive(served):
    server, path, data = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("HEAD", path, headers={"X-API-Key": server.key})
    head = conn.getresponse()
    assert head.status == 200 and head.read() == b"" and head.getheader("Content-Length") == str(SIZE)
    conn.request("GET", path, headers={"X-API-Key": server.key, "Range": "bytes=5-9"})  # the same connection
    ranged = conn.getresponse()
    assert ranged.status == 206 and ranged.read() == data[5:10]
    conn.close()
