"""Child-process entry point: ``python -m uploads.inspect_worker KIND IN OUT_THUMB``.

Prints a JSON summary on stdout and writes a PNG thumbnail (if it can) to OUT_THUMB.
Runs under fileconvert.sandbox limits; imports nothing from Django.
"""

from __future__ import annotations

import json
import sys
import warnings

THUMB_SIZE = (256, 256)
PILLOW_FORMATS = {
    "png": "PNG",
    "jpeg": "JPEG",
    "gif": "GIF",
    "webp": "WEBP",
    "bmp": "BMP",
    "tiff": "TIFF",
    "ico": "ICO",
}


def image_summary(path: str, kind: str, thumb: str, max_pixels: int) -> dict:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    return image_summary_of(path, kind, thumb)


def image_summary_of(path: str, kind: str, thumb: str) -> dict:
    """The summary of an image and its PNG thumbnail at ``thumb``, under the caller's pixel
    limit (this child's ``image_summary`` sets it; ``uploads.processing`` calls this in the
    worker for a small raster image, ``fileconvert.imagebounds``)."""
    from PIL import Image, ImageOps

    with Image.open(path, formats=[PILLOW_FORMATS[kind]]) as img:
        summary = {
            "width": img.width,
            "height": img.height,
            "format": img.format,
            "mode": img.mode,
            "frames": getattr(img, "n_frames", 1),
            "has_exif": bool(img.info.get("exif")) or bool(img.getexif()),
        }
        img.seek(0)
        # A JPEG decodes at 1/2 to 1/8 scale when that still covers twice the thumbnail, as
        # thumbnail() would do itself on an image not yet loaded (exif_transpose loads it).
        img.draft(None, (THUMB_SIZE[0] * 2, THUMB_SIZE[1] * 2))
        frame = ImageOps.exif_transpose(img.convert("RGBA") if img.mode in ("P", "LA", "PA") else img)
        frame.thumbnail(THUMB_SIZE)
        frame.save(thumb, "PNG")
    return summary


def pdf_summary(path: str, thumb: str, max_pixels: int) -> dict:
    from pypdf import PdfReader

    reader = PdfReader(path)
    summary: dict = {"pages": len(reader.pages), "encrypted": reader.is_encrypted}
    info = reader.metadata if not reader.is_encrypted else None
    if info:
        summary["title"] = str(info.title or "")[:500]
        summary["author"] = str(info.author or "")[:500]
    if not reader.is_encrypted and summary["pages"]:
        import pypdfium2 as pdfium

        doc = pdfium.PdfDocument(path)
        try:
            page = doc[0]
            width, height = page.get_size()
            scale = min(THUMB_SIZE[0] / max(width, 1), THUMB_SIZE[1] / max(height, 1), 4.0)
            page.render(scale=scale).to_pil().save(thumb, "PNG")
            summary["page_width_pt"], summary["page_height_pt"] = round(width, 1), round(height, 1)
        finally:
            doc.close()
    return summary


def audio_summary(path: str) -> dict:
    import mutagen

    media = mutagen.File(path)
    if media is None or media.info is None:
        return {}
    info = media.info
    return {
        "duration_seconds": round(getattr(info, "length", 0.0), 3),
        "bitrate": getattr(info, "bitrate", None),
        "sample_rate": getattr(info, "sample_rate", None),
        "channels": getattr(info, "channels", None),
    }


def error_of(exc: BaseException) -> tuple[str, str]:
    """The error code and message an inspection failure is reported with."""
    name = type(exc).__name__
    code = "IMAGE_TOO_LARGE" if "DecompressionBomb" in name else "UNREADABLE_CONTENT"
    return code, f"{name}: {str(exc)[:300]}"


def main() -> int:
    kind, path, thumb, max_pixels = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    try:
        if kind in PILLOW_FORMATS:
            summary = image_summary(path, kind, thumb, max_pixels)
        elif kind == "pdf":
            summary = pdf_summary(path, thumb, max_pixels)
        elif kind in ("mp3", "flac", "ogg", "wav", "m4a", "mp4", "webm"):
            summary = audio_summary(path)
        else:
            summary = {}
    except Exception as exc:  # noqa: BLE001 - reported to the parent as data
        code, message = error_of(exc)
        print(json.dumps({"error": {"code": code, "message": message}}))
        return 0
    print(json.dumps({"summary": summary}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
