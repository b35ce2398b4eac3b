"""Text and fields of a file, per format family, with real parsers and hard caps.

Runs in a sandboxed child process (``search.extract_worker``), so it imports nothing
from Django: the caller passes the limits. Every extractor returns an ``Extracted``;
a hostile or broken input raises ``ExtractionFailed`` with a stable code, and the
caller indexes the filename alone (SECURITY #11, #12, #13).
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import IO, Any

# Markers the snippet code puts around matches; never allowed in indexed text.
MARK_START = "\ue000"
MARK_END = "\ue001"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ue000\ue001]")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_WORDS = re.compile(r"[^\W_]+", re.UNICODE)

TEXT_KINDS = {"text", "yaml", "ndjson", "js", "php"}
AUDIO_KINDS = {"mp3", "flac", "ogg", "wav", "m4a", "mp4", "webm"}
IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "webp": "WEBP", "gif": "GIF"}
MAX_ZIP_ENTRIES = 10_000


class ExtractionFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Limits:
    max_chars: int = 1_000_000
    max_pdf_pages: int = 200
    max_unzipped_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 80_000_000

    @property
    def max_read_bytes(self) -> int:
        # Enough raw bytes for max_chars of text in any common encoding (and markup around it).
        return self.max_chars * 4


@dataclass
class Extracted:
    title: str = ""
    body: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "body": self.body, "fields": self.fields, "truncated": self.truncated}


class TextBuffer:
    """Collects text up to a character cap; ``full`` tells parsers to stop early."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False

    @property
    def full(self) -> bool:
        return self.size >= self.max_chars

    def add(self, text: str | None) -> None:
        if not text or self.full:
            if text and self.full:
                self.truncated = True
            return
        room = self.max_chars - self.size
        if len(text) > room:
            text = text[:room]
            self.truncated = True
        self.parts.append(text)
        self.size += len(text)

    def text(self) -> str:
        return clean_text("".join(self.parts))


def clean_text(text: str) -> str:
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", text))
    text = _SPACES.sub(" ", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def filename_words(name: str) -> str:
    """``Q3_report-final.v2.pdf`` -> ``Q3_report-final.v2.pdf Q3 report final v2 pdf``."""
    name = clean_text(name)
    words = " ".join(_WORDS.findall(name))
    return f"{name} {words}".strip() if words and words != name else name


def read_capped(fh: IO[bytes], limit: int) -> tuple[bytes, bool]:
    data = fh.read(limit + 1)
    return data[:limit], len(data) > limit


def decode_text(data: bytes) -> str:
    """Bytes of unknown encoding as text: UTF-8 (with or without BOM) first, else detected."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3:  # a character cut by the read cap
            return data[: exc.start].decode("utf-8")
    from charset_normalizer import from_bytes

    best = from_bytes(data[:1_000_000]).best()
    encoding = best.encoding if best is not None else "utf-8"
    return data.decode(encoding, errors="replace")


# --------------------------------------------------------------------------------------
# Plain-text families
# --------------------------------------------------------------------------------------


def extract_text(fh: IO[bytes], limits: Limits) -> Extracted:
    data, cut = read_capped(fh, limits.max_read_bytes)
    buffer = TextBuffer(limits.max_chars)
    buffer.add(decode_text(data))
    return Extracted(body=buffer.text(), truncated=cut or buffer.truncated)


_MD_IMAGE_OR_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_MD_MARKUP = re.compile(r"(^\s{0,3}>+\s?|^\s*[-*+]\s+|^\s*\d+\.\s+|`{1,3}|\*{1,3}|_{2,3}|~~|^\s*[-=]{3,}\s*$)", re.MULTILINE)


def extract_markdown(fh: IO[bytes], limits: Limits) -> Extracted:
    data, cut = read_capped(fh, limits.max_read_bytes)
    text = decode_text(data)
    heading = _MD_HEADING.search(text)
    text = _MD_IMAGE_OR_LINK.sub(r"\1", text)
    text = _MD_HEADING.sub(r"\1", text)
    text = _MD_MARKUP.sub(" ", text)
    buffer = TextBuffer(limits.max_chars)
    buffer.add(text)
    title = clean_text(heading.group(1))[:500] if heading else ""
    return Extracted(title=title, body=buffer.text(), truncated=cut or buffer.truncated)


def extract_csv(fh: IO[bytes], limits: Limits, delimiter: str = ",") -> Extracted:
    data, cut = read_capped(fh, limits.max_read_bytes)
    reader = csv.reader(io.StringIO(decode_text(data), newline=""), delimiter=delimiter)
    csv.field_size_limit(limits.max_chars)
    buffer = TextBuffer(limits.max_chars)
    columns: list[str] = []
    try:
        for number, row in enumerate(reader):
            if number == 0:
                columns = [clean_text(c)[:200] for c in row[:200]]
            buffer.add(" ".join(row) + "\n")
            if buffer.full:
                break
    except csv.Error as exc:
        if not buffer.parts:
            raise ExtractionFailed("UNREADABLE_CONTENT", f"csv: {exc}") from None
    return Extracted(body=buffer.text(), fields={"columns": columns}, truncated=cut or buffer.truncated)


def extract_json(fh: IO[bytes], limits: Limits) -> Extracted:
    data, cut = read_capped(fh, limits.max_read_bytes)
    if cut:  # a cut JSON document does not parse: index its text instead
        return extract_text(io.BytesIO(data), limits)
    try:
        value = json.loads(decode_text(data))
    except (ValueError, RecursionError):
        return extract_text(io.BytesIO(data), limits)
    buffer = TextBuffer(limits.max_chars)
    stack: list[Any] = [value]
    while stack and not buffer.full:  # iterative: nesting depth cannot blow the stack
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                stack.append(child)
                stack.append(str(key))
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, str):
            buffer.add(item + "\n")
        elif item is not None and not isinstance(item, bool):
            buffer.add(f"{item}\n")
    return Extracted(body=buffer.text(), truncated=buffer.truncated)


def extract_ndjson(fh: IO[bytes], limits: Limits) -> Extracted:
    return extract_text(fh, limits)


# --------------------------------------------------------------------------------------
# Markup
# --------------------------------------------------------------------------------------

_SKIPPED_HTML = {"script", "style", "noscript", "template", "svg", "math", "head"}


class _HtmlText(HTMLParser):
    def __init__(self, buffer: TextBuffer) -> None:
        super().__init__(convert_charrefs=True)
        self.buffer = buffer
        self.skipping: list[str] = []
        self.in_title = False
        self.title_parts: list[str] = []
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag == "meta":
            named = dict(attrs)
            name = (named.get("name") or "").lower()
            if name in ("description", "keywords", "author") and named.get("content"):
                self.meta[name] = clean_text(named["content"] or "")[:1000]
        if tag in _SKIPPED_HTML and tag != "head":
            self.skipping.append(tag)
        if tag in ("p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"):
            self.buffer.add("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)
        elif not self.skipping:
            self.buffer.add(data)


def extract_html(fh: IO[bytes], limits: Limits) -> Extracted:
    data, cut = read_capped(fh, limits.max_read_bytes)
    buffer = TextBuffer(limits.max_chars)
    parser = _HtmlText(buffer)
    text = decode_text(data)
    for start in range(0, len(text), 65536):  # fed in slices so a cap stops the work early
        parser.feed(text[start : start + 65536])
        if buffer.full:
            break
    parser.close()
    title = clean_text(" ".join(parser.title_parts))[:500]
    return Extracted(title=title, body=buffer.text(), fields=parser.meta, truncated=cut or buffer.truncated)


def _parse_xml(data: bytes) -> Any:
    """defusedxml: DTD entities, external references and XInclude are refused (fails closed)."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ExtractionFailed("UNSAFE_CONTENT", f"xml: {type(exc).__name__}") from None
    except ParseError as exc:
        raise ExtractionFailed("UNREADABLE_CONTENT", f"xml: {exc}") from None


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _xml_text(root: Any, buffer: TextBuffer, skip: frozenset[str] = frozenset()) -> None:
    """Text and tails in document order, iteratively (depth cannot blow the stack)."""
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack and not buffer.full:
        element, tail = stack.pop()
        if tail:
            if element.tail:
                buffer.add(element.tail + " ")
            continue
        if _local(element.tag) in skip:
            continue
        if element.text:
            buffer.add(element.text + " ")
        for child in reversed(list(element)):
            stack.append((child, True))
            stack.append((child, False))


def extract_xml(fh: IO[bytes], limits: Limits, *, skip: frozenset[str] = frozenset()) -> Extracted:
    data, cut = read_capped(fh, limits.max_read_bytes)
    if cut:
        raise ExtractionFailed("TOO_LARGE", "xml: larger than the extraction cap")
    root = _parse_xml(data)
    buffer = TextBuffer(limits.max_chars)
    _xml_text(root, buffer, skip)
    title = ""
    for element in root.iter():
        if _local(element.tag) == "title" and element.text:
            title = clean_text(element.text)[:500]
            break
    return Extracted(title=title, body=buffer.text(), truncated=buffer.truncated)


def extract_svg(fh: IO[bytes], limits: Limits) -> Extracted:
    return extract_xml(fh, limits, skip=frozenset({"script", "style"}))


# --------------------------------------------------------------------------------------
# ZIP containers (DOCX, XLSX, PPTX, ODF): entry and byte caps counted while reading
# --------------------------------------------------------------------------------------


class ZipReader:
    """Reads members by exact name only, counting real decompressed bytes against one
    budget for the whole archive (declared sizes can lie)."""

    def __init__(self, fh: IO[bytes], limits: Limits) -> None:
        try:
            self.archive = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ExtractionFailed("UNREADABLE_CONTENT", f"zip: {exc}") from None
        infos = self.archive.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise ExtractionFailed("ARCHIVE_TOO_LARGE", f"zip: {len(infos)} entries")
        self.names = {info.filename for info in infos}
        self.budget = limits.max_unzipped_bytes

    def read(self, name: str) -> bytes | None:
        if name not in self.names:
            return None
        out = bytearray()
        try:
            with self.archive.open(name) as member:
                while chunk := member.read(65536):
                    out += chunk
                    self.budget -= len(chunk)
                    if self.budget < 0:
                        raise ExtractionFailed("ARCHIVE_TOO_LARGE", "zip: uncompressed content over the cap")
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
            raise ExtractionFailed("UNREADABLE_CONTENT", f"zip: {exc}") from None
        return bytes(out)

    def matching(self, pattern: re.Pattern[str]) -> list[str]:
        def order(name: str) -> tuple[int, str]:
            digits = re.findall(r"\d+", name)
            return (int(digits[-1]) if digits else 0, name)

        return sorted((n for n in self.names if pattern.fullmatch(n)), key=order)


def _office_properties(zipped: ZipReader) -> dict[str, str]:
    data = zipped.read("docProps/core.xml")
    if not data:
        return {}
    found: dict[str, str] = {}
    for element in _parse_xml(data).iter():
        name = _local(element.tag)
        if name in ("title", "subject", "creator", "keywords", "description") and element.text:
            found[name] = clean_text(element.text)[:1000]
    return found


def _paragraph_text(data: bytes, buffer: TextBuffer, *, text_tag: str, paragraph_tag: str) -> None:
    for element in _parse_xml(data).iter():
        name = _local(element.tag)
        if name == paragraph_tag:
            buffer.add("\n")
        elif name == text_tag and element.text:
            buffer.add(element.text)
        if buffer.full:
            return


def extract_docx(fh: IO[bytes], limits: Limits) -> Extracted:
    zipped = ZipReader(fh, limits)
    buffer = TextBuffer(limits.max_chars)
    properties = _office_properties(zipped)
    for name in ["word/document.xml", *zipped.matching(re.compile(r"word/(header|footer|footnotes|endnotes)\d*\.xml"))]:
        data = zipped.read(name)
        if data:
            _paragraph_text(data, buffer, text_tag="t", paragraph_tag="p")
    return Extracted(title=properties.get("title", ""), body=buffer.text(), fields=properties, truncated=buffer.truncated)


def extract_xlsx(fh: IO[bytes], limits: Limits) -> Extracted:
    zipped = ZipReader(fh, limits)
    buffer = TextBuffer(limits.max_chars)
    properties = _office_properties(zipped)
    sheets: list[str] = []
    workbook = zipped.read("xl/workbook.xml")
    if workbook:
        sheets = [e.get("name", "") for e in _parse_xml(workbook).iter() if _local(e.tag) == "sheet"][:200]
        buffer.add(" ".join(sheets) + "\n")
    shared = zipped.read("xl/sharedStrings.xml")
    if shared:
        _paragraph_text(shared, buffer, text_tag="t", paragraph_tag="si")
    for name in zipped.matching(re.compile(r"xl/worksheets/sheet\d+\.xml")):
        if buffer.full:
            break
        data = zipped.read(name)
        if not data:
            continue
        for element in _parse_xml(data).iter():  # inline strings and numbers (shared strings are above)
            tag = _local(element.tag)
            if tag == "c" and element.get("t") == "s":
                continue
            if tag in ("t", "v") and element.text:
                buffer.add(element.text + " ")
            if buffer.full:
                break
    return Extracted(
        title=properties.get("title", ""), body=buffer.text(), fields={**properties, "sheets": sheets}, truncated=buffer.truncated
    )


def extract_pptx(fh: IO[bytes], limits: Limits) -> Extracted:
    zipped = ZipReader(fh, limits)
    buffer = TextBuffer(limits.max_chars)
    properties = _office_properties(zipped)
    for name in zipped.matching(re.compile(r"ppt/slides/slide\d+\.xml")):
        data = zipped.read(name)
        if data:
            _paragraph_text(data, buffer, text_tag="t", paragraph_tag="p")
        if buffer.full:
            break
    return Extracted(title=properties.get("title", ""), body=buffer.text(), fields=properties, truncated=buffer.truncated)


def extract_odf(fh: IO[bytes], limits: Limits) -> Extracted:
    zipped = ZipReader(fh, limits)
    buffer = TextBuffer(limits.max_chars)
    data = zipped.read("content.xml")
    if data:
        _xml_text(_parse_xml(data), buffer)
    title = ""
    meta = zipped.read("meta.xml")
    if meta:
        for element in _parse_xml(meta).iter():
            if _local(element.tag) == "title" and element.text:
                title = clean_text(element.text)[:500]
    return Extracted(title=title, body=buffer.text(), truncated=buffer.truncated)


# --------------------------------------------------------------------------------------
# PDF, images, audio, e-mail
# --------------------------------------------------------------------------------------


def extract_pdf(fh: IO[bytes], limits: Limits) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(fh)
        fields: dict[str, Any] = {"pages": len(reader.pages)}
        if reader.is_encrypted:
            return Extracted(fields={**fields, "encrypted": True})
        info = reader.metadata
        for name in ("title", "author", "subject"):
            value = getattr(info, name, None) if info else None
            if value:
                fields[name] = clean_text(str(value))[:1000]
        buffer = TextBuffer(limits.max_chars)
        for number, page in enumerate(reader.pages):
            if number >= limits.max_pdf_pages:
                buffer.truncated = True
                break
            buffer.add(page.extract_text() or "")
            buffer.add("\n")
            if buffer.full:
                break
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise ExtractionFailed("UNREADABLE_CONTENT", f"pdf: {type(exc).__name__}: {str(exc)[:200]}") from None
    return Extracted(title=fields.get("title", ""), body=buffer.text(), fields=fields, truncated=buffer.truncated)


_EXIF_TEXT_TAGS = {
    0x010E: "ImageDescription",
    0x010F: "Make",
    0x0110: "Model",
    0x0131: "Software",
    0x0132: "DateTime",
    0x013B: "Artist",
    0x8298: "Copyright",
}
_EXIF_IFD_TAGS = {0x9003: "DateTimeOriginal", 0x9286: "UserComment", 0xA434: "LensModel"}


def _exif_value(value: Any) -> str:
    if isinstance(value, bytes):
        if value[:8] in (b"ASCII\x00\x00\x00", b"UNICODE\x00", b"\x00" * 8):  # UserComment's charset prefix
            codec = "utf-16" if value[:8] == b"UNICODE\x00" else "latin-1"
            value = value[8:].decode(codec, errors="replace")
        else:
            value = value.decode("utf-8", errors="replace")
    return clean_text(str(value).strip("\x00"))[:1000]


def extract_image(fh: IO[bytes], kind: str, limits: Limits) -> Extracted:
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    fields: dict[str, Any] = {}
    try:
        with Image.open(fh, formats=[IMAGE_FORMATS[kind]]) as img:  # header only: pixels are never decoded
            fields["width"], fields["height"] = img.width, img.height
            exif = img.getexif()
            for tag, name in _EXIF_TEXT_TAGS.items():
                if exif.get(tag):
                    fields[name] = _exif_value(exif[tag])
            ifd = exif.get_ifd(0x8769)
            for tag, name in _EXIF_IFD_TAGS.items():
                if ifd.get(tag):
                    fields[name] = _exif_value(ifd[tag])
            text_chunks = getattr(img, "text", None) or {}
            for key, value in list(text_chunks.items())[:50]:
                fields[f"text:{clean_text(str(key))[:80]}"] = clean_text(str(value))[:2000]
    except Image.DecompressionBombError as exc:
        raise ExtractionFailed("IMAGE_TOO_LARGE", str(exc)[:200]) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ExtractionFailed("UNREADABLE_CONTENT", f"image: {type(exc).__name__}") from None
    body = "\n".join(f"{v}" for k, v in fields.items() if isinstance(v, str))
    return Extracted(title=fields.get("ImageDescription", ""), body=body, fields=fields)


_AUDIO_TAGS = ("title", "artist", "album", "albumartist", "genre", "date", "composer", "comment", "description")


def extract_audio(path: str) -> Extracted:
    import mutagen

    try:
        media = mutagen.File(path, easy=True)
    except (mutagen.MutagenError, ValueError, OSError, EOFError) as exc:
        raise ExtractionFailed("UNREADABLE_CONTENT", f"audio: {type(exc).__name__}") from None
    fields: dict[str, Any] = {}
    if media is not None and media.tags:
        for name in _AUDIO_TAGS:
            try:
                values = media.tags.get(name)
            except (KeyError, ValueError):
                values = None
            if values:
                fields[name] = clean_text(" ".join(str(v) for v in values))[:1000]
    if media is not None and media.info is not None:
        fields["duration_seconds"] = round(getattr(media.info, "length", 0.0) or 0.0, 3)
    body = "\n".join(v for k, v in fields.items() if isinstance(v, str))
    return Extracted(title=fields.get("title", ""), body=body, fields=fields)


def extract_email(fh: IO[bytes], limits: Limits) -> Extracted:
    from email import policy
    from email.parser import BytesParser

    data, cut = read_capped(fh, limits.max_read_bytes)
    message = BytesParser(policy=policy.default).parsebytes(data)
    fields = {
        name: clean_text(str(message.get(name, "")))[:1000] for name in ("subject", "from", "to", "date") if message.get(name)
    }
    buffer = TextBuffer(limits.max_chars)
    try:
        part = message.get_body(preferencelist=("plain", "html"))
        if part is not None:
            content = part.get_content()
            if part.get_content_subtype() == "html":
                content = extract_html(io.BytesIO(content.encode()), limits).body
            buffer.add(content)
    except (LookupError, ValueError, AttributeError):
        pass
    return Extracted(title=fields.get("subject", ""), body=buffer.text(), fields=fields, truncated=cut or buffer.truncated)


# --------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------


def extract_file(path: str, kind: str, limits: Limits) -> Extracted:
    """The text and fields of the file at ``path`` whose sniffed family is ``kind``."""
    if kind in AUDIO_KINDS:
        return extract_audio(path)
    with open(path, "rb") as fh:
        if kind in TEXT_KINDS:
            return extract_text(fh, limits)
        simple = {
            "markdown": extract_markdown,
            "json": extract_json,
            "ndjson": extract_ndjson,
            "html": extract_html,
            "xhtml": extract_html,
            "xml": extract_xml,
            "svg": extract_svg,
            "docx": extract_docx,
            "xlsx": extract_xlsx,
            "pptx": extract_pptx,
            "odt": extract_odf,
            "ods": extract_odf,
            "odp": extract_odf,
            "pdf": extract_pdf,
            "eml": extract_email,
        }
        if kind in simple:
            return simple[kind](fh, limits)
        if kind == "csv":
            return extract_csv(fh, limits)
        if kind == "tsv":
            return extract_csv(fh, limits, delimiter="\t")
        if kind in IMAGE_FORMATS:
            return extract_image(fh, kind, limits)
    return Extracted()
