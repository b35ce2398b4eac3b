"""PDF: pages to images (pypdfium2), text and page extraction/merge (pypdf, with its
built-in decompression limits; the sandbox adds the wall clock and memory cap)."""

from __future__ import annotations

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


class PdfToImage(Converter):
    name = "pdfium-render"
    sources = ("pdf",)
    targets = ("png", "jpeg")
    modules = ("pypdfium2", "PIL")
    options = (
        Option("page", "int", 1, 1, 100000, help="Which page to render (1 = first)."),
        Option("dpi", "int", 150, 36, 600, help="Rendering resolution."),
        Option("quality", "int", 85, 1, 100, help="JPEG quality."),
    )

    def convert(self, src: Path, source: str, dst: Path, target: str, options: dict[str, Any], ctx: Context) -> dict[str, Any]:
        import pypdfium2 as pdfium

        try:
            document = pdfium.PdfDocument(str(src))
        except pdfium.PdfiumError as exc:
            raise ConversionFailed(f"The PDF could not be read: {exc}", "UNREADABLE_CONTENT") from None
        try:
            count = len(document)
            index = int(options.get("page") or 1) - 1
            if index >= count:
                raise ConversionFailed(f"Page {index + 1} does not exist (the document has {count}).", "INVALID_PAGES")
            page = document[index]
            scale = int(options.get("dpi") or 150) / 72
            width, height = page.get_size()
            if width * scale * height * scale > ctx.max_image_pixels:
                raise ConversionFailed("The rendered page would be too large; lower the dpi.", "IMAGE_TOO_LARGE")
            ctx.progress(1, 3)
            image = page.render(scale=scale).to_pil()
            ctx.progress(2, 3)
            if target == "jpeg":
                image.convert("RGB").save(dst, "JPEG", quality=int(options.get("quality") or 85))
            else:
                image.save(dst, "PNG")
            return {"width": image.width, "height": image.height, "page": index + 1, "pages": count}
        finally:
            document.close()


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
