"""Resilient probe of every embedded metadata container of a file.

``probe_path(path)`` → ``{kind, containers, common, sections, editable}``. Headers only:
JPEG and PNG are walked segment by segment, other images are opened lazily by Pillow
(no pixel decode), audio through mutagen, PDF through pypdf, Office packages through
zipfile with inflate caps and defusedxml. A broken container becomes an error entry
(``{"name", "status": "error", "error": {code, message}}``); the probe never raises for
content. ffprobe runs only when a path to it is given, sandboxed with a timeout.
Django-free, so the benchmark and the sandboxed editor can import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from metadata import containers as c
from metadata.capabilities import editable_for
from uploads.sniff import sniff

IMAGE_KINDS = {"jpeg", "png", "tiff", "webp", "gif", "bmp", "ico"}
AUDIO_KINDS = {"mp3", "flac", "ogg", "m4a", "wav"}
VIDEO_KINDS = {"mp4", "mov", "webm", "avi"}
OFFICE_KINDS = {"docx", "xlsx", "pptx"}
PILLOW_FORMATS = {"tiff": "TIFF", "webp": "WEBP", "gif": "GIF", "bmp": "BMP", "ico": "ICO", "png": "PNG", "jpeg": "JPEG"}
# ffprobe's demuxer for each kind: the input format is pinned, never guessed from the bytes.
FFPROBE_DEMUXERS = {
    "mp3": "mp3",
    "flac": "flac",
    "ogg": "ogg",
    "m4a": "mov",
    "wav": "wav",
    "mp4": "mov",
    "mov": "mov",
    "webm": "matroska",
    "avi": "avi",
}


class Probe:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.containers: list[dict[str, Any]] = []
        self.sections: dict[str, Any] = {}
        self.common: dict[str, Any] = {}

    @contextlib.contextmanager
    def container(self, name: str) -> Iterator[None]:
        entry: dict[str, Any] = {"name": name, "status": "ok"}
        self.containers.append(entry)
        try:
            yield
        except c.ContainerError as exc:
            entry.update(status="error", error={"code": exc.code, "message": exc.message})
        except Exception as exc:  # noqa: BLE001 — a hostile or broken container must not become a 500
            entry.update(status="error", error={"code": "UNREADABLE", "message": f"{type(exc).__name__}: {str(exc)[:200]}"})

    def put(self, section: str, values: dict[str, Any]) -> None:
        if values:
            self.sections.setdefault(section, {}).update(values)

    def result(self) -> dict[str, Any]:
        self.common = normalise(self.sections, self.common)
        return {
            "kind": self.kind,
            "containers": self.containers,
            "common": self.common,
            "sections": self.sections,
            "editable": editable_for(self.kind),
        }


def probe_path(
    path: str, *, name: str = "", kind: str | None = None, ffprobe: str | None = None, timeout: float = 10, isolate: bool = True
) -> dict:
    """``isolate`` runs the PDF parser in a forked child with a wall clock (``timeout``) and a
    memory cap (page-tree loops, Flate bombs); the image, tag and Office readers are bounded
    by construction and run in-process."""
    name = name or os.path.basename(path)
    if kind is None:
        with open(path, "rb") as fh:
            kind = sniff(fh, name).kind
    extension = name.rpartition(".")[2].lower()
    if kind == "zip" and extension in OFFICE_KINDS:  # a damaged package: read what can be read, report the rest
        kind = extension
    probe = Probe(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "jpeg":
            _jpeg(probe, path)
        elif kind == "png":
            _png(probe, path)
        elif kind == "tiff":
            _tiff(probe, path)
        elif kind in IMAGE_KINDS:
            _pillow(probe, path, kind)
        elif kind == "pdf":
            _pdf_isolated(probe, path, timeout) if isolate else _pdf(probe, path)
        elif kind in OFFICE_KINDS:
            _office(probe, path)
        if kind in AUDIO_KINDS or kind in VIDEO_KINDS:
            _mutagen(probe, path)
            if kind in ("mp4", "mov", "m4a"):
                _mp4_header(probe, path)
            if ffprobe:
                _ffprobe(probe, path, kind, ffprobe, timeout)
    return probe.result()


# --- images ------------------------------------------------------------------------------


def _exif(probe: Probe, data: bytes) -> None:
    with probe.container("exif"):
        sections, has_thumbnail = c.exif_sections_fast(data)
        if has_thumbnail:
            sections["exif"]["<thumbnail>"] = True
        probe.put("exif", sections["exif"])
        probe.put("gps", sections["gps"])


def _xmp(probe: Probe, data: bytes, section: str = "xmp") -> None:
    with probe.container(section):
        probe.put(section, c.parse_xmp(data))


def _icc(probe: Probe, data: bytes) -> None:
    with probe.container("icc"):
        probe.put("icc", c.icc_description(data))


def _jpeg(probe: Probe, path: str) -> None:
    icc_parts: list[tuple[int, bytes]] = []
    with probe.container("jpeg"), open(path, "rb") as fh:
        segments = c.jpeg_segments(fh)
        dims = c.jpeg_dimensions(segments)
        if dims:
            probe.common["width"], probe.common["height"] = dims
        for code, payload in segments:
            if code == 0xE1 and payload.startswith(c.JPEG_EXIF):
                _exif(probe, payload)
            elif code == 0xE1 and payload.startswith(c.JPEG_XMP):
                _xmp(probe, payload[len(c.JPEG_XMP) :])
            elif code == 0xE2 and payload.startswith(c.JPEG_ICC) and len(payload) > 14:
                icc_parts.append((payload[12], payload[14:]))
            elif code == 0xED and payload.startswith(c.JPEG_PHOTOSHOP):
                with probe.container("iptc"):
                    for rid, block in c.photoshop_resources(payload[len(c.JPEG_PHOTOSHOP) :]):
                        if rid == 0x0404:
                            probe.put("iptc", c.parse_iptc(block))
            elif code == 0xFE:
                probe.put("comment", {"Comment": payload.rstrip(b"\x00").decode("utf-8", "replace")[: c.MAX_VALUE_CHARS]})
    if icc_parts:
        _icc(probe, b"".join(part for _, part in sorted(icc_parts)))


def _png(probe: Probe, path: str) -> None:
    text_total = 0
    with probe.container("png"), open(path, "rb") as fh:
        for ctype, data, _offset in c.png_chunks(fh, with_data=False):
            if ctype == b"IHDR" and len(data) >= 8:
                probe.common["width"], probe.common["height"] = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
            elif ctype in (b"tEXt", b"zTXt", b"iTXt"):
                text_total += len(data)
                if text_total > c.MAX_TEXT_TOTAL_BYTES:
                    raise c.ContainerError("TEXT_BOMB", "The PNG carries more text than allowed.")
                keyword = data[:79].partition(b"\x00")[0].decode("latin-1")
                with probe.container(f"png_text:{keyword}"):
                    key, text = c.png_text(ctype, data)
                    text_total += len(text)
                    if key == c.PNG_XMP_KEYWORD:
                        _xmp(probe, text.encode("utf-8"))
                    else:
                        probe.put("png_text", {key: text[: c.MAX_VALUE_CHARS]})
                    if text_total > c.MAX_TEXT_TOTAL_BYTES:
                        raise c.ContainerError("TEXT_BOMB", "The PNG carries more text than allowed.")
            elif ctype == b"eXIf":
                _exif(probe, data)
            elif ctype == b"iCCP":
                with probe.container("icc"):
                    _name, _, rest = data.partition(b"\x00")
                    probe.put("icc", c.icc_description(c.bounded_inflate(rest[1:], c.MAX_XML_BYTES)))
            elif ctype == b"tIME" and len(data) == 7:
                y = int.from_bytes(data[:2], "big")
                probe.put("png_time", {"tIME": f"{y:04d}-{data[2]:02d}-{data[3]:02d}T{data[4]:02d}:{data[5]:02d}:{data[6]:02d}"})
    # Only successful chunk-level containers are listed once; drop the per-keyword ok entries.
    probe.containers = [e for e in probe.containers if not (e["name"].startswith("png_text:") and e["status"] == "ok")]
    if "png_text" in probe.sections:
        probe.containers.append({"name": "png_text", "status": "ok"})


def _pillow(probe: Probe, path: str, kind: str) -> None:
    from PIL import Image

    with probe.container(kind), Image.open(path, formats=[PILLOW_FORMATS[kind]]) as img:
        probe.common["width"], probe.common["height"] = img.size
        info = img.info
        exif = img.getexif()
        if exif:
            with probe.container("exif"):
                sections = c.exif_sections(exif)
                for tag in ("XMLPacket", "IPTCNAA", "InterColorProfile", "StripOffsets", "StripByteCounts", "ImageResources"):
                    sections["exif"].pop(tag, None)
                probe.put("exif", sections["exif"])
                probe.put("gps", sections["gps"])
        xmp = info.get("xmp") or (exif.get(700) if kind == "tiff" else None)
        if xmp:
            _xmp(probe, xmp if isinstance(xmp, bytes) else str(xmp).encode())
        if info.get("icc_profile"):
            _icc(probe, info["icc_profile"])
        iptc = exif.get(33723) if kind == "tiff" else None
        if iptc:
            with probe.container("iptc"):
                probe.put("iptc", c.parse_iptc(iptc if isinstance(iptc, bytes) else bytes(iptc)))
        if info.get("comment"):
            comment = info["comment"]
            text = comment.decode("utf-8", "replace") if isinstance(comment, bytes) else str(comment)
            probe.put("comment", {"Comment": text[: c.MAX_VALUE_CHARS]})


def _tiff(probe: Probe, path: str) -> None:
    """Directories read through a read-only memory map: only the pages holding them are read."""
    import mmap

    from PIL.ExifTags import GPSTAGS, TAGS

    with probe.container("tiff"), open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        ifd0, exif_ifd, gps, _more = c.read_tiff(data)
        width, height = ifd0.get(256), ifd0.get(257)
        if isinstance(width, int) and isinstance(height, int):
            probe.common["width"], probe.common["height"] = width, height
        with probe.container("exif"):
            layout = {273, 279, 324, 325, 700, 33723, 34377, 34675, c.IFD_EXIF, c.IFD_GPS}
            main = {TAGS.get(t, f"0x{t:04x}"): c.exif_value(v) for t, v in ifd0.items() if t not in layout}
            main.update({TAGS.get(t, f"0x{t:04x}"): c.exif_value(v) for t, v in exif_ifd.items() if t != c.IFD_INTEROP})
            probe.put("exif", main)
            probe.put("gps", {GPSTAGS.get(t, f"0x{t:04x}"): c.exif_value(v) for t, v in gps.items()})
        _tiff_extent(probe, len(data), ifd0)
        if isinstance(ifd0.get(700), bytes):
            _xmp(probe, ifd0[700])
        if isinstance(ifd0.get(34675), bytes):
            _icc(probe, ifd0[34675])
        iptc = ifd0.get(33723)
        if isinstance(iptc, bytes):
            with probe.container("iptc"):
                probe.put("iptc", c.parse_iptc(iptc))


def _tiff_extent(probe: Probe, size: int, tags: Any) -> None:
    """The image data must lie inside the file: a truncated TIFF still has intact headers."""
    with probe.container("tiff_data"):
        starts, lengths = tags.get(273) or tags.get(324), tags.get(279) or tags.get(325)
        if starts is None or lengths is None:
            return
        starts = starts if isinstance(starts, tuple) else (starts,)
        lengths = lengths if isinstance(lengths, tuple) else (lengths,)
        end = max((a + b for a, b in zip(starts, lengths, strict=False)), default=0)
        if end > size:
            raise c.ContainerError("TRUNCATED", f"The image data ends at byte {end}, past the end of the file.")


# --- audio and video -----------------------------------------------------------------------


def _text_of(value: Any) -> Any:
    if isinstance(value, list):
        values = [_text_of(v) for v in value]
        return values[0] if len(values) == 1 else values
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (int, float, bool)):
        return value
    return str(value)[: c.MAX_VALUE_CHARS]


MAX_TAG_BYTES = 64 * 1024 * 1024


def _tag_size_guard(path: str) -> None:
    """mutagen reads a whole ID3 tag or MP4 movie header into memory: refuse absurd ones first."""
    with open(path, "rb") as fh:
        head = fh.read(10)
        if head[:3] == b"ID3" and len(head) == 10:
            size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
            if size > MAX_TAG_BYTES:
                raise c.ContainerError("TOO_LARGE", f"The ID3 tag is {size} bytes.")
        elif head[4:8] == b"ftyp":
            c.read_moov(fh, size_only=True)
        elif head[:4] == b"fLaC":
            fh.seek(4)
            total, last = 0, False
            while not last:
                block = fh.read(4)
                if len(block) < 4:
                    return  # truncated: mutagen reports it
                last, size = bool(block[0] & 0x80), int.from_bytes(block[1:4], "big")
                total += size
                if total > MAX_TAG_BYTES:
                    raise c.ContainerError("TOO_LARGE", "The FLAC metadata blocks are larger than allowed.")
                fh.seek(size, 1)


def _mutagen(probe: Probe, path: str) -> None:
    import mutagen
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    with probe.container("tags"):
        _tag_size_guard(path)
        media = mutagen.File(path)
        if media is None:
            raise c.ContainerError("UNRECOGNISED", "mutagen does not recognise this stream.")
        info = media.info
        if info is not None:
            stream = {k: getattr(info, k) for k in ("length", "bitrate", "sample_rate", "channels") if getattr(info, k, None)}
            if "length" in stream:
                stream["length"] = round(float(stream["length"]), 3)
                probe.common["duration"] = stream["length"]
            probe.put("stream", stream)
        tags = media.tags
        if tags is None:
            return
        if isinstance(tags, ID3):
            values: dict[str, Any] = {}
            for frame in tags.values():
                key = frame.HashKey
                if frame.FrameID == "APIC":
                    values[key] = f"<picture {len(frame.data)} bytes>"
                elif hasattr(frame, "text"):
                    values[key] = _text_of([str(t) for t in frame.text])
                elif hasattr(frame, "url"):
                    values[key] = frame.url
                else:
                    values[key] = f"<{frame.FrameID}>"
            probe.put("id3", values)
        elif isinstance(tags, MP4Tags):
            probe.put("mp4", {key: _text_of(value) for key, value in tags.items() if key != "covr"})
            if "covr" in tags:
                probe.put("mp4", {"covr": f"<{len(tags['covr'])} pictures>"})
        elif hasattr(tags, "as_dict"):  # Vorbis comments (FLAC, Ogg Vorbis/Opus)
            probe.put("vorbis", {key.lower(): _text_of(value) for key, value in tags.as_dict().items()})
        pictures = getattr(media, "pictures", None)
        if pictures:
            probe.put("vorbis", {"<pictures>": len(pictures)})


def _mp4_header(probe: Probe, path: str) -> None:
    with probe.container("mp4_header"), open(path, "rb") as fh:
        moov = c.read_moov(fh)
        if moov is None:
            raise c.ContainerError("MALFORMED_MP4", "The file has no movie header (moov).")
        header = c.mp4_header(moov)
        if "location" in header:
            probe.put("mp4_udta", {"location": header["location"], **({"gps": header["gps"]} if "gps" in header else {})})
        for key in ("width", "height", "gps"):
            if key in header:
                probe.common.setdefault(key, header[key])


def _ffprobe(probe: Probe, path: str, kind: str, ffprobe: str, timeout: float) -> None:
    from fileconvert.sandbox import run_command

    with probe.container("ffprobe"):
        demuxer = FFPROBE_DEMUXERS.get(kind)
        if demuxer is None:
            raise c.ContainerError("UNSUPPORTED", f"ffprobe is not run on {kind} files.")
        cmd = [ffprobe, "-v", "error", "-protocol_whitelist", "file", "-f", demuxer, "-print_format", "json"]
        cmd += ["-show_format", "-show_streams", f"file:{path}"]
        result = run_command(cmd, timeout=timeout, memory_bytes=512 * 1024**2)
        if result.timed_out:
            raise c.ContainerError("TIMEOUT", f"ffprobe took longer than {timeout} s.")
        if result.returncode != 0:
            raise c.ContainerError("FFPROBE_FAILED", result.stderr.strip()[-300:] or f"ffprobe exited with {result.returncode}.")
        data = json.loads(result.stdout or "{}")
        fmt = data.get("format") or {}
        keep_fmt = ("format_name", "duration", "bit_rate", "nb_streams", "tags")
        keep_stream = ("index", "codec_type", "codec_name", "width", "height", "duration", "sample_rate", "channels", "bit_rate")
        streams = [{k: s[k] for k in (*keep_stream, "tags") if k in s} for s in (data.get("streams") or [])[:64]]
        probe.put("ffprobe", {"format": {k: fmt[k] for k in keep_fmt if k in fmt}, "streams": streams})
        for stream in streams:
            if stream.get("codec_type") == "video" and stream.get("width"):
                probe.common.setdefault("width", stream["width"])
                probe.common.setdefault("height", stream["height"])
        if "duration" not in probe.common and fmt.get("duration"):
            probe.common["duration"] = round(float(fmt["duration"]), 3)


# --- documents -----------------------------------------------------------------------------


def _pdf(probe: Probe, path: str) -> None:
    from pypdf import PdfReader

    with probe.container("pdf"), open(path, "rb") as fh:  # a handle, not a path: pypdf would read it all
        reader = PdfReader(fh, strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise c.ContainerError("ENCRYPTED", "The PDF is encrypted.")
        probe.common["pages"] = len(reader.pages)
        with probe.container("pdf_info"):
            info = reader.metadata or {}
            probe.put("pdf_info", {str(k).lstrip("/"): _text_of(v) for k, v in info.items()})
        root = reader.trailer["/Root"].get_object()
        if "/Metadata" in root:
            with probe.container("xmp"):
                stream = root["/Metadata"].get_object()
                raw_length = int(stream.get("/Length", 0) or 0)
                if raw_length > c.MAX_XML_BYTES:
                    raise c.ContainerError("TOO_LARGE", "The XMP stream is too large.")
                probe.put("xmp", c.parse_xmp(stream.get_data()))


PDF_MEMORY_BYTES = 512 * 1024**2


def _pdf_isolated(probe: Probe, path: str, timeout: float) -> None:
    from fileconvert.sandbox import run_forked

    def child(_send: Any) -> dict[str, Any]:
        inner = Probe("pdf")
        _pdf(inner, path)
        return {"containers": inner.containers, "sections": inner.sections, "common": inner.common}

    result = run_forked(child, timeout=timeout, memory_bytes=PDF_MEMORY_BYTES)
    if result.error or not isinstance(result.value, dict):
        error = result.error or {}
        code = (
            "TIMEOUT"
            if result.timed_out
            else (error.get("code") or "TOO_COMPLEX" if error.get("type") == "MemoryError" else "UNREADABLE")
        )
        probe.containers.append(
            {"name": "pdf", "status": "error", "error": {"code": str(code), "message": str(error.get("message", ""))[:300]}}
        )
        return
    probe.containers += result.value["containers"]
    for section, values in result.value["sections"].items():
        probe.put(section, values)
    probe.common.update(result.value["common"])


def _office(probe: Probe, path: str) -> None:
    with probe.container("office"), zipfile.ZipFile(path) as archive:
        if len(archive.infolist()) > c.MAX_ZIP_ENTRIES:
            raise c.ContainerError("TOO_MANY_ENTRIES", "The package has too many entries.")
        for section, part, reader in (
            ("office_core", c.OFFICE_CORE, c.office_core),
            ("office_app", c.OFFICE_APP, c.office_app),
            ("office_custom", c.OFFICE_CUSTOM, c.office_custom),
        ):
            with probe.container(section):
                data = c.read_zip_member(archive, part)
                if data is None:
                    probe.containers.pop()
                    continue
                probe.put(section, reader(data))


# --- normalisation ---------------------------------------------------------------------------

_COMMON_SOURCES: dict[str, list[tuple[str, str]]] = {
    "title": [
        ("pdf_info", "Title"),
        ("office_core", "title"),
        ("xmp", "dc:title"),
        ("id3", "TIT2"),
        ("vorbis", "title"),
        ("mp4", "©nam"),
        ("png_text", "Title"),
        ("iptc", "ObjectName"),
        ("exif", "ImageDescription"),
    ],
    "author": [
        ("pdf_info", "Author"),
        ("office_core", "creator"),
        ("exif", "Artist"),
        ("xmp", "dc:creator"),
        ("id3", "TPE1"),
        ("vorbis", "artist"),
        ("mp4", "©ART"),
        ("png_text", "Author"),
        ("iptc", "By-line"),
    ],
    "created": [
        ("exif", "DateTimeOriginal"),
        ("pdf_info", "CreationDate"),
        ("office_core", "created"),
        ("xmp", "xmp:CreateDate"),
        ("png_text", "Creation Time"),
        ("id3", "TDRC"),
        ("vorbis", "date"),
        ("mp4", "©day"),
    ],
    "modified": [("exif", "DateTime"), ("pdf_info", "ModDate"), ("office_core", "modified"), ("xmp", "xmp:ModifyDate")],
    "camera_make": [("exif", "Make"), ("xmp", "tiff:Make")],
    "camera_model": [("exif", "Model"), ("xmp", "tiff:Model")],
    "software": [("exif", "Software"), ("pdf_info", "Producer"), ("xmp", "xmp:CreatorTool"), ("office_app", "Application")],
}


def _first_text(value: Any) -> str | None:
    if isinstance(value, list):
        value = next((v for v in value if v not in ("", None)), None)
    if isinstance(value, dict) or value in (None, ""):
        return None
    return str(value).strip() or None


def normalise_date(value: str) -> str:
    """EXIF ``2024:05:01 10:20:30``, PDF ``D:20240501102030+02'00'`` and ISO forms → ISO 8601."""
    text = value.strip()
    if text.startswith("D:"):
        digits = text[2:]
        core = digits[:14].ljust(14, "0") if digits[:4].isdigit() else ""
        if core.isdigit():
            iso = f"{core[:4]}-{core[4:6] or '01'}-{core[6:8] or '01'}T{core[8:10]}:{core[10:12]}:{core[12:14]}"
            tz = digits[14:].replace("'", "")
            if tz[:1] in ("+", "-") and len(tz) >= 5:
                iso += f"{tz[:3]}:{tz[3:5]}"
            elif tz[:1] == "Z":
                iso += "Z"
            return iso
        return text
    if len(text) >= 19 and text[4] == ":" and text[7] == ":":
        return f"{text[:4]}-{text[5:7]}-{text[8:10]}T{text[11:19]}"
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat().replace("+00:00", "Z")
    return text


def normalise(sections: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    common: dict[str, Any] = {}
    for field, sources in _COMMON_SOURCES.items():
        for section, key in sources:
            value = _first_text(sections.get(section, {}).get(key))
            if value:
                common[field] = normalise_date(value) if field in ("created", "modified") else value
                break
    gps = c.gps_decimal(sections.get("gps", {})) or found.get("gps")
    if gps:
        common["gps"] = gps
    app = sections.get("office_app", {})
    for key in ("Pages", "Slides"):
        if "pages" not in found and str(app.get(key, "")).isdigit():
            found["pages"] = int(app[key])
    for key in ("width", "height", "duration", "pages"):
        if key in found:
            common[key] = found[key]
    return common
