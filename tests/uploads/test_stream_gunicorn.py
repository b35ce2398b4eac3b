"""Streamed PUTs through a real gunicorn (``bench/_server.py``) with the direct writer in
use: exact bytes, a checksum mismatch, and a client that disconnects mid-body."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import time
from pathlib import Path

import pytest

from bench._server import BenchServer

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def served():
    server = BenchServer(workers=1, threads=2, cpu=None)
    server.env["DIRECT_WRITE_MIN_BYTES"] = str(MIB)  # every body here goes through DirectWriter
    server.start()
    try:
        yield server
    finally:
        server.stop()


def call(server: BenchServer, method: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    conn.request(method, path, body=body, headers={"X-API-Key": server.key, **headers})
    response = conn.getresponse()
    payload = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, payload


def init(server: BenchServer, size: int) -> str:
    status, payload = call(
        server,
        "POST",
        "/api/uploads/init",
        json.dumps({"filename": "big.bin", "size": size}).encode(),
        **{"Content-Type": "application/json"},
    )
    assert status == 201, payload
    return payload["data"]["file_id"]


def media(server: BenchServer) -> Path:
    return server.data_dir / "media"


def partials(server: BenchServer) -> list[str]:
    folder = media(server) / ".partial"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def stored_files_named(server: BenchServer, file_id: str) -> list[Path]:
    return [p for p in media(server).rglob("*") if file_id in str(p) and p.is_file()]


def put_body(server: BenchServer, file_id: str, data: bytes, sha256: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/octet-stream"} | ({"X-Content-SHA256": sha256} if sha256 else {})
    return call(server, "PUT", f"/api/uploads/{file_id}/data", data, **headers)


def test_large_body_is_stored_exactly_and_verified(served):
    data = os.urandom(9 * MIB + 12_345)
    file_id = init(served, len(data))
    status, payload = put_body(served, file_id, data, hashlib.sha256(data).hexdigest())
    assert status == 200, payload
    assert payload["data"]["size"] == len(data)
    assert payload["data"]["sha256"] == hashlib.sha256(data).hexdigest()
    [path] = stored_files_named(served, file_id)
    assert path.read_bytes() == data
    assert partials(served) == []


def test_checksum_mismatch_keeps_nothing(served):
    data = os.urandom(5 * MIB + 1)
    file_id = init(served, len(data))
    status, payload = put_body(served, file_id, data, "0" * 64)
    assert status == 400 and payload["error"] == "CHECKSUM_MISMATCH"
    assert stored_files_named(served, file_id) == []
    assert partials(served) == []


def test_client_gone_mid_body_leaves_nothing_and_the_upload_can_be_retried(served):
    data = os.urandom(12 * MIB)
    file_id = init(served, len(data))
    sock = socket.create_connection(("127.0.0.1", served.port))
    head = (
        f"PUT /api/uploads/{file_id}/data HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {served.key}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    try:
        sock.sendall(head.encode() + data[: 6 * MIB + 7])
    except OSError:
        raise AssertionError(sock.recv(65536)) from None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not partials(served):
        time.sleep(0.05)
    assert partials(served), "the server should be inside the body, writing a temporary file"
    time.sleep(0.2)  # buffers handed to its writer thread
    sock.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and partials(served):
        time.sleep(0.1)
    assert partials(served) == []
    assert stored_files_named(served, file_id) == []
    # The row went back to pending, so the same upload takes a complete body afterwards.
    status, payload = put_body(served, file_id, data)
    assert status == 200, payload
    [path] = stored_files_named(served, file_id)
    assert path.read_bytes() == data
