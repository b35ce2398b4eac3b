"""Markdown -> HTML (markdown-it-py, raw HTML disabled, then nh3 sanitising) and HTML -> text."""

from __future__ import annotations

import html
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
