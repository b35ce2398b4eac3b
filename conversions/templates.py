"""Small valid example files of the office and media formats, made by our code (the format
catalogue's ``GET /api/formats/{fmt}/template``): office documents written as their XML
packages (no office suite needed), audio and video encoded by ffmpeg from a generated tone
and test pattern when ffmpeg is installed (else ``None``: the catalogue answers 404, and
those formats are not in the capability graph either). Each is made once per process."""

from __future__ import annotations

import io
import logging
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

TITLE = "fileconvert example"
LINES = ("This is a small example document made by fileconvert.", "Second paragraph.")
ROWS = (("name", "count"), ("apples", 3), ("pears", 5))

_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
logger = logging.getLogger(__name__)


def _package(parts: dict[str, str], *, mimetype: str | None = None) -> bytes:
    """A ZIP package; ODF's ``mimetype`` first and stored, as the standard asks."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if mimetype is not None:
            archive.writestr(zipfile.ZipInfo("mimetype"), mimetype, compress_type=zipfile.ZIP_STORED)
        for name, text in parts.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), text, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


# --- Office Open XML ---------------------------------------------------------------------

_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument"


def _content_types(overrides: dict[str, str]) -> str:
    items = "".join(f'<Override PartName="{name}" ContentType="{kind}"/>' for name, kind in overrides.items())
    return (
        f'{_XML}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        f'<Default Extension="xml" ContentType="application/xml"/>{items}'
        '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        "</Types>"
    )


def _rels(*targets: tuple[str, str]) -> str:
    items = "".join(f'<Relationship Id="rId{i}" Type="{kind}" Target="{target}"/>' for i, (kind, target) in enumerate(targets, 1))
    return f'{_XML}<Relationships xmlns="{_PKG_REL}">{items}</Relationships>'


def _core() -> str:
    return (
        f'{_XML}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>{TITLE}</dc:title><dc:creator>fileconvert</dc:creator></cp:coreProperties>"
    )


def _root_rels(main: str) -> str:
    return _rels((f"{_REL}/officeDocument", main), (f"{_PKG_REL}/metadata/core-properties", "docProps/core.xml"))


def docx() -> bytes:
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = f'<w:p><w:pPr><w:pStyle w:val="Title"/></w:pPr><w:r><w:t>{TITLE}</w:t></w:r></w:p>'
    body += "".join(f"<w:p><w:r><w:t>{escape(line)}</w:t></w:r></w:p>" for line in LINES)
    return _package(
        {
            "[Content_Types].xml": _content_types({"/word/document.xml": f"{_CT}.wordprocessingml.document.main+xml"}),
            "_rels/.rels": _root_rels("word/document.xml"),
            "docProps/core.xml": _core(),
            "word/document.xml": f'{_XML}<w:document xmlns:w="{w}"><w:body>{body}<w:sectPr/></w:body></w:document>',
        }
    )


def pptx() -> bytes:
    """One slide with a title and a line of text; the master, layout and theme a reader needs."""
    p, a = "http://schemas.openxmlformats.org/presentationml/2006/main", "http://schemas.openxmlformats.org/drawingml/2006/main"
    ns = f'xmlns:a="{a}" xmlns:r="{_REL}" xmlns:p="{p}"'
    empty_tree = (
        '<p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr>'
        '<p:grpSpPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="0" cy="0"/>'
        '<a:chOff x="0" y="0"/><a:chExt cx="0" cy="0"/></a:xfrm></p:grpSpPr>'
    )

    def box(shape_id: int, name: str, y: int, text: str, size: int) -> str:
        return (
            f'<p:sp><p:nvSpPr><p:cNvPr id="{shape_id}" name="{name}"/><p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr>'
            f'<p:spPr><a:xfrm><a:off x="685800" y="{y}"/><a:ext cx="7772400" cy="1143000"/></a:xfrm>'
            '<a:prstGeom prst="rect"><a:avLst/></a:prstGeom></p:spPr>'
            f'<p:txBody><a:bodyPr/><a:lstStyle/><a:p><a:r><a:rPr lang="en-US" sz="{size}"/><a:t>{escape(text)}</a:t></a:r></a:p>'
            "</p:txBody></p:sp>"
        )

    slide = (
        f"{_XML}<p:sld {ns}><p:cSld><p:spTree>{empty_tree}"
        f"{box(2, 'Title', 914400, TITLE, 4000)}{box(3, 'Text', 2286000, LINES[0], 2000)}"
        "</p:spTree></p:cSld><p:clrMapOvr><a:masterClrMapping/></p:clrMapOvr></p:sld>"
    )
    layout = (
        f'{_XML}<p:sldLayout {ns} type="blank"><p:cSld name="Blank"><p:spTree>{empty_tree}</p:spTree></p:cSld>'
        "<p:clrMapOvr><a:masterClrMapping/></p:clrMapOvr></p:sldLayout>"
    )
    master = (
        f'{_XML}<p:sldMaster {ns}><p:cSld><p:bg><p:bgRef idx="1001"><a:schemeClr val="bg1"/></p:bgRef></p:bg>'
        f"<p:spTree>{empty_tree}</p:spTree></p:cSld>"
        '<p:clrMap bg1="lt1" tx1="dk1" bg2="lt2" tx2="dk2" accent1="accent1" accent2="accent2" accent3="accent3"'
        ' accent4="accent4" accent5="accent5" accent6="accent6" hlink="hlink" folHlink="folHlink"/>'
        '<p:sldLayoutIdLst><p:sldLayoutId id="2147483649" r:id="rId1"/></p:sldLayoutIdLst></p:sldMaster>'
    )
    colours = "".join(
        f"<a:{name}><a:srgbClr val=\"{value}\"/></a:{name}>"
        for name, value in (
            ("dk1", "000000"), ("lt1", "FFFFFF"), ("dk2", "1F497D"), ("lt2", "EEECE1"), ("accent1", "4F81BD"),
            ("accent2", "C0504D"), ("accent3", "9BBB59"), ("accent4", "8064A2"), ("accent5", "4BACC6"),
            ("accent6", "F79646"), ("hlink", "0000FF"), ("folHlink", "800080"),
        )
    )  # fmt: skip
    fill = '<a:solidFill><a:schemeClr val="phClr"/></a:solidFill>'
    line = f'<a:ln w="9525">{fill}</a:ln>'
    theme = (
        f'{_XML}<a:theme xmlns:a="{a}" name="Example"><a:themeElements><a:clrScheme name="Example">{colours}</a:clrScheme>'
        '<a:fontScheme name="Example"><a:majorFont><a:latin typeface="Calibri"/><a:ea typeface=""/><a:cs typeface=""/>'
        '</a:majorFont><a:minorFont><a:latin typeface="Calibri"/><a:ea typeface=""/><a:cs typeface=""/></a:minorFont>'
        f'</a:fontScheme><a:fmtScheme name="Example"><a:fillStyleLst>{fill * 3}</a:fillStyleLst>'
        f"<a:lnStyleLst>{line * 3}</a:lnStyleLst><a:effectStyleLst>{'<a:effectStyle><a:effectLst/></a:effectStyle>' * 3}"
        f"</a:effectStyleLst><a:bgFillStyleLst>{fill * 3}</a:bgFillStyleLst></a:fmtScheme></a:themeElements></a:theme>"
    )
    presentation = (
        f'{_XML}<p:presentation {ns}><p:sldMasterIdLst><p:sldMasterId id="2147483648" r:id="rId1"/></p:sldMasterIdLst>'
        '<p:sldIdLst><p:sldId id="256" r:id="rId2"/></p:sldIdLst><p:sldSz cx="9144000" cy="6858000"/>'
        '<p:notesSz cx="6858000" cy="9144000"/></p:presentation>'
    )
    return _package(
        {
            "[Content_Types].xml": _content_types(
                {
                    "/ppt/presentation.xml": f"{_CT}.presentationml.presentation.main+xml",
                    "/ppt/slides/slide1.xml": f"{_CT}.presentationml.slide+xml",
                    "/ppt/slideLayouts/slideLayout1.xml": f"{_CT}.presentationml.slideLayout+xml",
                    "/ppt/slideMasters/slideMaster1.xml": f"{_CT}.presentationml.slideMaster+xml",
                    "/ppt/theme/theme1.xml": f"{_CT}.theme+xml",
                }
            ),
            "_rels/.rels": _root_rels("ppt/presentation.xml"),
            "docProps/core.xml": _core(),
            "ppt/presentation.xml": presentation,
            "ppt/_rels/presentation.xml.rels": _rels(
                (f"{_REL}/slideMaster", "slideMasters/slideMaster1.xml"),
                (f"{_REL}/slide", "slides/slide1.xml"),
                (f"{_REL}/theme", "theme/theme1.xml"),
            ),
            "ppt/slides/slide1.xml": slide,
            "ppt/slides/_rels/slide1.xml.rels": _rels((f"{_REL}/slideLayout", "../slideLayouts/slideLayout1.xml")),
            "ppt/slideLayouts/slideLayout1.xml": layout,
            "ppt/slideLayouts/_rels/slideLayout1.xml.rels": _rels((f"{_REL}/slideMaster", "../slideMasters/slideMaster1.xml")),
            "ppt/slideMasters/slideMaster1.xml": master,
            "ppt/slideMasters/_rels/slideMaster1.xml.rels": _rels(
                (f"{_REL}/slideLayout", "../slideLayouts/slideLayout1.xml"), (f"{_REL}/theme", "../theme/theme1.xml")
            ),
            "ppt/theme/theme1.xml": theme,
        }
    )


# --- OpenDocument ------------------------------------------------------------------------

_ODF = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "fo": "urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0",
    "svg": "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
    "manifest": "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0",
}
_ODF_NS = " ".join(f'xmlns:{k}="{v}"' for k, v in _ODF.items() if k != "manifest")


def _odf(kind: str, body: str, styles: str = "") -> bytes:
    mimetype = f"application/vnd.oasis.opendocument.{kind}"
    files = ["content.xml", "meta.xml"] + (["styles.xml"] if styles else [])
    entries = "".join(f'<manifest:file-entry manifest:full-path="{name}" manifest:media-type="text/xml"/>' for name in files)
    parts = {
        "META-INF/manifest.xml": (
            f'{_XML}<manifest:manifest xmlns:manifest="{_ODF["manifest"]}" manifest:version="1.2">'
            f'<manifest:file-entry manifest:full-path="/" manifest:version="1.2" manifest:media-type="{mimetype}"/>'
            f"{entries}</manifest:manifest>"
        ),
        "content.xml": (
            f'{_XML}<office:document-content {_ODF_NS} office:version="1.2">'
            f"<office:body>{body}</office:body></office:document-content>"
        ),
        "meta.xml": (
            f'{_XML}<office:document-meta {_ODF_NS} office:version="1.2"><office:meta>'
            f"<dc:title>{TITLE}</dc:title><meta:generator>fileconvert</meta:generator></office:meta></office:document-meta>"
        ),
    }
    if styles:
        parts["styles.xml"] = f'{_XML}<office:document-styles {_ODF_NS} office:version="1.2">{styles}</office:document-styles>'
    return _package(parts, mimetype=mimetype)


def odt() -> bytes:
    paragraphs = "".join(f"<text:p>{escape(line)}</text:p>" for line in LINES)
    return _odf("text", f'<office:text><text:h text:outline-level="1">{TITLE}</text:h>{paragraphs}</office:text>')


def ods() -> bytes:
    def cell(value: object) -> str:
        if isinstance(value, int):
            return (
                f'<table:table-cell office:value-type="float" office:value="{value}"><text:p>{value}</text:p></table:table-cell>'
            )
        return f'<table:table-cell office:value-type="string"><text:p>{escape(str(value))}</text:p></table:table-cell>'

    rows = "".join(f"<table:table-row>{''.join(cell(v) for v in row)}</table:table-row>" for row in ROWS)
    return _odf(
        "spreadsheet",
        f'<office:spreadsheet><table:table table:name="Sheet1"><table:table-column table:number-columns-repeated="2"/>'
        f"{rows}</table:table></office:spreadsheet>",
    )


def odp() -> bytes:
    styles = (
        '<office:automatic-styles><style:page-layout style:name="PM1"><style:page-layout-properties fo:page-width="28cm"'
        ' fo:page-height="15.75cm" style:print-orientation="landscape"/></style:page-layout></office:automatic-styles>'
        '<office:master-styles><style:master-page style:name="Default" style:page-layout-name="PM1"/></office:master-styles>'
    )

    def frame(y: str, text: str) -> str:
        return (
            f'<draw:frame svg:x="2cm" svg:y="{y}" svg:width="24cm" svg:height="3cm"><draw:text-box>'
            f"<text:p>{escape(text)}</text:p></draw:text-box></draw:frame>"
        )

    page = (
        f'<draw:page draw:name="page1" draw:master-page-name="Default">{frame("2cm", TITLE)}{frame("6cm", LINES[0])}</draw:page>'
    )
    return _odf("presentation", f"<office:presentation>{page}</office:presentation>", styles)


# --- audio and video (ffmpeg) ------------------------------------------------------------

# What the converters themselves use for these targets (conversions.converters.media).
_MEDIA = {
    "mp3": (["-f", "lavfi", "-i", "sine=frequency=440:duration=1"], ["-c:a", "libmp3lame", "-b:a", "64k"]),
    "ogg": (["-f", "lavfi", "-i", "sine=frequency=440:duration=1"], ["-c:a", "libvorbis"]),
    "flac": (["-f", "lavfi", "-i", "sine=frequency=440:duration=1"], ["-c:a", "flac"]),
    "m4a": (["-f", "lavfi", "-i", "sine=frequency=440:duration=1"], ["-c:a", "aac", "-b:a", "64k"]),
    "mp4": (
        ["-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10", "-f", "lavfi", "-i", "sine=frequency=440:duration=1"],
        [
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-movflags",
            "+faststart",
        ],
    ),
    "webm": (
        ["-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10", "-f", "lavfi", "-i", "sine=frequency=440:duration=1"],
        ["-c:v", "libvpx", "-deadline", "realtime", "-b:v", "200k", "-c:a", "libopus"],
    ),
}
_MUXERS = {"mp3": "mp3", "ogg": "ogg", "flac": "flac", "m4a": "ipod", "mp4": "mp4", "webm": "webm"}


_made: dict[str, bytes] = {}
_failed: dict[str, float] = {}  # format -> when its last run failed (time.monotonic)
_making = {fmt: threading.Lock() for fmt in _MEDIA}
RETRY_AFTER_SECONDS = 300


def media(fmt: str) -> bytes | None:
    """One second of a 440 Hz tone (and a test pattern for video), or None without ffmpeg.
    Made once per process: concurrent first requests of a format wait for its one ffmpeg run
    (the endpoint is public; each format has its own lock), and a failed run is tried again
    only RETRY_AFTER_SECONDS later, not by every request meanwhile."""
    if fmt in _made:
        return _made[fmt]
    if not media_available(fmt):
        return None
    with _making[fmt]:
        if fmt not in _made and media_available(fmt):
            body = _encode(fmt)
            if body is None:
                _failed[fmt] = time.monotonic()
                return None
            _made[fmt] = body
    return _made.get(fmt)


def media_available(fmt: str) -> bool:
    """ffmpeg is here and ``fmt``'s last run did not fail recently."""
    failed = _failed.get(fmt)
    return shutil.which("ffmpeg") is not None and (failed is None or time.monotonic() - failed > RETRY_AFTER_SECONDS)


def _encode(fmt: str) -> bytes | None:
    from fileconvert.sandbox import run_command

    inputs, codec = _MEDIA[fmt]
    with tempfile.TemporaryDirectory(prefix="template-") as work:
        out = Path(work) / f"example.{fmt}"
        cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", *inputs, "-shortest", *codec]
        cmd += ["-metadata", f"title={TITLE}", "-f", _MUXERS[fmt], "-y", str(out)]
        done = run_command(cmd, timeout=30, memory_bytes=1024**3)
        if done.returncode != 0 or not out.is_file():
            logger.warning("media template failed", extra={"format": fmt, "stderr": done.stderr[-500:]})
            return None
        return out.read_bytes()


OFFICE = {"docx": docx, "pptx": pptx, "odt": odt, "ods": ods, "odp": odp}
MEDIA_FORMATS = tuple(_MEDIA)
