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
# style sheet, a background. In the copy it lays out, only data: images are left; links
# (never loaded) keep their web and mail schemes. Styles go entirely (a url() in CSS).
LAYOUT_URL_SCHEMES = {"http", "https", "mailto", "data"}
LOADED_ATTRIBUTES = {"src", "srcset", "background", "poster", "data", "lowsrc", "dynsrc", "longdesc", "usemap"}
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp|bmp);base64,[A-Za-z0-9+/=\s]*\Z", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


def decode_html(data: bytes) -> str:
    """Text of an HTML document: a BOM, else a ``<meta charset>`` in its first 1024 bytes
    (undecodable bytes replaced), else UTF-8, else windows-1252 (what browsers assume)."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    declared = _META_CHARSET.search(data[:1024])
    if declared:
        try:
            return data.decode(codecs.lookup(declared.group(1).decode("ascii")).name, errors="replace")
        except LookupError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _layout_attribute(element: str, attribute: str, value: str) -> str | None:
    if attribute in LOADED_ATTRIBUTES:
        return value if element == "img" and attribute == "src" and _DATA_IMAGE.match(value.strip()) else None
    if attribute == "href" and value.strip().lower().startswith("data:"):
        return None  # a link may not carry a document of its own
    return value


def sanitize_for_layout(markup: str, *, default_title: str) -> str:
    """A whole UTF-8 document holding ``markup``'s body as nh3 leaves it (no script, style,
    frame, object, form or meta refresh) with no URL that a layout engine would load."""
    import nh3

    found = _TITLE.search(markup)
    title = " ".join(html.unescape(nh3.clean(found.group(1), tags=set())).split()) if found else ""
    body = nh3.clean(
        markup,
        clean_content_tags={"script", "style", "title", "template", "noscript"},
        url_schemes=LAYOUT_URL_SCHEMES,
        attribute_filter=_layout_attribute,
        link_rel="noopener noreferrer nofollow",
    )
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
