"""The format catalogue (seed 004 Reference): what each format is, what reads and
writes it here, which metadata it carries, and a small example file made by our code."""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conversions import converters, templates


@dataclass(frozen=True)
class Format:
    id: str
    name: str
    category: str
    extensions: tuple[str, ...]
    mime_types: tuple[str, ...]
    description: str
    metadata: tuple[str, ...] = ()


_F = Format
FORMATS: dict[str, Format] = {
    f.id: f
    for f in (
        _F(
            "png",
            "PNG",
            "image",
            ("png",),
            ("image/png",),
            "Lossless raster image, alpha.",
            ("exif", "png-text", "icc"),
        ),
        _F("jpeg", "JPEG", "image", ("jpg", "jpeg"), ("image/jpeg",), "Lossy photo image.", ("exif", "xmp", "iptc", "icc")),
        _F("webp", "WebP", "image", ("webp",), ("image/webp",), "Lossy or lossless image, animation.", ("exif", "xmp", "icc")),
        _F("gif", "GIF", "image", ("gif",), ("image/gif",), "Palette image, animation.", ("comment",)),
        _F("bmp", "BMP", "image", ("bmp",), ("image/bmp",), "Uncompressed Windows bitmap.", ()),
        _F(
            "tiff",
            "TIFF",
            "image",
            ("tif", "tiff"),
            ("image/tiff",),
            "Tagged image, multi-page.",
            ("exif", "xmp", "iptc", "icc"),
        ),
        _F("ico", "ICO", "image", ("ico",), ("image/vnd.microsoft.icon", "image/x-icon"), "Windows icon, several sizes.", ()),
        _F("pdf", "PDF", "document", ("pdf",), ("application/pdf",), "Portable Document Format.", ("pdf-info", "xmp")),
        _F("text", "Plain text", "text", ("txt",), ("text/plain",), "Unformatted UTF-8 text.", ()),
        _F("markdown", "Markdown", "text", ("md", "markdown"), ("text/markdown",), "Lightweight markup (CommonMark).", ()),
        _F("html", "HTML", "text", ("html", "htm"), ("text/html",), "Web page markup (sanitised on output).", ()),
        _F("csv", "CSV", "data", ("csv",), ("text/csv",), "Comma-separated values with a header row.", ()),
        _F("tsv", "TSV", "data", ("tsv",), ("text/tab-separated-values",), "Tab-separated values with a header row.", ()),
        _F("json", "JSON", "data", ("json",), ("application/json",), "JavaScript Object Notation.", ()),
        _F("ndjson", "NDJSON", "data", ("ndjson", "jsonl"), ("application/x-ndjson",), "One JSON value per line.", ()),
        _F("xml", "XML", "data", ("xml",), ("application/xml",), "Extensible Markup Language (parsed safely).", ()),
        _F("yaml", "YAML", "data", ("yaml", "yml"), ("application/yaml",), "YAML documents (safe subset).", ()),
        _F(
            "xlsx",
            "Excel workbook",
            "spreadsheet",
            ("xlsx",),
            ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",),
            "Office Open XML spreadsheet.",
            ("office-core",),
        ),
        _F(
            "docx",
            "Word document",
            "document",
            ("docx",),
            ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",),
            "Office Open XML text document.",
            ("office-core",),
        ),
        _F(
            "pptx",
            "PowerPoint presentation",
            "presentation",
            ("pptx",),
            ("application/vnd.openxmlformats-officedocument.presentationml.presentation",),
            "Office Open XML presentation.",
            ("office-core",),
        ),
        _F(
            "odt",
            "OpenDocument text",
            "document",
            ("odt",),
            ("application/vnd.oasis.opendocument.text",),
            "ODF text.",
            ("odf-meta",),
        ),
        _F(
            "ods",
            "OpenDocument spreadsheet",
            "spreadsheet",
            ("ods",),
            ("application/vnd.oasis.opendocument.spreadsheet",),
            "ODF spreadsheet.",
            ("odf-meta",),
        ),
        _F(
            "odp",
            "OpenDocument presentation",
            "presentation",
            ("odp",),
            ("application/vnd.oasis.opendocument.presentation",),
            "ODF presentation.",
            ("odf-meta",),
        ),
        _F("mp3", "MP3", "audio", ("mp3",), ("audio/mpeg",), "MPEG-1 Layer III audio.", ("id3",)),
        _F("ogg", "Ogg Vorbis", "audio", ("ogg", "oga"), ("audio/ogg",), "Ogg container, Vorbis audio.", ("vorbis-comment",)),
        _F("wav", "WAV", "audio", ("wav",), ("audio/wav",), "Uncompressed PCM audio.", ("riff-info",)),
        _F("flac", "FLAC", "audio", ("flac",), ("audio/flac",), "Lossless compressed audio.", ("vorbis-comment",)),
        _F("m4a", "M4A", "audio", ("m4a",), ("audio/mp4",), "AAC audio in an MP4 container.", ("mp4-tags",)),
        _F("mp4", "MP4", "video", ("mp4", "m4v"), ("video/mp4",), "H.264 video and AAC audio.", ("mp4-tags", "ffprobe")),
        _F("webm", "WebM", "video", ("webm",), ("video/webm",), "VP8/VP9 video and Opus audio.", ("ffprobe",)),
    )
}


def mime_of(fmt: str) -> str:
    found = FORMATS.get(fmt)
    return found.mime_types[0] if found else "application/octet-stream"


def _edges() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    out: dict[str, list[str]] = {}
    into: dict[str, list[str]] = {}
    for source, targets in converters.graph().items():
        for target in targets:
            out.setdefault(source, []).append(target)
            into.setdefault(target, []).append(source)
    return out, into


def describe(fmt: Format, *, detail: bool = False) -> dict[str, Any]:
    out, into = _edges()
    body: dict[str, Any] = {
        "id": fmt.id,
        "name": fmt.name,
        "category": fmt.category,
        "extensions": list(fmt.extensions),
        "mime_types": list(fmt.mime_types),
        "description": fmt.description,
        "read": fmt.id in out,
        "write": fmt.id in into,
        "metadata": list(fmt.metadata),
        "template": has_template(fmt.id),
    }
    if detail:
        body["conversions"] = {"to": sorted(out.get(fmt.id, [])), "from": sorted(into.get(fmt.id, []))}
    return body


def find(name: str) -> Format | None:
    fmt = converters.canonical(name)
    if fmt in FORMATS:
        return FORMATS[fmt]
    for candidate in FORMATS.values():
        if fmt in candidate.extensions:
            return candidate
    return None


# --- templates: small valid example files, generated -------------------------------------

SAMPLE_ROWS = [
    {"id": 1, "name": "Ada Lovelace", "city": "London", "score": 9.5},
    {"id": 2, "name": "Grace Hopper", "city": "New York", "score": 9.8},
    {"id": 3, "name": "Alan Turing", "city": "Manchester", "score": 9.7},
]


def _image(fmt: str) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, 56, 56), outline=(20, 90, 200), width=4)
    draw.ellipse((20, 20, 44, 44), fill=(230, 80, 40))
    out = io.BytesIO()
    image.save(out, converters.images.PIL_NAMES[fmt])
    return out.getvalue()


def _pdf() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (595, 842), (255, 255, 255))
    ImageDraw.Draw(image).text((72, 72), "fileconvert example PDF", fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PDF", resolution=72.0, title="Example")
    return out.getvalue()


def _data(fmt: str) -> bytes:
    from pathlib import Path
    from tempfile import TemporaryDirectory

    with TemporaryDirectory() as work:
        path = Path(work) / f"example.{fmt}"
        converters.data.write_records(SAMPLE_ROWS, path, fmt, {"pretty": True, "flatten": True}, converters.Context(Path(work)))
        return path.read_bytes()


def _wav() -> bytes:
    import math
    import struct

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(8000)))
    return out.getvalue()


TEMPLATES: dict[str, Callable[[], bytes | None]] = {
    **{fmt: (lambda fmt=fmt: _image(fmt)) for fmt in converters.images.IMAGE_FORMATS},
    **{fmt: (lambda fmt=fmt: _data(fmt)) for fmt in converters.data.DATA_FORMATS},
    **templates.OFFICE,
    **{fmt: (lambda fmt=fmt: templates.media(fmt)) for fmt in templates.MEDIA_FORMATS},  # None without ffmpeg
    "pdf": _pdf,
    "wav": _wav,
    "text": lambda: b"fileconvert example text file.\nSecond line.\n",
    "markdown": lambda: b"# Example\n\nSome *Markdown* with a [link](https://example.com).\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
    "html": lambda: (
        b'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Example</title></head>'
        b"<body><h1>Example</h1><p>Hello.</p></body></html>\n"
    ),
}


def has_template(fmt_id: str) -> bool:
    """Whether ``GET /api/formats/{fmt}/template`` can answer here (media ones need ffmpeg)."""
    return fmt_id in TEMPLATES and (fmt_id not in templates.MEDIA_FORMATS or templates.media_available(fmt_id))


def template(fmt: Format) -> tuple[bytes, str, str] | None:
    make = TEMPLATES.get(fmt.id)
    body = make() if make is not None else None
    if body is None:
        return None
    return body, f"example.{fmt.extensions[0]}", fmt.mime_types[0]


METADATA_HELP: dict[str, Any] = {
    "title": "Metadata guide",
    "summary": "What fileconvert reads and writes inside files, and how conversions carry it over.",
    "containers": [
        {"id": "exif", "name": "EXIF", "formats": ["jpeg", "tiff", "webp", "png"], "about": "Camera, date, orientation, GPS."},
        {"id": "xmp", "name": "XMP", "formats": ["jpeg", "tiff", "webp", "pdf"], "about": "Adobe's extensible RDF/XML packet."},
        {"id": "iptc", "name": "IPTC IIM", "formats": ["jpeg", "tiff"], "about": "Captions, keywords, credits (news workflows)."},
        {"id": "icc", "name": "ICC profile", "formats": ["jpeg", "png", "tiff", "webp"], "about": "Colour space of the pixels."},
        {"id": "png-text", "name": "PNG text chunks", "formats": ["png"], "about": "tEXt/iTXt key-value pairs."},
        {"id": "id3", "name": "ID3", "formats": ["mp3"], "about": "Title, artist, album, cover art."},
        {"id": "vorbis-comment", "name": "Vorbis comments", "formats": ["ogg", "flac"], "about": "Free-form tags."},
        {"id": "mp4-tags", "name": "MP4 tags", "formats": ["m4a", "mp4"], "about": "iTunes-style atoms."},
        {"id": "pdf-info", "name": "PDF Info dictionary", "formats": ["pdf"], "about": "Title, author, producer, dates."},
        {
            "id": "office-core",
            "name": "Office core properties",
            "formats": ["docx", "xlsx", "pptx"],
            "about": "core.xml.",
        },
        {"id": "odf-meta", "name": "ODF meta", "formats": ["odt", "ods", "odp"], "about": "meta.xml."},
        {"id": "ffprobe", "name": "Streams", "formats": ["mp4", "webm"], "about": "Codecs, duration, resolution (read only)."},
    ],
    "conversions": [
        "Images keep EXIF (orientation reset once applied) and the ICC profile where the target holds them"
        " (strip_metadata drops them).",
        "Audio and video keep container tags (ffmpeg -map_metadata 0).",
        "PDF page extraction keeps the document information dictionary.",
        "Every output records its source, job and formats under metadata.conversion.",
    ],
    "privacy": [
        "GPS position, device serial numbers, author names and software versions can identify people.",
        "Use the metadata API's anonymize or strip_all before sharing a file publicly.",
    ],
    "endpoints": {
        "read": "GET /api/files/{org_id}/{file_id}/metadata",
        "edit": "POST /api/files/{org_id}/{file_id}/metadata",
    },
}


def catalogue() -> list[dict[str, Any]]:
    return [describe(f) for f in FORMATS.values()]
