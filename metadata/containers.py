"""Low-level readers and writers of metadata containers, shared by the probe and the editor.

Django-free (the editor runs them in a sandboxed child process). Every reader takes
bytes or a file handle it does not own, reads headers only and caps what it inflates.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Iterator
from typing import IO, Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

MAX_XML_BYTES = 4 * 1024 * 1024
MAX_TEXT_CHUNK_BYTES = 1024 * 1024  # inflated size of one zTXt/iTXt chunk
MAX_TEXT_TOTAL_BYTES = 8 * 1024 * 1024  # all PNG text together (text-chunk bombs)
MAX_VALUE_CHARS = 2000  # longer values are cut in the probe's output


class ContainerError(Exception):
    """A container that could not be read; the probe turns it into an error entry."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- XMP ---------------------------------------------------------------------------------

NS_PREFIXES = {
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://ns.adobe.com/xap/1.0/rights/": "xmpRights",
    "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#": "stEvt",
    "http://ns.adobe.com/xap/1.0/sType/ResourceRef#": "stRef",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://ns.adobe.com/exif/1.0/aux/": "aux",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://ns.adobe.com/pdf/1.3/": "pdf",
    "http://ns.adobe.com/pdfx/1.3/": "pdfx",
    "http://ns.adobe.com/camera-raw-settings/1.0/": "crs",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore",
    "http://www.aiim.org/pdfa/ns/id/": "pdfaid",
}
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XPACKET = re.compile(rb"<\?xpacket[^>]*\?>")


def _qname(tag: str) -> str:
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        return f"{NS_PREFIXES.get(uri, uri)}:{local}"
    return tag


def _xmp_value(node: Element) -> Any:
    for container in ("Seq", "Bag", "Alt"):
        inner = node.find(f"{{{RDF}}}{container}")
        if inner is not None:
            items = [_xmp_value(li) for li in inner.findall(f"{{{RDF}}}li")]
            if container == "Alt":
                return items[0] if items else ""
            return items
    children = list(node)
    if children or node.get(f"{{{RDF}}}parseType") == "Resource":
        nested: dict[str, Any] = {_qname(k): v for k, v in node.attrib.items() if not k.startswith(f"{{{RDF}}}")}
        for child in children:
            if child.tag == f"{{{RDF}}}Description":
                nested.update(_xmp_value(child))
            else:
                nested[_qname(child.tag)] = _xmp_value(child)
        return nested
    return (node.text or "").strip()


def parse_xmp(data: bytes) -> dict[str, Any]:
    """Flatten an XMP packet to ``{"prefix:Name": value}``; DTDs and entities are refused."""
    if len(data) > MAX_XML_BYTES:
        raise ContainerError("TOO_LARGE", f"The XMP packet exceeds {MAX_XML_BYTES} bytes.")
    data = _XPACKET.sub(b"", data).strip(b"\x00 \r\n\t")
    root = parse_xml(data)
    found: dict[str, Any] = {}
    for desc in root.iter(f"{{{RDF}}}Description"):
        for key, value in desc.attrib.items():
            if not key.startswith(f"{{{RDF}}}"):
                found[_qname(key)] = value
        for child in desc:
            found[_qname(child.tag)] = _xmp_value(child)
    return found


def parse_xml(data: bytes) -> Element:
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ContainerError("XML_FORBIDDEN", f"The XML uses a forbidden construct ({type(exc).__name__}).") from None
    except SafeET.ParseError as exc:
        raise ContainerError("MALFORMED_XML", f"The XML is malformed: {exc}") from None


# --- EXIF --------------------------------------------------------------------------------

IFD_EXIF = 0x8769
IFD_GPS = 0x8825
IFD_INTEROP = 0xA005
MAKER_NOTE = 0x927C


def exif_value(value: Any) -> Any:
    if isinstance(value, bytes):
        if value[:8] in (b"ASCII\x00\x00\x00", b"UNICODE\x00", b"\x00" * 8):  # UserComment
            codec = "utf-16" if value[:8] == b"UNICODE\x00" else "latin-1"
            return value[8:].decode(codec, "replace").strip("\x00 ")
        text = value.rstrip(b"\x00")
        if text and all(32 <= b < 127 or b in (9, 10, 13) for b in text):
            return text.decode("ascii")[:MAX_VALUE_CHARS]
        return f"<{len(value)} bytes>"
    if isinstance(value, tuple):
        return [exif_value(v) for v in value]
    if isinstance(value, str):
        return value.rstrip("\x00")[:MAX_VALUE_CHARS]
    if isinstance(value, int):
        return value
    try:  # IFDRational and friends
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return str(value)[:MAX_VALUE_CHARS]
    return int(number) if number.is_integer() else round(number, 8)


def load_exif(data: bytes) -> Any:
    from PIL import Image

    exif = Image.Exif()
    try:
        exif.load(data)
    except Exception as exc:  # noqa: BLE001 — Pillow raises many types on a broken TIFF header
        raise ContainerError("MALFORMED_EXIF", f"The EXIF block is unreadable: {type(exc).__name__}.") from None
    return exif


_TIFF_TYPES = {
    1: ("B", 1),
    2: ("s", 1),
    3: ("H", 2),
    4: ("I", 4),
    5: ("II", 8),
    6: ("b", 1),
    7: ("s", 1),
    8: ("h", 2),
    9: ("i", 4),
    10: ("ii", 8),
    11: ("f", 4),
    12: ("d", 8),
    13: ("I", 4),
}
MAX_IFD_ENTRIES = 1000


def read_tiff(data: bytes) -> tuple[dict[int, Any], dict[int, Any], dict[int, Any], bool]:
    """``(ifd0, exif_ifd, gps_ifd, has_ifd1)`` of a TIFF/EXIF block, read directly: the probe's
    fast path (several times cheaper than building Pillow's tag directories)."""
    if data[:6] == b"Exif\x00\x00":
        data = data[6:]
    if len(data) < 8:
        raise ContainerError("TRUNCATED", "The TIFF header is truncated.")
    if data[:4] == b"II*\x00":
        endian = "<"
    elif data[:4] == b"MM\x00*":
        endian = ">"
    else:
        raise ContainerError("MALFORMED_EXIF", "The EXIF block has no TIFF header.")
    size = len(data)

    def ifd(offset: int) -> tuple[dict[int, Any], int]:
        if offset < 8 or offset + 2 > size:
            raise ContainerError("MALFORMED_EXIF", "An EXIF directory points outside the block.")
        (count,) = struct.unpack_from(endian + "H", data, offset)
        if count > MAX_IFD_ENTRIES or offset + 2 + 12 * count > size:
            raise ContainerError("MALFORMED_EXIF", "An EXIF directory is truncated.")
        entries: dict[int, Any] = {}
        for i in range(count):
            tag, typ, n = struct.unpack_from(endian + "HHI", data, offset + 2 + 12 * i)
            spec = _TIFF_TYPES.get(typ)
            if spec is None or n > 1_000_000:
                continue
            fmt, unit = spec
            length = unit * n
            at = offset + 10 + 12 * i if length <= 4 else struct.unpack_from(endian + "I", data, offset + 10 + 12 * i)[0]
            if at + length > size:
                continue
            raw = data[at : at + length]
            if typ in (2, 7) or (typ == 1 and n > 1):
                entries[tag] = raw.rstrip(b"\x00").decode("utf-8", "replace") if typ == 2 else raw
                continue
            values = struct.unpack(endian + fmt[0] * (n * len(fmt)), raw)
            if typ in (5, 10):
                values = tuple(a / b if b else 0.0 for a, b in zip(values[::2], values[1::2], strict=True))
            entries[tag] = values[0] if n == 1 else values
        end = offset + 2 + 12 * count
        next_ifd = struct.unpack_from(endian + "I", data, end)[0] if end + 4 <= size else 0
        return entries, next_ifd

    ifd0, next_ifd = ifd(struct.unpack_from(endian + "I", data, 4)[0])
    exif = ifd(ifd0[IFD_EXIF])[0] if isinstance(ifd0.get(IFD_EXIF), int) else {}
    gps = ifd(ifd0[IFD_GPS])[0] if isinstance(ifd0.get(IFD_GPS), int) else {}
    return ifd0, exif, gps, bool(next_ifd) and next_ifd < size


def exif_sections_fast(data: bytes) -> tuple[dict[str, dict[str, Any]], bool]:
    """``({"exif": …, "gps": …}, has_thumbnail)`` straight from the EXIF bytes."""
    from PIL.ExifTags import GPSTAGS, TAGS

    ifd0, exif, gps, has_ifd1 = read_tiff(data)
    main = {TAGS.get(t, f"0x{t:04x}"): exif_value(v) for t, v in ifd0.items() if t not in (IFD_EXIF, IFD_GPS, IFD_INTEROP)}
    main.update({TAGS.get(t, f"0x{t:04x}"): exif_value(v) for t, v in exif.items() if t != IFD_INTEROP})
    return {"exif": main, "gps": {GPSTAGS.get(t, f"0x{t:04x}"): exif_value(v) for t, v in gps.items()}}, has_ifd1


def exif_sections(exif: Any) -> dict[str, dict[str, Any]]:
    """``{"exif": {...}, "gps": {...}}`` with tag names, IFD0 and the Exif IFD merged."""
    from PIL.ExifTags import GPSTAGS, TAGS

    main: dict[str, Any] = {}
    gps: dict[str, Any] = {}
    try:
        for tag, value in exif.items():
            if tag in (IFD_EXIF, IFD_GPS, IFD_INTEROP):
                continue
            main[TAGS.get(tag, f"0x{tag:04x}")] = exif_value(value)
        for tag, value in exif.get_ifd(IFD_EXIF).items():
            if tag == IFD_INTEROP:
                continue
            main[TAGS.get(tag, f"0x{tag:04x}")] = exif_value(value)
        for tag, value in exif.get_ifd(IFD_GPS).items():
            gps[GPSTAGS.get(tag, f"0x{tag:04x}")] = exif_value(value)
    except Exception as exc:  # noqa: BLE001
        raise ContainerError("MALFORMED_EXIF", f"The EXIF block is unreadable: {type(exc).__name__}.") from None
    return {"exif": main, "gps": gps}


def gps_decimal(gps: dict[str, Any]) -> dict[str, float] | None:
    def coordinate(value: Any, ref: Any, negative: str) -> float | None:
        if not isinstance(value, list) or len(value) != 3:
            return None
        try:
            degrees = float(value[0]) + float(value[1]) / 60 + float(value[2]) / 3600
        except (TypeError, ValueError):
            return None
        return round(-degrees if str(ref).upper().startswith(negative) else degrees, 7)

    lat = coordinate(gps.get("GPSLatitude"), gps.get("GPSLatitudeRef"), "S")
    lon = coordinate(gps.get("GPSLongitude"), gps.get("GPSLongitudeRef"), "W")
    if lat is None or lon is None:
        return None
    return {"lat": lat, "lon": lon}


# --- IPTC (IIM inside Photoshop resources) -------------------------------------------------

IPTC_NAMES = {
    5: "ObjectName",
    25: "Keywords",
    55: "DateCreated",
    60: "TimeCreated",
    80: "By-line",
    85: "By-lineTitle",
    90: "City",
    92: "Sub-location",
    95: "Province-State",
    101: "Country",
    105: "Headline",
    110: "Credit",
    115: "Source",
    116: "CopyrightNotice",
    118: "Contact",
    120: "Caption-Abstract",
    122: "Writer-Editor",
}


def photoshop_resources(data: bytes) -> Iterator[tuple[int, bytes]]:
    """8BIM resources of an APP13 payload (after "Photoshop 3.0\\0")."""
    pos = 0
    while pos + 12 <= len(data) and data[pos : pos + 4] == b"8BIM":
        rid = struct.unpack(">H", data[pos + 4 : pos + 6])[0]
        name_len = data[pos + 6]
        pos += 7 + name_len + (1 if (name_len + 1) % 2 else 0)
        if pos + 4 > len(data):
            return
        size = struct.unpack(">I", data[pos : pos + 4])[0]
        pos += 4
        yield rid, data[pos : pos + size]
        pos += size + (size % 2)


def parse_iptc(data: bytes) -> dict[str, Any]:
    found: dict[str, Any] = {}
    pos = 0
    while pos + 5 <= len(data):
        if data[pos] != 0x1C:
            if not found:
                raise ContainerError("MALFORMED_IPTC", "The IPTC block is unreadable.")
            break
        record, dataset = data[pos + 1], data[pos + 2]
        size = struct.unpack(">H", data[pos + 3 : pos + 5])[0]
        if size & 0x8000:  # extended length: not used for text datasets
            break
        value = data[pos + 5 : pos + 5 + size]
        pos += 5 + size
        if record != 2 or dataset == 0:
            continue
        name = IPTC_NAMES.get(dataset, f"2:{dataset}")
        text = value.decode("utf-8", "replace")[:MAX_VALUE_CHARS]
        if name in found:
            found[name] = [*found[name], text] if isinstance(found[name], list) else [found[name], text]
        else:
            found[name] = text
    return found


# --- ICC -----------------------------------------------------------------------------------


def icc_description(data: bytes) -> dict[str, Any]:
    if len(data) < 132:
        raise ContainerError("MALFORMED_ICC", "The ICC profile is truncated.")
    info: dict[str, Any] = {
        "size": len(data),
        "cmm": data[4:8].decode("latin-1").strip("\x00 "),
        "version": f"{data[8]}.{data[9] >> 4}",
        "device_class": data[12:16].decode("latin-1").strip(),
        "color_space": data[16:20].decode("latin-1").strip(),
    }
    count = struct.unpack(">I", data[128:132])[0]
    for i in range(min(count, 256)):
        entry = 132 + 12 * i
        if entry + 12 > len(data):
            break
        sig, offset, size = struct.unpack(">4sII", data[entry : entry + 12])
        if sig != b"desc" or offset + size > len(data):
            continue
        tag = data[offset : offset + size]
        if tag[:4] == b"desc" and len(tag) >= 12:
            length = struct.unpack(">I", tag[8:12])[0]
            info["description"] = tag[12 : 12 + length].rstrip(b"\x00").decode("latin-1", "replace")
        elif tag[:4] == b"mluc" and len(tag) >= 28:
            rec_len, rec_off = struct.unpack(">II", tag[20:28])
            info["description"] = tag[rec_off : rec_off + rec_len].decode("utf-16-be", "replace").rstrip("\x00")
    return info


# --- JPEG segments ---------------------------------------------------------------------------

JPEG_EXIF = b"Exif\x00\x00"
JPEG_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
JPEG_XMP_EXT = b"http://ns.adobe.com/xmp/extension/\x00"
JPEG_ICC = b"ICC_PROFILE\x00"
JPEG_PHOTOSHOP = b"Photoshop 3.0\x00"
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


MAX_JPEG_HEADER_BYTES = 16 * 1024 * 1024


def jpeg_segments(fh: IO[bytes]) -> list[tuple[int, bytes]]:
    """Marker segments up to (not including) SOS, as ``(marker, payload)``; reads headers only,
    at most 16 MiB of them (real files carry well under 1 MiB)."""
    if fh.read(2) != b"\xff\xd8":
        raise ContainerError("MALFORMED_JPEG", "Not a JPEG stream.")
    segments: list[tuple[int, bytes]] = []
    total = 0
    while True:
        byte = fh.read(1)
        while byte == b"\xff":
            marker = fh.read(1)
            if marker != b"\xff":
                break
        else:
            raise ContainerError("MALFORMED_JPEG", "A JPEG marker was expected.")
        if not marker:
            raise ContainerError("TRUNCATED", "The JPEG ends inside its headers.")
        code = marker[0]
        if code == 0xDA or code == 0xD9:
            return segments
        if 0xD0 <= code <= 0xD7 or code == 0x01:
            continue
        raw_len = fh.read(2)
        if len(raw_len) < 2:
            raise ContainerError("TRUNCATED", "The JPEG ends inside its headers.")
        length = struct.unpack(">H", raw_len)[0]
        total += length
        if total > MAX_JPEG_HEADER_BYTES:
            raise ContainerError("TOO_LARGE", "The JPEG headers are larger than allowed.")
        payload = fh.read(length - 2)
        if len(payload) < length - 2 or length < 2:
            raise ContainerError("TRUNCATED", "The JPEG ends inside a marker segment.")
        segments.append((code, payload))


def jpeg_dimensions(segments: list[tuple[int, bytes]]) -> tuple[int, int] | None:
    for code, payload in segments:
        if code in _SOF and len(payload) >= 5:
            height, width = struct.unpack(">HH", payload[1:5])
            return width, height
    return None


def jpeg_write_segment(out: IO[bytes], code: int, payload: bytes) -> None:
    if len(payload) + 2 > 0xFFFF:
        raise ContainerError("TOO_LARGE", "A JPEG marker segment cannot exceed 64 KiB.")
    out.write(bytes([0xFF, code]) + struct.pack(">H", len(payload) + 2) + payload)


# --- PNG chunks ------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_XMP_KEYWORD = "XML:com.adobe.xmp"


PNG_METADATA_CHUNKS = {b"IHDR", b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP", b"tIME", b"IEND"}
MAX_METADATA_CHUNK_BYTES = 16 * 1024 * 1024


def png_chunks(fh: IO[bytes], *, stop_at_idat: bool = False, with_data: bool = True) -> Iterator[tuple[bytes, bytes, int]]:
    """``(type, data, offset)`` of every chunk. Without ``with_data`` (the probe) only metadata
    chunks are read, at most 16 MiB each; every other chunk is skipped with a seek."""
    if fh.read(8) != PNG_SIGNATURE:
        raise ContainerError("MALFORMED_PNG", "Not a PNG stream.")
    try:
        size: int | None = os.fstat(fh.fileno()).st_size
    except (AttributeError, OSError, ValueError):  # in-memory streams have no descriptor
        size = None
    while True:
        offset = fh.tell()
        header = fh.read(8)
        if not header:
            return
        if len(header) < 8:
            raise ContainerError("TRUNCATED", "The PNG ends inside a chunk header.")
        length, ctype = struct.unpack(">I4s", header)
        if length > 0x7FFFFFFF:
            raise ContainerError("MALFORMED_PNG", "A PNG chunk has an impossible length.")
        if ctype == b"IDAT" and stop_at_idat:
            return
        if not with_data and (ctype not in PNG_METADATA_CHUNKS or length > MAX_METADATA_CHUNK_BYTES):
            if ctype in PNG_METADATA_CHUNKS:
                raise ContainerError("TOO_LARGE", f"A PNG {ctype.decode('latin-1')} chunk is larger than allowed.")
            fh.seek(length + 4, 1)
            if size is not None and fh.tell() > size:
                raise ContainerError("TRUNCATED", "The PNG ends inside a chunk.")
            yield ctype, b"", offset
            continue
        data = fh.read(length)
        crc = fh.read(4)
        if len(data) < length or len(crc) < 4:
            raise ContainerError("TRUNCATED", "The PNG ends inside a chunk.")
        yield ctype, data, offset
        if ctype == b"IEND":
            return


def png_chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF)


def bounded_inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise ContainerError("MALFORMED_PNG", "A compressed PNG text chunk is corrupt.") from None
    if len(out) > limit:
        raise ContainerError("TEXT_BOMB", f"A PNG text chunk inflates beyond {limit} bytes.")
    return out


def png_text(ctype: bytes, data: bytes) -> tuple[str, str]:
    """(keyword, text) of a tEXt, zTXt or iTXt chunk."""
    keyword, sep, rest = data.partition(b"\x00")
    if not sep or not 1 <= len(keyword) <= 79:
        raise ContainerError("MALFORMED_PNG", "A PNG text chunk has no valid keyword.")
    key = keyword.decode("latin-1")
    if ctype == b"tEXt":
        return key, rest.decode("latin-1")
    if ctype == b"zTXt":
        return key, bounded_inflate(rest[1:], MAX_TEXT_CHUNK_BYTES).decode("latin-1")
    if len(rest) < 2:
        raise ContainerError("MALFORMED_PNG", "An iTXt chunk is truncated.")
    compressed = rest[0]
    _lang, _, rest = rest[2:].partition(b"\x00")
    _translated, _, text = rest.partition(b"\x00")
    if compressed:
        text = bounded_inflate(text, MAX_TEXT_CHUNK_BYTES)
    return key, text.decode("utf-8", "replace")


def png_itxt(keyword: str, text: str) -> bytes:
    return png_chunk(b"iTXt", keyword.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode("utf-8"))


# --- Office (OOXML) --------------------------------------------------------------------------

OFFICE_CORE = "docProps/core.xml"
OFFICE_APP = "docProps/app.xml"
OFFICE_CUSTOM = "docProps/custom.xml"
MAX_ZIP_ENTRIES = 10_000
MAX_PART_BYTES = 1024 * 1024  # a properties part larger than this is refused
MAX_ZIP_TOTAL_BYTES = 512 * 1024 * 1024  # inflated total when a package is rewritten
MAX_ZIP_RATIO = 200  # per entry, inflated / compressed

CORE_NS = {
    "cp": "http://schemas.openxmlformats.org/package/2006/metadata/core-properties",
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "dcmitype": "http://purl.org/dc/dcmitype/",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
APP_NS = "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"
VT_NS = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"
CUSTOM_NS = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
CORE_FIELDS = {
    "title": "dc",
    "subject": "dc",
    "creator": "dc",
    "description": "dc",
    "language": "dc",
    "identifier": "dc",
    "keywords": "cp",
    "lastModifiedBy": "cp",
    "revision": "cp",
    "lastPrinted": "cp",
    "category": "cp",
    "contentStatus": "cp",
    "version": "cp",
    "created": "dcterms",
    "modified": "dcterms",
}


def read_zip_member(archive: Any, name: str, limit: int = MAX_PART_BYTES) -> bytes | None:
    """A member's bytes, inflated at most to ``limit`` whatever its header claims."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > limit:
        raise ContainerError("TOO_LARGE", f"{name} is larger than {limit} bytes.")
    with archive.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise ContainerError("ZIP_BOMB", f"{name} inflates beyond {limit} bytes (its header lies).")
    return bytes(data)


def local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def office_core(data: bytes) -> dict[str, Any]:
    root = parse_xml(data)
    return {local_name(child.tag): (child.text or "").strip()[:MAX_VALUE_CHARS] for child in root}


def office_app(data: bytes) -> dict[str, Any]:
    root = parse_xml(data)
    found: dict[str, Any] = {}
    for child in root:
        if len(child):  # vectors (HeadingPairs, TitlesOfParts): summarised
            found[local_name(child.tag)] = f"<{sum(1 for _ in child.iter()) - 1} values>"
        else:
            found[local_name(child.tag)] = (child.text or "").strip()[:MAX_VALUE_CHARS]
    return found


def office_custom(data: bytes) -> dict[str, Any]:
    root = parse_xml(data)
    found: dict[str, Any] = {}
    for prop in root:
        value = next(iter(prop), None)
        found[prop.get("name") or "?"] = (value.text or "").strip()[:MAX_VALUE_CHARS] if value is not None else ""
    return found


# --- ISO BMFF (MP4/M4A/MOV) boxes ------------------------------------------------------------

MAX_MOOV_BYTES = 64 * 1024 * 1024
_ISO6709 = re.compile(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)")


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload_start, payload_end)`` of the boxes in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, btype = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield btype, pos + header, pos + size
        pos += size


def read_moov(fh: IO[bytes], *, size_only: bool = False) -> bytes | None:
    """The ``moov`` box of an MP4, found by walking the top-level box headers (seeks, no reads of media data)."""
    fh.seek(0, 2)
    total = fh.tell()
    pos = 0
    while pos + 8 <= total:
        fh.seek(pos)
        header = fh.read(16)
        if len(header) < 8:
            return None
        size, btype = struct.unpack(">I4s", header[:8])
        head = 8
        if size == 1 and len(header) == 16:
            size, head = struct.unpack(">Q", header[8:16])[0], 16
        elif size == 0:
            size = total - pos
        if size < head:
            raise ContainerError("MALFORMED_MP4", "An MP4 box has an impossible size.")
        if btype == b"moov":
            if size > MAX_MOOV_BYTES:
                raise ContainerError("TOO_LARGE", "The MP4 movie header is too large.")
            if size_only:
                return None
            data = fh.read(size - head) if head == 16 else header[8:] + fh.read(size - 16)
            if len(data) < size - head:
                raise ContainerError("TRUNCATED", "The MP4 movie header is truncated.")
            return data
        pos += size
    return None


def mp4_header(moov: bytes) -> dict[str, Any]:
    """Video dimensions (``tkhd``) and the ISO 6709 location (``udta/©xyz``) of a movie header."""
    found: dict[str, Any] = {}
    for btype, start, end in _boxes(moov):
        if btype == b"trak":
            for inner, s, e in _boxes(moov, start, end):
                if inner == b"tkhd" and e - s >= 84:
                    width, height = struct.unpack_from(">II", moov, e - 8)
                    if width and height and "width" not in found:
                        found["width"], found["height"] = width >> 16, height >> 16
        elif btype == b"udta":
            for inner, s, e in _boxes(moov, start, end):
                if inner == b"loci" and e - s > 20:  # 3GPP location (what ffmpeg writes)
                    name_end = moov.find(b"\x00", s + 6, e)
                    if name_end != -1 and name_end + 13 <= e:
                        lon, lat = struct.unpack_from(">ii", moov, name_end + 2)
                        found["location"] = moov[s + 6 : name_end].decode("utf-8", "replace") or "loci"
                        found["gps"] = {"lat": round(lat / 65536, 5), "lon": round(lon / 65536, 5)}
                if inner == b"\xa9xyz" and e - s > 4:
                    text = moov[s + 4 : e].decode("utf-8", "replace")
                    found["location"] = text
                    match = _ISO6709.match(text)
                    if match:
                        found["gps"] = {"lat": round(float(match.group(1)), 7), "lon": round(float(match.group(2)), 7)}
    return found
