"""A Django upload handler that streams each multipart file straight into storage.

Django's default handlers spool every part to memory or a temporary file, and the
bytes are then copied again into storage; this one hashes and writes each chunk to
its final storage writer as the parser produces it (one write of the bytes).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers

from fileconvert import storage
from fileconvert.errors import PayloadTooLarge
from fileconvert.ids import new_id
from fileconvert.names import sanitize_filename
from uploads.services import storage_key_for

CHUNK = 1024 * 1024


@dataclass
class StreamedPart:
    field_name: str
    file_id: str
    name: str
    key: str
    claimed_type: str
    writer: storage.StorageWriter
    digest: Any = field(default_factory=hashlib.sha256)
    size: int = 0
    head: bytes = b""
    committed: bool = False


class StreamedUploadedFile(UploadedFile):
    """What ``request.FILES`` holds: a description of bytes already in storage."""

    def __init__(self, part: StreamedPart) -> None:
        super().__init__(file=None, name=part.name, content_type=part.claimed_type, size=part.size)
        self.part = part

    def open(self, mode: str | None = None) -> Any:
        raise ValueError("streamed parts are in storage; read them from there")

    def close(self) -> None:
        # Nothing is open (file=None); Django's parser closes every part when a later
        # part fails, and File.close() would raise AttributeError (a 500, not the 4xx).
        return None


class StorageUploadHandler(FileUploadHandler):
    chunk_size = CHUNK

    def __init__(self, *, org_id: str, limit: int, max_files: int, fixed: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.fixed = fixed  # (file id, key) decided beforehand, as a presigned policy does
        self.org_id = org_id
        self.limit = limit
        self.max_files = max_files
        self.total = 0
        self.parts: list[StreamedPart] = []
        self.current: StreamedPart | None = None

    def new_file(
        self,
        field_name: str,
        file_name: str,
        content_type: str,
        content_length: int | None,
        charset: str | None = None,
        content_type_extra: Any = None,
    ) -> None:
        if len(self.parts) >= self.max_files:
            raise PayloadTooLarge(f"At most {self.max_files} files per request.", code="TOO_MANY_FILES")
        name = sanitize_filename(file_name)
        if self.fixed:
            file_id, key = self.fixed
        else:
            file_id = new_id("fil")
            key = storage_key_for(self.org_id, file_id, name)
        self.current = StreamedPart(
            field_name=field_name,
            file_id=file_id,
            name=name,
            key=key,
            claimed_type=(content_type or "")[:200],
            writer=storage.open_writer(key, (content_type or "application/octet-stream")[:200]),
        )
        self.parts.append(self.current)
        raise StopFutureHandlers()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        part = self.current
        assert part is not None
        self.total += len(raw_data)
        if self.total > self.limit:
            raise PayloadTooLarge(f"The upload exceeds the limit of {self.limit} bytes.", max_bytes=self.limit)
        part.digest.update(raw_data)
        part.writer.write(raw_data)
        if len(part.head) < 8192:
            part.head += raw_data[: 8192 - len(part.head)]
        part.size += len(raw_data)
        return None

    def file_complete(self, file_size: int) -> StreamedUploadedFile:
        part = self.current
        assert part is not None
        if not self.fixed:
            part.writer.commit()
            part.committed = True
        # A fixed key (presigned policy) may already hold an accepted upload: its part
        # becomes visible only once the whole form is accepted (``commit``), as S3
        # refuses a POST before it touches the object.
        self.current = None
        return StreamedUploadedFile(part)

    def commit(self) -> None:
        """Make the parts held back by a fixed key visible (after the form is accepted)."""
        for part in self.parts:
            if not part.committed:
                part.writer.commit()
                part.committed = True

    def cleanup(self) -> None:
        """Remove everything this request wrote (on any failure before rows exist)."""
        for part in self.parts:
            if part.committed:
                with contextlib.suppress(Exception):
                    storage.delete(part.key)
            else:
                part.writer.abort()
