"""Unit tests: display names and storage slugs (SECURITY #8), type from the bytes (SECURITY #6, #7)."""

from __future__ import annotations

import io
import json
import re
import struct
import unicodedata
import wave
import zipfile
from email.message import EmailMessage

import pytest
from mutagen.id3 import ID3, TIT2
from PIL import Image
from pypdf import PdfWriter

from fileconvert.names import MAX_NAME_BYTES, extension_of, sanitize_filename, storage_slug
from uploads.sniff import ACTIVE_KINDS, sniff

SLUG = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


# --- sanitize_filename -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("../../x", "x"),
        ("..\\x", "x"),
        ("..\\..\\windows\\system32\\drivers\\etc\\hosts", "hosts"),
        ("/abs", "abs"),
        ("/etc/passwd", "passwd"),
        ("C:\\x", "x"),
        ("C:\\", "file"),
        ("C:x.txt", "C_x.txt"),
        ("file.txt:ads", "file.txt_ads"),  # NTFS alternate data stream
        ("a.jpg.php", "a.jpg.php"),  # kept as display text; the type comes from the bytes
        ("a%00.jpg", "a%00.jpg"),  # never percent-decoded
        ("a%2F..%2Fb.jpg", "a%2F..%2Fb.jpg"),
        ("a\x00.jpg", "a.jpg"),  # a real NUL
        ("．．／．．／etc／passwd", "passwd"),  # fullwidth, NFKC-normalised before splitting
        ("．．＼x.txt", "x.txt"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),  # RTLO
        ("a\u200bb.txt", "ab.txt"),  # zero-width space
        ("\ufeffbom.txt", "bom.txt"),
        ("a\u2028b.txt", "ab.txt"),  # line separator
        ("CON", "_CON"),
        ("CON.txt", "_CON.txt"),
        ("con.tar.gz", "_con.tar.gz"),
        ("nul", "_nul"),
        ("LPT1.log", "_LPT1.log"),
        ("COM¹.txt", "_COM1.txt"),  # NFKC turns the superscript into a reserved name
        ("CONSOLE.txt", "CONSOLE.txt"),
        ('a"b\r\nc;d.txt', 'a"bc;d.txt'),  # CR LF stripped; quotes stay display text (headers use filename*)
        ("x\ty.txt", "x y.txt"),
        ("  spaced   out  .pdf  ", "spaced out .pdf"),
        ("trailing.dots...", "trailing.dots"),
        ("ﬁle.pdf", "file.pdf"),  # ligature, NFKC
        ("", "file"),
        (None, "file"),
        ("..", "file"),
        ("...", "file"),
        ("../..", "file"),
        ("/", "file"),
        ("\x00\x01\x02", "file"),
        ("résumé.pdf", "résumé.pdf"),
        ("請求書.pdf", "請求書.pdf"),
    ],
)
def test_sanitize_filename(raw, expected):
    assert sanitize_filename(raw) == expected


HOSTILE = [
    "../../x",
    "..\\x",
    "/abs",
    "C:\\",
    "a.jpg.php",
    "a%00.jpg",
    "a\x00.jpg",
    "．．／．．／x",
    "x\u202egnp.js",
    "a\u200b\u200c\u200d\u2060b",
    "CON",
    "CON.txt",
    '"; filename="evil.html',
    "a\r\nContent-Type: text/html\r\n\r\n<script>",
    "x" * 10_000,
    "é" * 10_000 + ".txt",
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_sanitised_names_are_safe(raw):
    name = sanitize_filename(raw)
    assert name
    assert "/" not in name and "\\" not in name
    assert name not in (".", "..")
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name)
    assert name == unicodedata.normalize("NFKC", name)
    assert sanitize_filename(name) == name  # idempotent


@pytest.mark.parametrize("raw", HOSTILE)
def test_storage_slug_is_ascii(raw):
    slug = storage_slug(sanitize_filename(raw))
    assert SLUG.match(slug), slug
    assert not slug.startswith((".", "-")) and not slug.endswith((".", "-"))
    assert slug not in (".", "..")


def test_long_name_keeps_its_extension():
    name = sanitize_filename("a" * 10_000 + ".pdf")
    assert len(name.encode("utf-8")) == MAX_NAME_BYTES
    assert name.endswith(".pdf") and set(name[:-4]) == {"a"}


def test_long_name_without_extension_is_cut():
    assert sanitize_filename("b" * 10_000) == "b" * MAX_NAME_BYTES


def test_long_extension_is_not_preserved_at_any_cost():
    name = sanitize_filename("x." + "y" * 400)
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert name.startswith("x.")


@pytest.mark.parametrize("char", ["é", "€", "請", "😀"])  # 2, 3, 3 and 4 UTF-8 bytes
@pytest.mark.parametrize("ext", [".txt", ".pdf", ""])
def test_multibyte_truncation_never_splits_a_character(char, ext):
    name = sanitize_filename(char * 1000 + ext)
    encoded = name.encode("utf-8")
    assert len(encoded) <= MAX_NAME_BYTES
    assert len(encoded) > MAX_NAME_BYTES - len(char.encode("utf-8")) - len(ext)  # as long as it can be
    assert name.endswith(ext)
    stem = name[: len(name) - len(ext)] if ext else name
    assert set(stem) == {char}
    assert "\ufffd" not in name


def test_multibyte_extension_is_kept():
    name = sanitize_filename("n" * 1000 + ".日本語")
    assert name.endswith(".日本語") and len(name.encode("utf-8")) <= MAX_NAME_BYTES


def test_default_is_used_for_empty_names():
    assert sanitize_filename("../", default="attachment-1.pdf") == "attachment-1.pdf"
    assert sanitize_filename("", default="") == ""


@pytest.mark.parametrize(
    "name,slug",
    [
        ("report.pdf", "report.pdf"),
        ("résumé final.pdf", "resume-final.pdf"),
        ("請求書.pdf", "pdf"),
        ("請求書", "file"),
        ('a"b;c.txt', "a-b-c.txt"),
        ("..hidden", "hidden"),
        ("-dash-", "dash"),
        ("a%00.jpg", "a-00.jpg"),
        ("a.jpg.php", "a.jpg.php"),
    ],
)
def test_storage_slug(name, slug):
    assert storage_slug(name) == slug


def test_storage_slug_is_at_most_100_characters():
    slug = storage_slug("a" * 500 + ".pdf")
    assert SLUG.match(slug) and len(slug) <= 100


@pytest.mark.parametrize("name,ext", [("a.PDF", "pdf"), ("a.tar.gz", "gz"), ("noext", ""), ("a.", ""), ("a." + "x" * 11, "")])
def test_extension_of(name, ext):
    assert extension_of(name) == ext


# --- sniff: real files ------------------------------------------------------------------------------------


def image(fmt: str, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (16, 8), 120).save(out, fmt)
    return out.getvalue()


def pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=100, height=100)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zip_of(entries: dict[str, bytes], *, stored_first: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        if stored_first:
            zf.writestr(zipfile.ZipInfo(stored_first), entries[stored_first], compress_type=zipfile.ZIP_STORED)
        for name, data in entries.items():
            if name != stored_first:
                zf.writestr(name, data)
    return out.getvalue()


CONTENT_TYPES = b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'


def docx() -> bytes:
    return zip_of(
        {
            "[Content_Types].xml": CONTENT_TYPES,
            "_rels/.rels": b"<Relationships/>",
            "word/document.xml": b"<w:document><w:body><w:p/></w:body></w:document>",
        }
    )


def xlsx() -> bytes:
    return zip_of({"[Content_Types].xml": CONTENT_TYPES, "xl/workbook.xml": b"<workbook/>", "xl/worksheets/sheet1.xml": b"<x/>"})


def odt() -> bytes:
    return zip_of(
        {"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<office:document-content/>"},
        stored_first="mimetype",
    )


def wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 800)
    return out.getvalue()


def mp3_with_id3() -> bytes:
    out = io.BytesIO(b"\xff\xfb\x90\x64" + b"\x00" * 413)  # one MPEG-1 Layer III frame
    tags = ID3()
    tags.add(TIT2(encoding=3, text="A song"))
    tags.save(out)
    return out.getvalue()


def mp3_bare_frame() -> bytes:
    return b"\xff\xfb\x90\x64" + b"\x00" * 413


def flac() -> bytes:
    streaminfo = struct.pack(">HH", 4096, 4096) + b"\x00" * 6 + b"\x0a\xc4\x42\xf0" + b"\x00" * 4 + b"\x00" * 16
    return b"fLaC" + bytes([0x80]) + len(streaminfo).to_bytes(3, "big") + streaminfo


def ogg() -> bytes:
    return b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x1e\x01vorbis" + b"\x00" * 32


def mp4(brand: bytes = b"isom") -> bytes:
    ftyp = b"ftyp" + brand + b"\x00\x00\x02\x00" + b"isomiso2avc1mp41"
    return struct.pack(">I", len(ftyp) + 4) + ftyp + struct.pack(">I", 8) + b"free"


def eml() -> bytes:
    message = EmailMessage()
    message["From"] = "a@example.com"
    message["To"] = "b@example.com"
    message["Subject"] = "hello"
    message.set_content("body")
    return message.as_bytes()


SAMPLES = [
    ("png", image("PNG"), "x.bin", "image/png"),
    ("jpeg", image("JPEG"), "x.bin", "image/jpeg"),
    ("gif", image("GIF"), "x.bin", "image/gif"),
    ("webp", image("WEBP"), "x.bin", "image/webp"),
    ("bmp", image("BMP"), "x.bin", "image/bmp"),
    ("tiff", image("TIFF"), "x.bin", "image/tiff"),
    ("ico", image("ICO"), "x.bin", "image/vnd.microsoft.icon"),
    ("pdf", pdf(), "x.bin", "application/pdf"),
    ("zip", zip_of({"a.txt": b"hello"}), "x.docx", "application/zip"),
    ("docx", docx(), "x.zip", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("xlsx", xlsx(), "x.zip", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("odt", odt(), "x.zip", "application/vnd.oasis.opendocument.text"),
    ("wav", wav(), "x.bin", "audio/wav"),
    ("mp3", mp3_with_id3(), "x.bin", "audio/mpeg"),
    ("mp3", mp3_bare_frame(), "x.mp3", "audio/mpeg"),
    ("flac", flac(), "x.bin", "audio/flac"),
    ("ogg", ogg(), "x.bin", "audio/ogg"),
    ("mp4", mp4(), "x.bin", "video/mp4"),
    ("m4a", mp4(b"M4A "), "x.bin", "audio/mp4"),
    ("html", b"<!DOCTYPE html><html><body>hi</body></html>", "x.png", "text/html"),
    ("html", b"\xef\xbb\xbf  <html><body>bom</body></html>", "x.txt", "text/html"),
    ("html", b"<p>hello</p><script>alert(1)</script>", "x.jpg", "text/html"),
    (
        "html",
        b"<!-- saved from url=(0014)about:internet -->\n<html><body><img src=x onerror=alert(1)></body></html>",
        "x",
        "text/html",
    ),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "x.png", "image/svg+xml"),
    ("svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "x.png", "image/svg+xml"),
    (
        "svg",
        b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n<svg/>',
        "x.txt",
        "image/svg+xml",
    ),
    ("svg", b"<!-- made by hand -->\n<svg onload='alert(1)'/>", "x.txt", "image/svg+xml"),
    ("xml", b'<?xml version="1.0"?><root><a>1</a></root>', "x.txt", "application/xml"),
    ("xml", b"<root><a>1</a></root>", "x.xml", "application/xml"),
    ("json", json.dumps({"a": [1, 2, {"b": None}]}).encode(), "x.txt", "application/json"),
    ("json", b"[1, 2, 3]", "x", "application/json"),
    ("csv", b"name,amount\nalice,10\nbob,20\n", "x.csv", "text/csv"),
    ("eml", eml(), "x.txt", "message/rfc822"),
    ("eml", eml(), "x.eml", "message/rfc822"),
    ("eml", b"From: a@example.com\nSubject: caf\xe9\n\nLatin-1 8-bit body \xe9\n", "x", "message/rfc822"),
    ("php", b"<?php echo 1; ?>", "x.png", "text/x-php"),
    ("text", b"just some words\nand more\n", "x.txt", "text/plain"),
    ("text", b"just some words", "x.png", "text/plain"),
    ("text", "€".encode() * 4000, "x.txt", "text/plain"),  # a character cut at the 8 KB sample edge
    ("empty", b"", "x.png", "application/x-empty"),
    ("binary", bytes(range(256)) * 4, "x.png", "application/octet-stream"),
    ("binary", b"\x00\x01\x02 not text \x00", "x.txt", "application/octet-stream"),
]


@pytest.mark.parametrize(
    "kind,data,name,mime", SAMPLES, ids=[f"{i}-{kind}-{name}" for i, (kind, _d, name, _m) in enumerate(SAMPLES)]
)
def test_sniff(kind, data, name, mime):
    found = sniff(io.BytesIO(data), name)
    assert (found.kind, found.mime) == (kind, mime)


def test_docx_needs_its_content_types_part():
    # Without [Content_Types].xml a word/ folder is just a ZIP.
    assert sniff(io.BytesIO(zip_of({"word/document.xml": b"<w/>"})), "x.docx").kind == "zip"


def test_odt_with_a_bogus_mimetype_is_zip():
    data = zip_of({"mimetype": b"application/x-evil", "content.xml": b"<x/>"}, stored_first="mimetype")
    assert sniff(io.BytesIO(data), "x.odt").kind == "zip"


def test_corrupt_zip_is_zip():
    data = docx()
    assert sniff(io.BytesIO(data[: len(data) // 2]), "x.docx").kind == "zip"


@pytest.mark.parametrize(
    "data,kind",
    [
        (image("JPEG") + b"<html><script>alert(1)</script></html>", "jpeg"),
        (image("GIF") + b"*/=alert(1);", "gif"),
        (pdf() + zip_of({"evil.html": b"<script>x</script>"}), "pdf"),
        (image("PNG") + b"<?php system($_GET['c']); ?>", "png"),
    ],
)
def test_polyglots_resolve_to_their_first_bytes(data, kind):
    assert sniff(io.BytesIO(data), "x.html").kind == kind


def test_the_name_never_beats_the_magic_number():
    png = image("PNG")
    for name in ("x.html", "x.svg", "x.pdf", "x.eml", "x.json", "x.csv"):
        assert sniff(io.BytesIO(png), name).kind == "png"


@pytest.mark.parametrize("data", [image("PNG"), b"plain words " * 1000, eml()])
def test_sniff_reads_from_the_start_and_rewinds(data):
    stream = io.BytesIO(data)
    stream.seek(100)
    first = sniff(stream, "x")
    assert stream.tell() == 0
    assert sniff(stream, "x") == first


@pytest.mark.parametrize(
    "data,active",
    [
        (b"<html><body>x</body></html>", True),
        (b"<svg onload='x'/>", True),
        (b'<?xml version="1.0"?><a/>', True),
        (b"plain words", False),
        (b'{"a": 1}', False),
    ],
)
def test_active_content(data, active):
    found = sniff(io.BytesIO(data), "x.png")
    assert found.is_active_content is active
    assert (found.kind in ACTIVE_KINDS) is active
