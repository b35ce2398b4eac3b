"""A request body read straight from gunicorn's socket, for streamed uploads.

gunicorn's ``wsgi.input`` hands a Content-Length body over through a ``BytesIO`` read-ahead
buffer: every chunk is received, appended, copied out, and its remainder copied back, so
at hundreds of MB/s the web process spends more time copying than hashing and writing
(``bench/upload_stream.py``). ``SocketBody`` receives into the caller's buffer with
``recv_into`` instead: one copy, from the kernel.

It is used only when gunicorn's objects are exactly what it expects (a ``Body`` whose own
buffer is empty, over a ``LengthReader`` over a ``SocketUnreader``); anything else (the
test client, another server, a chunked body) gets the server's stream unchanged. It keeps
gunicorn's bookkeeping right: bytes gunicorn had already read ahead are served first, a
surplus belonging to a pipelined next request is given back, and the ``LengthReader``'s
remaining length follows every read so the worker knows the body is consumed.
"""

from __future__ import annotations

import io
from typing import IO, Any


class SocketBody(io.RawIOBase):
    def __init__(self, body: Any, length: int) -> None:
        super().__init__()
        reader = body.reader
        self._reader = reader
        self._sock = reader.unreader.sock
        self._remaining = min(length, reader.length)
        pending = reader.unreader.take_buffered()
        if len(pending) > self._remaining:
            reader.unreader.unread(pending[self._remaining :])
            pending = pending[: self._remaining]
        self._pending = memoryview(pending)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._remaining)
        if wanted == 0:
            return 0
        if self._pending:
            got = min(wanted, len(self._pending))
            view[:got] = self._pending[:got]
            self._pending = self._pending[got:]
        else:
            got = self._sock.recv_into(view, wanted)
            if got == 0:  # the client went away: a short body, the caller reports it
                self._remaining = 0
                return 0
        self._remaining -= got
        self._reader.length -= got
        return got

    def readinto_full(self, buffer: Any) -> int:
        """Fill ``buffer`` (fewer bytes only at the end of the body)."""
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            got = self.readinto(view[filled:])
            if not got:
                break
            filled += got
        return filled


def content_length_body(meta: dict[str, Any], length: int) -> IO[bytes] | None:
    """A ``SocketBody`` for this request when it runs under gunicorn, else None."""
    if "gunicorn.socket" not in meta:
        return None
    body = meta.get("wsgi.input")
    reader = getattr(body, "reader", None)
    unreader = getattr(reader, "unreader", None)
    if (
        type(body).__name__ != "Body"
        or type(reader).__name__ != "LengthReader"
        or type(unreader).__name__ != "SocketUnreader"
        or len(body.buf.getvalue()) != 0
        or not hasattr(unreader, "take_buffered")
    ):
        return None
    return SocketBody(body, length)  # type: ignore[return-value]
