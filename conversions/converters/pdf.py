"""PDF: pages to images (pypdfium2), text and page extraction/merge (pypdf, with its
built-in decompression limits; the sandbox adds the wall clock and memory cap)."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

from conversions.converters.base import Context, ConversionFailed, Converter, Option, parse_pages

PAGES = Option("pages", "pages", None, help='Pages to keep, e.g. "1-3,5" (default: all).')


def _reader(path: Path) -> Any:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            raise ConversionFailed("The PDF is encrypted.", "ENCRYPTED_PDF")
        _ = len(reader.pages)
    except ConversionFailed:
        raise
    except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, IndexError) as exc:
        raise ConversionFailed(f"The PDF could not be read: {exc}", "UNREADABLE_CONTENT") from None
    return reader


# Actions a PDF viewer runs or follows that a document converted by us must not carry. An
# Office document's pictures are read by their bytes: a PDF inside a DOCX is imported with its
# link annotations, JavaScript and Launch actions included (decision 0016).
SAFE_LINK_SCHEMES = ("http://", "https://", "mailto:")
RISKY_ANNOTATIONS = {"/FileAttachment", "/Movie", "/Sound", "/Screen", "/RichMedia", "/3D"}


def _resolved(value: Any) -> Any:
    return value.get_object() if hasattr(value, "get_object") else value


def _safe_action(action: Any) -> bool:
    """An internal jump, or a link to the web or a mail address (printable ASCII only, so no
    viewer reads it as anything else), with nothing chained after it."""
    action = _resolved(action)
    if not hasattr(action, "get") or "/Next" in action:
        return False
    kind = _resolved(action.get("/S"))
    if kind == "/GoTo":
        return True
    if kind == "/URI":
        uri = str(_resolved(action.get("/URI", "")))
        return all(" " < ch < "\x7f" for ch in uri) and uri.lower().startswith(SAFE_LINK_SCHEMES)
    return False


def _kept_annotation(annot: Any) -> bool:
    """Not an attachment or media, and a link only if it jumps or goes to the web or a mail address."""
    subtype = _resolved(annot.get("/Subtype"))
    if subtype in RISKY_ANNOTATIONS:
        return False
    return subtype != "/Link" or ("/Dest" in annot and "/A" not in annot) or _safe_action(annot.get("/A"))


def _reachable(writer: Any) -> set[int]:
    """Object numbers reachable from the trailer (root, info), in one walk."""
    from pypdf.generic import ArrayObject, DictionaryObject

    found: set[int] = set()
    stack = [writer._root_object, writer._info]
    while stack:
        value = stack.pop()
        if hasattr(value, "idnum"):
            if value.idnum in found:
                continue
            found.add(value.idnum)
            value = value.get_object()
        elif value is not None and getattr(value, "indirect_reference", None) is not None:
            found.add(value.indirect_reference.idnum)
        if isinstance(value, DictionaryObject):
            stack.extend(value.values())
        elif isinstance(value, ArrayObject):
            stack.extend(value)
    return found


def scrub_actions(path: Path) -> int:
    """Remove from the PDF at ``path`` what a viewer would run or fetch, wherever it sits (a PDF
    picture's own pages come along as objects outside the page tree): actions other than an
    internal jump or a web or mail link, trigger actions (``/AA``), attachments and media
    annotations, an opening action other than a jump, document scripts, embedded and associated
    files, XFA forms. Returns how many actions, annotations and entries went (0: the file is
    left as it is, not rewritten)."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject

    removed = 0

    def drop(value: Any, key: str) -> None:
        nonlocal removed
        if key in value:
            del value[NameObject(key)]
            removed += 1

    def visit(value: Any, seen: set[int]) -> None:
        nonlocal removed
        if isinstance(value, ArrayObject):
            for item in value:
                if not hasattr(item, "idnum"):  # an indirect object is visited once, as itself
                    visit(item, seen)
            return
        if not isinstance(value, DictionaryObject) or id(value) in seen:
            return
        seen.add(id(value))
        for key in ("/AA", "/JS", "/XFA", "/AF", "/EmbeddedFiles", "/JavaScript"):
            drop(value, key)
        # /A is an action wherever it sits but in a structure element, where it holds attributes.
        structure = _resolved(value.get("/Type")) == "/StructElem" or ("/P" in value and "/S" in value and "/K" in value)
        if not structure and "/A" in value and not _safe_action(value["/A"]):
            drop(value, "/A")
        annots = _resolved(value.get("/Annots"))
        if isinstance(annots, ArrayObject):
            kept = ArrayObject(a for a in annots if _kept_annotation(_resolved(a)))
            if len(kept) != len(annots):
                removed += len(annots) - len(kept)
                value[NameObject("/Annots")] = kept
            for annot in kept:
                if not hasattr(annot, "idnum"):  # written inline: visited here
                    visit(annot, seen)
        for key, item in list(value.items()):
            if key != "/Annots" and not hasattr(item, "idnum"):
                visit(item, seen)

    try:
        writer = PdfWriter(clone_from=PdfReader(path))
        root = writer._root_object
        opening = root.get("/OpenAction")
        if opening is not None and not isinstance(_resolved(opening), ArrayObject) and not _safe_action(opening):
            drop(root, "/OpenAction")
        seen: set[int] = set()
        for obj in [root, *writer._objects]:
            visit(obj, seen)
        if not removed:
            return 0
        # What the removed parts held (an attachment's file, a chain of actions): unreachable now.
        keep = _reachable(writer)
        for index in range(len(writer._objects)):
            if index + 1 not in keep:
                writer._objects[index] = None
        tmp = path.with_name(path.name + ".scrubbed")
        with open(tmp, "wb") as out:
            writer.write(out)
        tmp.replace(path)
    except Exception as exc:  # noqa: BLE001  pypdf raises many kinds on what it cannot parse
        raise ConversionFailed(f"The converted PDF could not be checked for active content: {exc}", "CONVERSION_FAILED") from None
    return removed


class PdfToImage(Converter):
    """Pages to images: one page gives one image; several give a multi-page TIFF, or a ZIP of
    ``page-001.png``… (stored, not deflated again: PNG, JPEG, WebP and GIF are compressed
    already; BMP, which is not, is deflated). Written page by page, so memory holds one
    rendered page whatever the count."""

    name = "pdfium-render"
    sources = ("pdf",)
    targets = ("png", "jpeg", "webp", "tiff", "gif", "bmp")
    modules = ("pypdfium2", "PIL")
    options = (
        Option(
            "pages",
            "pages",
            None,
            help='Pages to render, e.g. "1-3,5" (default: all; several pages give a multi-page TIFF, or a ZIP of images).',
        ),
        Option("page", "int", None, 1, 100000, help="One page to render (1 = first); `pages` takes precedence."),
        Option("dpi", "int", 150, 36, 600, help="Rendering resolution."),
        Option("quality", "int", 85, 1, 100, help="JPEG and WebP quality."),
    )

    def options_for(self, source: str, target: str) -> tuple[Option, ...]:
        # Quality means something to the lossy targets only.
        return self.options if target in ("jpeg", "webp") else tuple(o for o in self.options if o.name != "quality")

    def convert(self, src: Path, source: str, dst: Path, target: str, options: dict[str, Any], ctx: Context) -> dict[str, Any]:
        import pypdfium2 as pdfium

        try:
            document = pdfium.PdfDocument(str(src))
        except pdfium.PdfiumError as exc:
            raise ConversionFailed(f"The PDF could not be read: {exc}", "UNREADABLE_CONTENT") from None
        try:
            count = len(document)
            if options.get("pages"):
                selected = parse_pages(options["pages"], count)
            elif options.get("page"):
                selected = parse_pages(str(options["page"]), count)
            else:
                selected = list(range(count))
            selected = list(dict.fromkeys(selected))  # "1,1" or "1-3,2-4": each page once, in the order asked
            if not selected:
                raise ConversionFailed("The document has no pages.", "INVALID_PAGES")
            if len(selected) > MAX_RENDERED_PAGES:
                raise ConversionFailed(
                    f"{len(selected)} pages asked for; at most {MAX_RENDERED_PAGES} per job (choose them with `pages`).",
                    "TOO_MANY_PAGES",
                )
            scale = int(options.get("dpi") or 150) / 72
            quality = int(options.get("quality") or 85)
            if len(selected) == 1:
                width, height = _render(document[selected[0]], scale, target, quality, dst, ctx, 0, 1)
                return {"width": width, "height": height, "page": selected[0] + 1, "pages": count}
            if target == "tiff":  # one file of pages, appended one at a time
                from PIL import TiffImagePlugin

                sizes = []
                with TiffImagePlugin.AppendingTiffWriter(str(dst), True) as tiff:
                    for done, index in enumerate(selected):
                        sizes.append(_render(document[index], scale, target, quality, tiff, ctx, done, len(selected)))
                        tiff.newFrame()
                width, height = sizes[0]
                return {"pages": count, "rendered": len(selected), "width": width, "height": height}
            digits = max(3, len(str(max(selected) + 1)))
            extension = "jpg" if target == "jpeg" else target
            sizes = []
            packing = zipfile.ZIP_DEFLATED if target in UNCOMPRESSED else zipfile.ZIP_STORED
            with zipfile.ZipFile(dst, "w", packing) as archive:
                for done, index in enumerate(selected):
                    page_path = ctx.workdir / f"render-page.{extension}"
                    sizes.append(_render(document[index], scale, target, quality, page_path, ctx, done, len(selected)))
                    archive.write(page_path, f"page-{index + 1:0{digits}d}.{extension}")
                    page_path.unlink()
            width, height = sizes[0]
            return {"archive": "zip", "pages": count, "rendered": len(selected), "width": width, "height": height}
        finally:
            document.close()


# A bound on one job's output: a 5,000-page PDF at 150 dpi would be gigabytes of images.
MAX_RENDERED_PAGES = 500
WEBP_MAX_SIDE = 16383  # the format's own limit
UNCOMPRESSED = {"bmp"}  # deflated in a ZIP of pages; the other formats are compressed already


def _render(
    page: Any, scale: float, target: str, quality: int, dst: Path | Any, ctx: Context, done: int, total: int
) -> tuple[int, int]:
    """Render one page to ``dst``; progress counts rendering and saving of each page."""
    width, height = page.get_size()
    if width * scale * height * scale > ctx.max_image_pixels:
        raise ConversionFailed("The rendered page would be too large; lower the dpi.", "IMAGE_TOO_LARGE")
    if target == "webp" and math.ceil(max(width, height) * scale) > WEBP_MAX_SIDE:  # pdfium rounds up
        raise ConversionFailed(f"WebP holds at most {WEBP_MAX_SIDE} pixels a side; lower the dpi.", "IMAGE_TOO_LARGE")
    image = page.render(scale=scale).to_pil()
    ctx.progress(done * 2 + 1, total * 2)
    if target == "jpeg":
        image.convert("RGB").save(dst, "JPEG", quality=quality)
    elif target == "webp":
        image.save(dst, "WEBP", quality=quality, method=4)
    elif target == "tiff":
        image.save(dst, "TIFF", compression="tiff_deflate")
    elif target == "gif":  # 256 colours, an adaptive palette per page (text stays sharp, gradients band)
        image.convert("RGB").save(dst, "GIF")
    elif target == "bmp":
        image.convert("RGB").save(dst, "BMP")
    else:
        image.save(dst, "PNG")
    ctx.progress(done * 2 + 2, total * 2)
    return image.width, image.height


class PdfToText(Converter):
    name = "pypdf-text"
    sources = ("pdf",)
    targets = ("text",)
    modules = ("pypdf",)
    options = (PAGES,)

    def convert(self, src: Path, source: str, dst: Path, target: str, options: dict[str, Any], ctx: Context) -> dict[str, Any]:
        reader = _reader(src)
        pages = parse_pages(options.get("pages"), len(reader.pages))
        with open(dst, "w", encoding="utf-8") as out:
            for done, index in enumerate(pages, start=1):
                try:
                    text = reader.pages[index].extract_text() or ""
                except Exception as exc:  # noqa: BLE001  pypdf raises many kinds on broken content
                    raise ConversionFailed(f"Page {index + 1} could not be read: {exc}", "UNREADABLE_CONTENT") from None
                out.write(text.rstrip() + "\n\f\n" if done < len(pages) else text.rstrip() + "\n")
                ctx.progress(done, len(pages))
        return {"pages": len(pages)}


class PdfPages(Converter):
    """Extract pages (``pages``) and merge other PDFs after them (``merge_with``)."""

    name = "pypdf-pages"
    sources = ("pdf",)
    targets = ("pdf",)
    modules = ("pypdf",)
    same_format = True
    options = (
        PAGES,
        Option("merge_with", "file_ids", None, help="Ids of PDF files (same organization) appended, in order."),
    )

    def convert(self, src: Path, source: str, dst: Path, target: str, options: dict[str, Any], ctx: Context) -> dict[str, Any]:
        from pypdf import PdfWriter

        reader = _reader(src)
        writer = PdfWriter()
        selected = parse_pages(options.get("pages"), len(reader.pages))
        others = [(_reader(path), None) for path, fmt in ctx.extra_inputs if fmt == "pdf"]
        if len(others) != len(ctx.extra_inputs):
            raise ConversionFailed("Only PDF files can be merged.", "MERGE_NOT_PDF")
        total = len(selected) + sum(len(r.pages) for r, _ in others)
        done = 0
        try:
            for index in selected:
                writer.add_page(reader.pages[index])
                done += 1
                ctx.progress(done, total + 1)
            for other, _ in others:
                for page in other.pages:
                    writer.add_page(page)
                    done += 1
                    ctx.progress(done, total + 1)
            if reader.metadata:
                writer.add_metadata({k: str(v) for k, v in reader.metadata.items() if isinstance(k, str)})
            with open(dst, "wb") as out:
                writer.write(out)
        except ConversionFailed:
            raise
        except Exception as exc:  # noqa: BLE001  broken page trees raise anything
            raise ConversionFailed(f"The PDF could not be rewritten: {exc}", "UNREADABLE_CONTENT") from None
        return {"pages": total}
