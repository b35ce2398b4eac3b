"""Markdown -> HTML (markdown-it-py, raw HTML disabled, then nh3 sanitising), HTML -> text,
and the sanitised copy of an HTML document that LibreOffice lays out (office.HtmlToPdf)."""

from __future__ import annotations

import codecs
import html
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from conversions.converters.base import Context, ConversionFailed, Converter, Option
from fileconvert.imagebounds import PIL_NAMES

MAX_TEXT_BYTES = 50 * 1024**2
ENCODING = Option("encoding", "choice", "utf-8", choices=("utf-8", "utf-8-sig", "latin-1", "cp1252"), help="Input encoding.")


def _read(path: Path, encoding: str) -> str:
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise ConversionFailed("The text is too large to convert.", "INPUT_TOO_LARGE")
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise ConversionFailed(f"The text is not valid {encoding}: {exc.reason}.", "BAD_ENCODING") from None


# What LibreOffice could load while laying a document out: an image, a frame, an object, a
# style sheet, a background. In the copy it lays out, no attribute holding a URL is left but
# an image's ``src`` holding pixels we decoded and encoded again (LibreOffice reads a data:
# image by its bytes, not by its declared type: an SVG or a PDF labelled image/png would load
# local files or carry its link actions into the output) and a link's ``href`` to the web or
# a mail address. Styles go entirely (a url() in CSS).
URL_ATTRIBUTES = {"src", "srcset", "background", "poster", "data", "lowsrc", "dynsrc", "longdesc", "usemap", "cite", "href"}
LINK_SCHEMES = {"http", "https", "mailto"}
DATA_IMAGE_FORMATS = {**{f: PIL_NAMES[f] for f in ("png", "jpeg", "gif", "webp", "bmp")}, "jpg": "JPEG"}
DATA_IMAGE_MAX_BYTES = 8 * 1024**2  # one image, decoded from base64
DATA_IMAGE_MAX_PIXELS = 25_000_000  # all images of one page together
# Scans of one JPEG (a progressive one has about 10; libjpeg-turbo's djpeg -maxscans refuses
# such floods too). Counted as SOS markers, which entropy-coded data cannot hold (0xFF is
# stuffed there), so an APP segment's bytes can only make the count larger.
DATA_IMAGE_MAX_SCANS = 100
MAX_LAYOUT_BYTES = 10 * 1024**2  # the HTML a page may have (LibreOffice lays out every byte of it)
MAX_NESTING = 512  # open elements inside each other (nh3's parser slows quadratically with depth)
_DATA_URI = re.compile(r"data:image/([a-z]+);base64,", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]")  # what a browser strips from a URL before reading its scheme
# Elements that do not nest: void ones, and those whose end tag a parser infers.
_FLAT = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
    "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "option", "optgroup", "colgroup", "caption",
    "rb", "rt", "rp", "rtc", "html", "head", "body",
})  # fmt: skip
# Web charsets a <meta charset> may name; anything else is read as UTF-8 (or windows-1252).
WEB_CHARSETS = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8", "utf-16-le", "utf-16-be", "ascii", "latin-1", "iso8859-2", "iso8859-3", "iso8859-4", "iso8859-5",
        "iso8859-6", "iso8859-7", "iso8859-8", "iso8859-10", "iso8859-13", "iso8859-14", "iso8859-15", "iso8859-16",
        "cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "cp874", "koi8-r",
        "koi8-u", "mac-roman", "mac-cyrillic", "shift_jis", "euc_jp", "iso2022_jp", "gbk", "gb18030", "big5", "euc_kr",
    )
)  # fmt: skip


def decode_html(data: bytes) -> str:
    """Text of an HTML document: a BOM, else a web charset its ``<meta charset>`` names in the
    first 1024 bytes (undecodable bytes replaced), else UTF-8, else windows-1252 (what browsers
    assume). Never raises."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    declared = _META_CHARSET.search(data[:1024])
    if declared:
        try:
            encoding = codecs.lookup(declared.group(1).decode("ascii")).name
        except (LookupError, UnicodeError, ValueError):
            encoding = ""
        if encoding in WEB_CHARSETS:
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


class _TooDeep(Exception):
    pass


class _Depth(HTMLParser):
    """Open elements as a parser keeps them: an end tag closes its element (and what is still
    open inside it) only if that element is open; a stray one (``</x>``, one inside an
    attribute or a comment) closes nothing. Raises _TooDeep past MAX_NESTING."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in _FLAT:
            self.open.append(tag)
            if len(self.open) > MAX_NESTING:
                raise _TooDeep()

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        self.handle_starttag(tag, attrs)  # <div/> opens a div in HTML; only void elements close themselves

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            while self.open.pop() != tag:
                pass


def _too_deep(markup: str) -> bool:
    depth = _Depth()
    try:
        depth.feed(markup)
        depth.close()
    except _TooDeep:
        return True
    return False


def _title(markup: str) -> str:
    """The first <title>'s text, found with plain searches (linear whatever the markup)."""
    lowered = markup.lower()
    start = lowered.find("<title")
    opened = lowered.find(">", start) if start >= 0 else -1
    end = lowered.find("</title", opened) if opened >= 0 else -1
    if end < 0:
        return ""
    import nh3

    return " ".join(html.unescape(nh3.clean(markup[opened + 1 : end], tags=set())).split())


def _safe_link(value: str) -> str | None:
    """An absolute web or mail link, or a #fragment; None for anything else (relative paths,
    file: or UNC paths, data:, javascript:), judged as a browser reads the URL."""
    from urllib.parse import urlsplit

    url = _URL_NOISE.sub("", value)
    if url.startswith("#"):
        return value
    if "\\" in url:
        return None  # \\host\share: a file: link on some readers
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in LINK_SCHEMES or (parts.scheme.lower() != "mailto" and not parts.netloc):
        return None
    return url


class DataImages:
    """``data:`` images decoded by Pillow as the format they declare and encoded again (PNG,
    or JPEG for a JPEG), within DATA_IMAGE_MAX_BYTES each and DATA_IMAGE_MAX_PIXELS together
    (one instance a document: its HTML and its SVG pictures alike); any other gives None (the
    image is dropped)."""

    def __init__(self) -> None:
        self.pixels = 0

    def __call__(self, value: str) -> str | None:
        import base64
        import binascii
        import io
        import warnings

        from PIL import Image

        declared = _DATA_URI.match(value.strip())
        fmt = DATA_IMAGE_FORMATS.get(declared.group(1).lower()) if declared else None
        if declared is None or fmt is None:
            return None
        payload = "".join(value.strip()[declared.end() :].split())
        if len(payload) > DATA_IMAGE_MAX_BYTES * 4 // 3 + 4:
            return None
        try:
            raw = base64.b64decode(payload, validate=True)
            if fmt == "JPEG" and raw.count(b"\xff\xda") > DATA_IMAGE_MAX_SCANS:
                return None  # each scan is a pass over the image (~1.6 ms a scan at 5000x5000)
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(raw), formats=[fmt]) as image:
                    if self.pixels + image.width * image.height > DATA_IMAGE_MAX_PIXELS:
                        return None
                    self.pixels += image.width * image.height
                    image.load()  # the first frame: what a page shows of an animation
                    frame = image.convert("RGBA" if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info else "RGB")
            out = io.BytesIO()
            if fmt == "JPEG":
                frame.save(out, "JPEG", quality=92)
            else:
                frame.save(out, "PNG")
        except (OSError, ValueError, SyntaxError, binascii.Error, Image.DecompressionBombError, Image.DecompressionBombWarning):
            return None
        kind = "jpeg" if fmt == "JPEG" else "png"
        return f"data:image/{kind};base64,{base64.b64encode(out.getvalue()).decode('ascii')}"


def sanitize_for_layout(markup: str, *, default_title: str, images: DataImages | None = None) -> str:
    """A whole UTF-8 document holding ``markup``'s body as nh3 leaves it (no script, style,
    frame, object, form or meta refresh) with no URL that a layout engine would load: images
    only as pixels decoded and encoded again, links only to the web or a mail address.
    ConversionFailed when the markup is too large or nests too deep to sanitise in bounded time."""
    import nh3

    if len(markup) > MAX_LAYOUT_BYTES:
        raise ConversionFailed(
            f"The page is too large to lay out (at most {MAX_LAYOUT_BYTES // 1024**2} MiB).", "INPUT_TOO_LARGE"
        )
    if _too_deep(markup):
        raise ConversionFailed(f"The page nests its elements more than {MAX_NESTING} deep.", "INPUT_TOO_COMPLEX")
    images = images or DataImages()

    def keep(element: str, attribute: str, value: str) -> str | None:
        if attribute not in URL_ATTRIBUTES:
            return value
        if element == "img" and attribute == "src":
            return images(value)
        if element == "a" and attribute == "href":
            return _safe_link(value)
        return None

    body = nh3.clean(
        markup,
        clean_content_tags={"script", "style", "title", "template", "noscript"},
        url_schemes=LINK_SCHEMES | {"data"},
        attribute_filter=keep,
        link_rel="noopener noreferrer nofollow",
    )
    title = _title(markup)
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title or default_title)}</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


class MarkdownToHtml(Converter):
    name = "markdown-it"
    sources = ("markdown",)
    targets = ("html",)
    modules = ("markdown_it", "nh3")
    chain_outputs = ("html",)
    options = (
        Option("title", "string", None, help="Document title (default: the first heading or the file name)."),
        Option("full_document", "bool", True, help="Wrap in <html><head>…</head><body>; false gives a fragment."),
        ENCODING,
    )

    def convert(self, src: Path, source: str, dst: Path, target: str, options: dict[str, Any], ctx: Context) -> dict[str, Any]:
        import nh3
        from markdown_it import MarkdownIt

        text = _read(src, options.get("encoding") or "utf-8")
        parser = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")
        tokens = parser.parse(text)
        body = nh3.clean(parser.renderer.render(tokens, parser.options, {}), link_rel="noopener noreferrer nofollow")
        ctx.progress(1, 2)
        title = options.get("title")
        if not title:
            headings = [t for i, t in enumerate(tokens) if i and tokens[i - 1].type == "heading_open" and t.type == "inline"]
            title = headings[0].content if headings else ctx.title_for(src)
        if options.get("full_document", True):
            body = (
                '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
                f"<title>{html.escape(title)}</title>\n</head>\n<body>\n{body}</body>\n</html>\n"
            )
        dst.write_text(body, encoding="utf-8")
        return {"title": title}


class _TextExtractor(HTMLParser):
    SKIP = {"script", "style", "template", "noscript", "head"}
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre", "blockquote", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)

    def text(self) -> str:
        lines = [" ".join(line.split()) for line in "".join(self.parts).splitlines()]
        out: list[str] = []
        for line in lines:
            if line or (out and out[-1]):
                out.append(line)
        return "\n".join(out).strip() + "\n"


class HtmlToText(Converter):
    name = "html-text"
    sources = ("html",)
    targets = ("text",)
    options = (ENCODING,)

    def convert(self, src: Path, source: str, dst: Path, target: str, options: dict[str, Any], ctx: Context) -> dict[str, Any]:
        extractor = _TextExtractor()
        extractor.feed(_read(src, options.get("encoding") or "utf-8"))
        extractor.close()
        text = extractor.text()
        dst.write_text(text, encoding="utf-8")
        return {"characters": len(text)}
