"""Real files made by real libraries (Pillow, pypdf, openpyxl, python-docx, ffmpeg) for the
conversion tests, and small helpers to read outputs back."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

from PIL import Image

HAS_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
HAS_SOFFICE = shutil.which("soffice") is not None


def jpeg_with_exif(size=(300, 200), orientation: int = 6, color=(200, 30, 30)) -> bytes:
    image = Image.new("RGB", size, color)
    image.paste((20, 200, 20), (0, 0, size[0] // 2, size[1] // 2))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"  # Make
    exif[0x0110] = "Model 7"
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def png_rgba(size=(120, 80)) -> bytes:
    image = Image.new("RGBA", size, (0, 0, 255, 0))
    image.paste((255, 0, 0, 255), (10, 10, 60, 40))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def image_bytes(fmt: str, size=(64, 48)) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, (10, 120, 220))
    image.save(out, {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP", "tiff": "TIFF", "ico": "ICO"}[fmt])
    return out.getvalue()


def animated_gif(frames: int = 4, size=(40, 30)) -> bytes:
    images = [Image.new("RGB", size, (i * 60 % 255, 50, 200 - i * 40)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return out.getvalue()


def pixel_flood_png(side: int = 20000) -> bytes:
    """A tiny PNG declaring side x side pixels (a decompression bomb)."""
    image = Image.new("1", (side, side))
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def pdf_bytes(pages: int = 3, size=(200, 300), texts: list[str] | None = None) -> bytes:
    """A real multi-page PDF with a text layer (pypdf writes text content streams)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    font_ref = writer._add_object(font)
    for index in range(pages):
        page = writer.add_blank_page(width=size[0], height=size[1])
        text = (texts[index] if texts else f"Page number {index + 1}").replace("(", "").replace(")", "")
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 20 {size[1] - 40} Td ({text}) Tj ET".encode())
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font_ref})})
    writer.add_metadata({"/Title": "Sample document", "/Author": "Tests"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_with_actions() -> bytes:
    """A one-page PDF whose annotations and catalogue carry every kind of action a viewer may
    run: JavaScript, Launch, SubmitForm, GoToR, a file: URI, a mouse-over trigger, an
    attachment, an open action and document-level scripts; plus one http link and one
    internal link, which are harmless."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, DictionaryObject, FloatObject, NameObject, NumberObject, StreamObject
    from pypdf.generic import TextStringObject as Text

    def name(value: str) -> NameObject:
        return NameObject(value)

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(pdf_bytes(pages=1, size=(300, 600), texts=["Page with actions"]))))
    page = writer.pages[0]
    script = DictionaryObject({name("/S"): name("/JavaScript"), name("/JS"): Text("app.alert('ACTION-MARKER')")})
    attached = StreamObject()
    attached._data = b"EMBEDDED-FILE-MARKER"
    attached[name("/Type")] = name("/EmbeddedFile")
    spec = DictionaryObject(
        {
            name("/Type"): name("/Filespec"),
            name("/F"): Text("x.exe"),
            name("/EF"): DictionaryObject({name("/F"): writer._add_object(attached)}),
        }
    )

    def link(index: int, **entries) -> DictionaryObject:
        box = ArrayObject([FloatObject(0), FloatObject(index * 60), FloatObject(300), FloatObject(index * 60 + 50)])
        annot = DictionaryObject({name("/Type"): name("/Annot"), name("/Subtype"): name("/Link"), name("/Rect"): box})
        annot.update({name(f"/{k}"): v for k, v in entries.items()})
        return annot

    def action(kind: str, **entries) -> DictionaryObject:
        return DictionaryObject({name("/S"): name(f"/{kind}"), **{name(f"/{k}"): v for k, v in entries.items()}})

    annots = [
        link(0, A=script),
        link(1, A=action("URI", URI=Text("file:///etc/passwd"))),
        link(2, A=action("URI", URI=Text("https://example.com/safe")), AA=DictionaryObject({name("/E"): script})),
        link(3, A=action("GoToR", F=Text("../../media/org/x.pdf"), D=ArrayObject([NumberObject(0), name("/Fit")]))),
        link(4, A=action("SubmitForm", F=Text("http://127.0.0.1:9/"))),
        link(5, A=action("Launch", F=Text("cmd.exe"), Next=script)),
        link(6, A=action("URI", URI=Text("https://example.com/kept"))),
        link(7, Dest=ArrayObject([page.indirect_reference, name("/Fit")])),
    ]
    attachment = DictionaryObject(
        {name("/Type"): name("/Annot"), name("/Subtype"): name("/FileAttachment"), name("/FS"): writer._add_object(spec)}
    )
    attachment[name("/Rect")] = ArrayObject([FloatObject(0), FloatObject(500), FloatObject(20), FloatObject(520)])
    page[name("/Annots")] = ArrayObject([writer._add_object(a) for a in [*annots, attachment]])
    page[name("/AA")] = DictionaryObject({name("/O"): script})
    writer._root_object[name("/OpenAction")] = script
    document_script = DictionaryObject({name("/S"): name("/JavaScript"), name("/JS"): Text("app.alert('DOCUMENT-MARKER')")})
    scripts = DictionaryObject({name("/Names"): ArrayObject([Text("s"), writer._add_object(document_script)])})
    writer._root_object[name("/Names")] = DictionaryObject({name("/JavaScript"): writer._add_object(scripts)})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_with_embedded_image_bytes(data: bytes) -> bytes:
    """A DOCX whose one picture holds ``data`` whatever it is (named image1.png): LibreOffice
    reads a picture by its bytes, so a PDF there is imported as a PDF."""
    import zipfile

    import docx

    picture = io.BytesIO()
    Image.new("RGB", (30, 30), (0, 0, 255)).save(picture, "PNG")
    document = docx.Document()
    document.add_paragraph("Text before the picture")
    document.add_picture(io.BytesIO(picture.getvalue()))
    document.add_paragraph("Text after the picture")
    made = io.BytesIO()
    document.save(made)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(made.getvalue())) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            target.writestr(entry, data if entry.filename.startswith("word/media/") else source.read(entry.filename))
    return out.getvalue()


def pdf_pages(data: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(data)).pages)


def xlsx_bytes(rows: list[list], sheet: str = "People", extra_sheet: bool = True) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    ws.title = sheet
    for row in rows:
        ws.append(row)
    if extra_sheet:
        other = book.create_sheet("Other")
        other.append(["x"])
        other.append([42])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def docx_bytes(text: str = "Hello from a DOCX file", paragraphs: int = 3) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Quarterly report", level=1)
    for index in range(paragraphs):
        document.add_paragraph(f"{text} — paragraph {index + 1}.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def docx_with_external_image(url: str) -> bytes:
    """A DOCX whose picture is an external link (TargetMode="External") to ``url``."""
    base = docx_bytes("External image inside")
    src = zipfile.ZipFile(io.BytesIO(base))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "word/_rels/document.xml.rels":
                data = data.replace(
                    b"</Relationships>",
                    b'<Relationship Id="rIdExt1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image"'
                    b' Target="' + url.encode() + b'" TargetMode="External"/></Relationships>',
                )
            if item.filename == "word/document.xml":
                drawing = (
                    b'<w:p><w:r><w:drawing><wp:inline xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing">'
                    b'<wp:extent cx="952500" cy="952500"/><wp:docPr id="1" name="Linked"/>'
                    b'<a:graphic xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
                    b'<a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture">'
                    b'<pic:pic xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture">'
                    b'<pic:nvPicPr><pic:cNvPr id="1" name="Linked"/><pic:cNvPicPr/></pic:nvPicPr>'
                    b'<pic:blipFill><a:blip xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" r:link="rIdExt1"/>'
                    b"<a:stretch><a:fillRect/></a:stretch></pic:blipFill>"
                    b'<pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="952500" cy="952500"/></a:xfrm>'
                    b'<a:prstGeom prst="rect"><a:avLst/></a:prstGeom></pic:spPr></pic:pic></a:graphicData></a:graphic>'
                    b"</wp:inline></w:drawing></w:r></w:p>"
                )
                data = data.replace(b"<w:sectPr", drawing + b"<w:sectPr", 1)
            dst.writestr(item, data)
    return out.getvalue()


def ffmpeg_make(args: list[str], suffix: str, tmp: Path) -> bytes:
    path = tmp / f"made{suffix}"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args, str(path)], check=True, timeout=60)
    return path.read_bytes()


def audio_bytes(tmp: Path, fmt: str = "wav", seconds: float = 2.0) -> bytes:
    codec = {"wav": [], "mp3": ["-c:a", "libmp3lame"], "ogg": ["-c:a", "libvorbis"], "flac": [], "m4a": ["-c:a", "aac"]}[fmt]
    return ffmpeg_make(
        ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-metadata", "title=Test tone", *codec],
        f".{fmt}",
        tmp,
    )


def video_bytes(tmp: Path, fmt: str = "mp4", seconds: float = 2.0, size: str = "160x120") -> bytes:
    codec = (
        ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"]
        if fmt == "mp4"
        else ["-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libopus"]
    )
    return ffmpeg_make(
        [
            "-f",
            "lavfi",
            "-i",
            f"testsrc=duration={seconds}:size={size}:rate=10",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=300:duration={seconds}",
            "-shortest",
            *codec,
        ],
        f".{fmt}",
        tmp,
    )


def probe(path_or_bytes: bytes | Path, tmp: Path | None = None, suffix: str = ".bin") -> dict:
    path = path_or_bytes
    if isinstance(path_or_bytes, bytes):
        assert tmp is not None
        path = tmp / f"probe{suffix}"
        Path(path).write_bytes(path_or_bytes)
    done = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration,format_name:stream=codec_type,codec_name,width,height,sample_rate",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return json.loads(done.stdout)
