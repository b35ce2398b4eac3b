"""Real files with real metadata, made by real libraries (Pillow, pypdf, zipfile, ffmpeg,
mutagen). Shared by the tests and ``bench/metadata.py``. Every identifying value is a
distinctive string so a test can grep the raw bytes for it."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

from PIL import Image, PngImagePlugin

AUTHOR = "Alice Q. Author"
SERIAL = "SN-90210-XYZ"
OWNER = "Owner McOwnerface"
SOFTWARE = "PixelTool 9.1"
COMMENT = "secret comment 4242"
TITLE = "Holiday in Paris"
GPS = (48.8584, 2.2945)  # north, east
MAKE, MODEL = "Canonical", "EOS-Test 5"
CREATED = "2023:07:14 10:20:30"
FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")

XMP = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
 xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" xmp:CreatorTool="{SOFTWARE}" xmp:CreateDate="2023-07-14T10:20:30">
<dc:creator><rdf:Seq><rdf:li>{AUTHOR}</rdf:li></rdf:Seq></dc:creator>
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{TITLE}</rdf:li></rdf:Alt></dc:title>
<xmpMM:History><rdf:Seq><rdf:li rdf:parseType="Resource"><xmpMM:action>saved</xmpMM:action></rdf:li></rdf:Seq></xmpMM:History>
</rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>""".encode()


def xmp_packet(author: str = AUTHOR, title: str = TITLE) -> bytes:
    return XMP.replace(AUTHOR.encode(), author.encode()).replace(TITLE.encode(), title.encode())


XML_BOMB_BODY = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>'
)
XMP_BOMB = (
    '<?xml version="1.0"?>' + XML_BOMB_BODY + '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">'
    "<dc:title>&lol4;</dc:title></rdf:Description></rdf:RDF></x:xmpmeta>"
).encode()


# --- images ------------------------------------------------------------------------------


def _rational(value: float) -> tuple[int, int]:
    return round(value * 10000), 10000


def gps_ifd(lat: float, lon: float) -> dict[int, object]:
    def dms(x: float) -> tuple[float, float, float]:
        d = int(x)
        m = int((x - d) * 60)
        s = round(((x - d) * 60 - m) * 60, 4)
        return (float(d), float(m), s)

    return {0: b"\x02\x02\x00\x00", 1: "N" if lat >= 0 else "S", 2: dms(abs(lat)), 3: "E" if lon >= 0 else "W", 4: dms(abs(lon))}


def make_exif(*, gps: tuple[float, float] | None = GPS, author: str = AUTHOR, **extra: object) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = MAKE
    exif[0x0110] = MODEL
    exif[0x0131] = SOFTWARE
    exif[0x013B] = author
    exif[0x0132] = CREATED
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0x9003] = CREATED
    exif_ifd[0xA430] = OWNER
    exif_ifd[0xA431] = SERIAL
    exif_ifd[0x9286] = b"ASCII\x00\x00\x00" + COMMENT.encode()
    for tag, value in extra.items():
        exif[int(tag)] = value
    if gps:
        exif.get_ifd(0x8825).update(gps_ifd(*gps))
    return exif


def _with_thumbnail(exif_bytes: bytes) -> bytes:
    """Append IFD1 with an embedded JPEG thumbnail to Pillow's EXIF (which never writes one)."""
    assert exif_bytes.startswith(b"Exif\x00\x00")
    tiff = bytearray(exif_bytes[6:])
    endian = ">" if tiff[:2] == b"MM" else "<"
    ifd0 = struct.unpack(endian + "I", tiff[4:8])[0]
    count = struct.unpack(endian + "H", tiff[ifd0 : ifd0 + 2])[0]
    next_ptr = ifd0 + 2 + 12 * count
    thumb = io.BytesIO()
    Image.new("RGB", (16, 12), (0, 200, 0)).save(thumb, "JPEG", comment=b"THUMBNAIL-" + SERIAL.encode())
    ifd1 = len(tiff) + (len(tiff) % 2)
    tiff += b"\x00" * (ifd1 - len(tiff))
    data_at = ifd1 + 2 + 3 * 12 + 4
    entries = [(0x0103, 3, 1, 6), (0x0201, 4, 1, data_at), (0x0202, 4, 1, len(thumb.getvalue()))]
    tiff += struct.pack(endian + "H", len(entries))
    for tag, typ, n, value in entries:
        tiff += struct.pack(endian + "HHI", tag, typ, n) + (
            struct.pack(endian + "HH", value, 0) if typ == 3 else struct.pack(endian + "I", value)
        )
    tiff += struct.pack(endian + "I", 0) + thumb.getvalue()
    tiff[next_ptr : next_ptr + 4] = struct.pack(endian + "I", ifd1)
    return b"Exif\x00\x00" + bytes(tiff)


def _segment(code: int, payload: bytes) -> bytes:
    return bytes([0xFF, code]) + struct.pack(">H", len(payload) + 2) + payload


def iptc_block(**datasets: str) -> bytes:
    numbers = {"by_line": 80, "caption": 120, "object_name": 5, "city": 90}
    iim = b"".join(
        b"\x1c\x02" + bytes([numbers[k]]) + struct.pack(">H", len(v.encode())) + v.encode() for k, v in datasets.items()
    )
    resource = (
        b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iim)) + iim + (b"\x00" if len(iim) % 2 else b"")
    )
    return b"Photoshop 3.0\x00" + resource


def jpeg_bytes(
    *,
    gps: tuple[float, float] | None = GPS,
    thumbnail: bool = True,
    xmp: bytes | None = XMP,
    iptc: bool = True,
    size=(64, 48),
    author: str = AUTHOR,
    title: str = TITLE,
) -> bytes:
    """A real JPEG (Pillow) with EXIF (+GPS, serials, an IFD1 thumbnail), XMP, IPTC and a comment."""
    exif = make_exif(gps=gps, author=author).tobytes()
    if xmp is XMP:
        xmp = xmp_packet(author, title)
    if thumbnail:
        exif = _with_thumbnail(exif)
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "JPEG", quality=90, comment=COMMENT.encode())
    data = out.getvalue()
    extra = _segment(0xE1, exif)
    if xmp is not None:
        extra += _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp)
    if iptc:
        extra += _segment(0xED, iptc_block(by_line=author, caption=title, city="Paris"))
    jfif_end = 2 + 2 + struct.unpack(">H", data[4:6])[0] if data[2:4] == b"\xff\xe0" else 2
    return data[:jfif_end] + extra + data[jfif_end:]


def png_bytes(*, exif: bool = True, xmp: bool = True, author: str = AUTHOR, title: str = TITLE) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", title)
    info.add_text("Author", author)
    info.add_text("Software", SOFTWARE)
    info.add_text("Comment", COMMENT, zip=True)
    info.add_itxt("Description", "Tour Eiffel \u2014 été")
    if xmp:
        info.add_itxt("XML:com.adobe.xmp", xmp_packet(author, title).decode())
    out = io.BytesIO()
    kwargs = {"exif": make_exif(author=author)} if exif else {}
    Image.new("RGBA", (40, 24), (10, 120, 220, 255)).save(out, "PNG", pnginfo=info, **kwargs)
    return out.getvalue()


def tiff_bytes(*, author: str = AUTHOR, size: tuple[int, int] = (32, 20), pages: int = 1, sub_ifds: bool = True) -> bytes:
    """An uncompressed TIFF (Pillow's own writer: it writes the Exif and GPS sub-directories)
    with descriptive IFD0 tags, XMP, serials in the Exif IFD and a GPS position."""
    info: dict[int, object] = {0x010F: MAKE, 0x0110: MODEL, 0x0131: SOFTWARE, 0x013B: author, 0x0132: CREATED}
    if sub_ifds:
        info[0x8769] = {0x9003: CREATED, 0xA430: OWNER, 0xA431: SERIAL}
        info[0x8825] = gps_ifd(*GPS)
        info[700] = xmp_packet(author, TITLE)
    out = io.BytesIO()
    frames = [Image.new("RGB", size, (1, 2, 3 + i)) for i in range(pages)]
    frames[0].save(out, "TIFF", tiffinfo=info, compression="raw", save_all=pages > 1, append_images=frames[1:])
    return out.getvalue()


def webp_bytes(*, metadata: bool = True) -> bytes:
    out = io.BytesIO()
    extra = {"exif": make_exif(), "xmp": XMP} if metadata else {}
    Image.new("RGBA", (20, 10), (1, 2, 3, 4)).save(out, "WEBP", lossless=True, **extra)
    return out.getvalue()


# --- documents ---------------------------------------------------------------------------


def pdf_bytes(
    *, pages: int = 2, xmp: bytes | None = XMP, incremental_old_author: bool = False, author: str = AUTHOR, title: str = TITLE
) -> bytes:
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, NameObject

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(200, 300)
    writer.add_metadata(
        {
            "/Title": title,
            "/Author": author,
            "/Creator": SOFTWARE,
            "/Producer": "pypdf",
            "/CreationDate": "D:20230714102030+02'00'",
        }
    )
    if xmp is XMP:
        xmp = xmp_packet(author, title)
    if xmp is not None:
        stream = DecodedStreamObject()
        stream.set_data(xmp)
        stream[NameObject("/Type")] = NameObject("/Metadata")
        stream[NameObject("/Subtype")] = NameObject("/XML")
        writer._root_object[NameObject("/Metadata")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    if not incremental_old_author:
        return out.getvalue()
    # An incremental update: the old /Author stays in the file's first revision.
    writer2 = PdfWriter(io.BytesIO(out.getvalue()), incremental=True)
    writer2.add_metadata({"/Author": "Newer Person"})
    out2 = io.BytesIO()
    writer2.write(out2)
    return out2.getvalue()


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
    "</Types>"
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" '
    'Target="docProps/core.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" '
    'Target="docProps/app.xml"/></Relationships>'
)
DOCUMENT = (
    '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body><w:p><w:r><w:t>Hello metadata</w:t></w:r></w:p></w:body></w:document>"
)


def core_xml(*, prefix: str = "", author: str = AUTHOR, title: str = TITLE) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + prefix + "<cp:coreProperties "
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{title if not prefix else '&lol4;'}</dc:title><dc:creator>{author}</dc:creator>"
        f"<cp:lastModifiedBy>{OWNER}</cp:lastModifiedBy><cp:revision>7</cp:revision>"
        '<dcterms:created xsi:type="dcterms:W3CDTF">2023-07-14T10:20:30Z</dcterms:created>'
        '<dcterms:modified xsi:type="dcterms:W3CDTF">2023-07-15T08:00:00Z</dcterms:modified>'
        "</cp:coreProperties>"
    )


APP_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" '
    'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
    f"<Application>{SOFTWARE}</Application><Company>Acme Secret Corp</Company><Pages>3</Pages>"
    "<TotalTime>42</TotalTime></Properties>"
)


def docx_bytes(
    *, core: str | None = None, extra: dict[str, bytes] | None = None, author: str = AUTHOR, title: str = TITLE
) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", RELS)
        archive.writestr("word/document.xml", DOCUMENT)
        archive.writestr("docProps/core.xml", core if core is not None else core_xml(author=author, title=title))
        archive.writestr("docProps/app.xml", APP_XML)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return out.getvalue()


def docx_bomb() -> bytes:
    return docx_bytes(core=core_xml(prefix=XML_BOMB_BODY.replace("<!DOCTYPE lolz", "<!DOCTYPE cp:coreProperties")))


def docx_zip_bomb(inflated: int = 64 * 1024 * 1024) -> bytes:
    """A core.xml part that inflates to ``inflated`` bytes from a few kilobytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", RELS)
        archive.writestr("word/document.xml", DOCUMENT)
        archive.writestr("docProps/core.xml", b"<" + b" " * inflated + b">")
    return out.getvalue()


# --- audio and video (ffmpeg + mutagen) ------------------------------------------------------


def ffmpeg_media(path: Path, kind: str, *, seconds: float = 1.0) -> Path:
    """A real audio/video file from ffmpeg's synthetic sources, with tags."""
    assert FFMPEG, "ffmpeg is required"
    cmd = [FFMPEG, "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    codec = {"mp3": ["-c:a", "libmp3lame"], "flac": ["-c:a", "flac"], "ogg": ["-c:a", "libvorbis"], "m4a": ["-c:a", "aac"]}
    if kind == "mp4":
        cmd[5:5] = ["-f", "lavfi", "-i", f"testsrc=size=64x48:rate=10:duration={seconds}"]
        codec["mp4"] = ["-map", "0:v", "-map", "1:a", "-c:v", "mpeg4", "-c:a", "aac", "-metadata", "location=+48.8584+002.2945/"]
    meta = ["-metadata", f"title={TITLE}", "-metadata", f"artist={AUTHOR}", "-metadata", f"comment={COMMENT}"]
    subprocess.run([*cmd, *codec[kind], *meta, str(path)], check=True, timeout=60)
    if kind == "ogg":
        _ensure_vorbis_encoder(path)
    return path


def _ensure_vorbis_encoder(path: Path) -> None:
    import mutagen

    media = mutagen.File(path)
    media.tags["encoder"] = [SOFTWARE]
    media.save()
