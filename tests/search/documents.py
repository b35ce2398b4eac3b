"""Real documents of each family, made by the real libraries (and ffmpeg) in the test run."""

from __future__ import annotations

import io
import subprocess
import tempfile
import zipfile
from email.message import EmailMessage
from pathlib import Path

from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject


def pdf_with_text(pages: list[str], title: str = "") -> bytes:
    """A PDF whose pages draw ``pages`` with the standard Helvetica font (pypdf only)."""
    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    for text in pages:
        page = writer.add_blank_page(width=612, height=792)
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1"))
        page.replace_contents(stream)
    if title:
        writer.add_metadata({"/Title": title})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes(paragraphs: list[str], title: str = "") -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if title:
        document.core_properties.title = title
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def xlsx_bytes(rows: list[list[object]], sheet: str = "Sheet1") -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    for row in rows:
        worksheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def jpeg_with_exif(description: str, artist: str, model: str = "Fieldcam 9") -> bytes:
    image = Image.new("RGB", (32, 24), (10, 150, 60))
    exif = image.getexif()
    exif[0x010E] = description
    exif[0x013B] = artist
    exif[0x0110] = model
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def mp3_with_tags(title: str, artist: str, album: str = "") -> bytes:
    """A real MP3 (ffmpeg: 0.3 s of a sine) with ID3 tags written by ffmpeg."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "tone.mp3")
        metadata = ["-metadata", f"title={title}", "-metadata", f"artist={artist}"]
        if album:
            metadata += ["-metadata", f"album={album}"]
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.3", *metadata,
             "-f", "mp3", "-y", str(out)],
            check=True,
            timeout=60,
        )  # fmt: skip
        return out.read_bytes()


def eml_bytes(subject: str, body: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Alice <alice@example.com>"
    message["To"] = "bob@example.com"
    message["Subject"] = subject
    message["Date"] = "Tue, 01 Apr 2025 10:00:00 +0000"
    message.set_content(body)
    return message.as_bytes()


def billion_laughs(levels: int = 10) -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    return (f'<?xml version="1.0"?>\n<!DOCTYPE lolz [{"".join(entities)}]>\n<lolz>&lol{levels - 1};</lolz>').encode()


def external_entity_xml(path: str = "/etc/passwd") -> bytes:
    return f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{path}">]><r>&x;</r>'.encode()


def zip_bomb_docx(inflated_bytes: int = 200 * 1024 * 1024) -> bytes:
    """A DOCX whose document.xml inflates to ``inflated_bytes`` (a few hundred KB compressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr(
            "[Content_Types].xml",
            b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        )
        archive.writestr("_rels/.rels", b"<Relationships/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(
                b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:t>'
            )
            chunk = b" " * (1024 * 1024)
            for _ in range(inflated_bytes // len(chunk)):
                member.write(chunk)
            member.write(b"</w:t></w:p></w:body></w:document>")
    return out.getvalue()
