"""Content type from the bytes, never from the client (SECURITY #6).

``sniff`` reads the head of a file (and, for ZIP containers, the central
directory only) and returns ``(mime, kind)``. Polyglots resolve to the format
their first bytes declare; anything that looks like markup is reported as such so
it is never served inline.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from typing import IO

HEAD_BYTES = 8192
MAX_ZIP_ENTRIES = 10_000


@dataclass(frozen=True)
class Sniffed:
    mime: str
    kind: str

    @property
    def is_active_content(self) -> bool:
        """Formats a browser would execute or render with scripts."""
        return self.kind in ACTIVE_KINDS


ACTIVE_KINDS = {"html", "svg", "xml", "xhtml", "js"}
OCTET = Sniffed("application/octet-stream", "binary")

_SIGNATURES: list[tuple[int, bytes, Sniffed]] = [
    (0, b"\x89PNG\r\n\x1a\n", Sniffed("image/png", "png")),
    (0, b"\xff\xd8\xff", Sniffed("image/jpeg", "jpeg")),
    (0, b"GIF87a", Sniffed("image/gif", "gif")),
    (0, b"GIF89a", Sniffed("image/gif", "gif")),
    (0, b"BM", Sniffed("image/bmp", "bmp")),
    (0, b"II*\x00", Sniffed("image/tiff", "tiff")),
    (0, b"MM\x00*", Sniffed("image/tiff", "tiff")),
    (0, b"\x00\x00\x01\x00", Sniffed("image/vnd.microsoft.icon", "ico")),
    (0, b"%PDF-", Sniffed("application/pdf", "pdf")),
    (0, b"fLaC", Sniffed("audio/flac", "flac")),
    (0, b"OggS", Sniffed("audio/ogg", "ogg")),
    (0, b"ID3", Sniffed("audio/mpeg", "mp3")),
    (0, b"\x1a\x45\xdf\xa3", Sniffed("video/webm", "webm")),
    (0, b"\x1f\x8b", Sniffed("application/gzip", "gzip")),
    (0, b"7z\xbc\xaf\x27\x1c", Sniffed("application/x-7z-compressed", "7z")),
    (0, b"Rar!\x1a\x07", Sniffed("application/vnd.rar", "rar")),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", Sniffed("application/x-ole-storage", "ole")),
    (0, b"\x7fELF", Sniffed("application/x-executable", "elf")),
    (0, b"MZ", Sniffed("application/vnd.microsoft.portable-executable", "exe")),
]

_OFFICE = {
    "word/": Sniffed("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    "xl/": Sniffed("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "ppt/": Sniffed("application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"),
}
_ODF = {
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/epub+zip": "epub",
}
_EMAIL_HEADERS = (b"from:", b"to:", b"subject:", b"date:", b"message-id:", b"mime-version:", b"received:", b"return-path:")


def _riff(head: bytes) -> Sniffed | None:
    if head[:4] != b"RIFF" or len(head) < 12:
        return None
    return {
        b"WAVE": Sniffed("audio/wav", "wav"),
        b"WEBP": Sniffed("image/webp", "webp"),
        b"AVI ": Sniffed("video/x-msvideo", "avi"),
    }.get(head[8:12])


def _iso_bmff(head: bytes) -> Sniffed | None:
    if head[4:8] != b"ftyp":
        return None
    brand = head[8:12]
    if brand in (b"M4A ", b"M4B "):
        return Sniffed("audio/mp4", "m4a")
    if brand in (b"qt  ",):
        return Sniffed("video/quicktime", "mov")
    if brand in (b"heic", b"heix", b"mif1", b"avif"):
        return Sniffed("image/heic" if brand != b"avif" else "image/avif", "heic" if brand != b"avif" else "avif")
    return Sniffed("video/mp4", "mp4")


def _zip(fh: IO[bytes]) -> Sniffed:
    try:
        fh.seek(0)
        with zipfile.ZipFile(fh) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                return Sniffed("application/zip", "zip")
            names = [i.filename for i in infos]
            if "mimetype" in names:
                info = archive.getinfo("mimetype")
                if info.file_size < 100:
                    declared = archive.read(info).decode("ascii", "ignore").strip()
                    if declared in _ODF:
                        return Sniffed(declared, _ODF[declared])
            if "[Content_Types].xml" in names:
                for prefix, sniffed in _OFFICE.items():
                    if any(n.startswith(prefix) for n in names):
                        return sniffed
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
        pass
    return Sniffed("application/zip", "zip")


def _text(head: bytes, ext: str) -> Sniffed:
    sample = head.lstrip(b"\xef\xbb\xbf").lstrip()
    lower = sample[:1024].lower()
    while lower.startswith(b"<!--") and b"-->" in lower:  # leading comments ("saved from url=...")
        lower = lower[lower.index(b"-->") + 3 :].lstrip()
    # SVG first: an SVG with a <script> is still an SVG (and active content either way).
    if lower.startswith((b"<svg", b"<!doctype svg")) or (lower.startswith(b"<?xml") and b"<svg" in lower):
        return Sniffed("image/svg+xml", "svg")
    if lower.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe")) or b"<script" in lower:
        return Sniffed("text/html", "html")
    if lower.startswith(b"<?xml") or (lower.startswith(b"<") and ext == "xml"):
        return Sniffed("application/xml", "xml")
    if lower.startswith(b"<?php"):
        return Sniffed("text/x-php", "php")
    if lower[:1] in (b"{", b"["):
        try:
            json.loads(head.decode("utf-8"))
            return Sniffed("application/json", "json")
        except ValueError:
            if ext in ("json", "ndjson", "jsonl"):
                return Sniffed("application/x-ndjson", "ndjson") if ext != "json" else Sniffed("application/json", "json")
    first_lines = lower.split(b"\n", 8)
    if sum(1 for line in first_lines if line.startswith(_EMAIL_HEADERS)) >= 2:
        return Sniffed("message/rfc822", "eml")
    by_ext = {
        "csv": Sniffed("text/csv", "csv"),
        "tsv": Sniffed("text/tab-separated-values", "tsv"),
        "md": Sniffed("text/markdown", "markdown"),
        "markdown": Sniffed("text/markdown", "markdown"),
        "yaml": Sniffed("application/yaml", "yaml"),
        "yml": Sniffed("application/yaml", "yaml"),
        "ndjson": Sniffed("application/x-ndjson", "ndjson"),
        "jsonl": Sniffed("application/x-ndjson", "ndjson"),
        "eml": Sniffed("message/rfc822", "eml"),
        "js": Sniffed("text/javascript", "js"),
    }
    # Text formats have no magic number: a text file's extension picks among text types only.
    return by_ext.get(ext, Sniffed("text/plain", "text"))


def _is_text(head: bytes) -> bool:
    if not head:
        return False
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start >= len(head) - 3


def sniff(fh: IO[bytes], name: str = "") -> Sniffed:
    """Detect the type of a seekable binary file."""
    fh.seek(0)
    head = fh.read(HEAD_BYTES)
    fh.seek(0)
    ext = name.rpartition(".")[2].lower() if "." in name else ""
    if not head:
        return Sniffed("application/x-empty", "empty")
    for offset, magic, sniffed in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return sniffed
    for detector in (_riff, _iso_bmff):
        found = detector(head)
        if found:
            return found
    if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
        return _zip(fh)
    if len(head) > 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and ext in ("mp3", "mpga", ""):
        return Sniffed("audio/mpeg", "mp3")
    if _is_text(head):
        return _text(head, ext)
    # An e-mail with an 8-bit body or headers in a legacy charset (Latin-1, Shift_JIS) is not UTF-8.
    if b"\x00" not in head and sum(1 for line in head[:1024].lower().split(b"\n", 8) if line.startswith(_EMAIL_HEADERS)) >= 2:
        return Sniffed("message/rfc822", "eml")
    return OCTET
