"""Raster images through Pillow: an allowlist of formats, a pixel limit, EXIF orientation,
JPEG draft mode when shrinking, animation kept where the target can hold it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from conversions.converters.base import Context, ConversionFailed, Converter, Option
from fileconvert import imagebounds

IMAGE_FORMATS = ("png", "jpeg", "webp", "gif", "bmp", "tiff", "ico")
PIL_NAMES = imagebounds.PIL_NAMES
ANIMATED_TARGETS = {"gif", "webp", "png"}  # APNG too
PAGED_TARGETS = {"tiff"}  # several frames are pages, not an animation
# All frames together may decode to at most this many times MAX_IMAGE_PIXELS (one frame to 1x).
FRAMES_PIXEL_FACTOR = 4
NO_ALPHA = {"jpeg", "bmp"}
EXIF_TARGETS = {"jpeg", "webp", "png", "tiff"}
TURNS = frozenset({2, 3, 4, 5, 6, 7, 8})  # EXIF orientations that need a transpose (1: upright)
FITS = ("contain", "cover", "fill", "inside")

SIZE_OPTIONS = (
    Option("width", "int", None, 1, 20000, help="Target width in pixels (keeps the aspect ratio if height is not given)."),
    Option("height", "int", None, 1, 20000, help="Target height in pixels."),
    Option(
        "fit",
        "choice",
        "contain",
        choices=FITS,
        help="contain: fit inside the box; cover: fill the box and crop; fill: stretch; inside: like contain, never enlarge.",
    ),
)
QUALITY = Option("quality", "int", 85, 1, 100, help="Lossy quality (JPEG, WebP).")
BACKGROUND = Option("background", "color", "#ffffff", help="Colour behind transparent pixels when the target has no alpha.")
ORIENT = Option("auto_orient", "bool", True, help="Rotate according to the EXIF orientation tag.")
STRIP = Option("strip_metadata", "bool", False, help="Drop EXIF and ICC profile instead of carrying them over.")
LOSSLESS = Option("lossless", "bool", False, help="Lossless WebP.")


def open_image(path: Path, ctx: Context, fmt: str | None = None) -> Any:
    """Open with the pixel limit as an error (not a warning) and only the formats we allow."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = ctx.max_image_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    allowed = [PIL_NAMES[fmt]] if fmt in PIL_NAMES else list(PIL_NAMES.values())
    try:
        image = Image.open(path, formats=allowed)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ConversionFailed(f"The image is too large: {exc}", "IMAGE_TOO_LARGE") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ConversionFailed(f"The image could not be read: {exc}", "UNREADABLE_CONTENT") from None
    return image


def target_size(size: tuple[int, int], options: dict[str, Any]) -> tuple[int, int] | None:
    """The output box, or None when no resize was asked for."""
    width, height = options.get("width"), options.get("height")
    if not width and not height:
        return None
    src_w, src_h = size
    if width and not height:
        height = max(1, round(src_h * width / src_w))
    elif height and not width:
        width = max(1, round(src_w * height / src_h))
    return int(width), int(height)  # type: ignore[arg-type]


def output_boxes(image: Any, options: dict[str, Any]) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """The output box of the upright image (None: no resize), and the same box in the
    stored orientation (what ``Image.draft`` is asked for). Reads the header only."""
    turned = options.get("auto_orient", True) and image.getexif().get(0x0112) in (5, 6, 7, 8)
    upright = (image.height, image.width) if turned else image.size
    box = target_size(upright, options)
    return box, (box[1], box[0]) if box and turned else box


def resize(image: Any, box: tuple[int, int], fit: str) -> Any:
    from PIL import Image, ImageOps

    if fit == "fill":
        return image.resize(box, Image.Resampling.LANCZOS)
    if fit == "cover":
        return ImageOps.fit(image, box, Image.Resampling.LANCZOS)
    scale = min(box[0] / image.width, box[1] / image.height)
    if fit == "inside":
        scale = min(scale, 1.0)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def flatten(image: Any, background: str) -> Any:
    from PIL import Image, ImageColor

    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, ImageColor.getrgb(background))
        base.alpha_composite(rgba)
        return base.convert("RGB")
    return image.convert("RGB") if image.mode not in ("RGB", "L") else image


def prepare_frame(frame: Any, target: str, options: dict[str, Any], box: tuple[int, int] | None) -> Any:
    from PIL import ImageOps

    opened = frame
    if options.get("auto_orient", True) and frame.getexif().get(0x0112, 1) in TURNS:
        # Only when there is something to turn: exif_transpose otherwise returns a copy of the
        # whole decoded frame (a 1500x1000 thumbnail source: 4.5 MB copied for nothing).
        frame = ImageOps.exif_transpose(frame)
    if frame.mode not in ("RGB", "RGBA", "L", "LA"):
        frame = frame.convert("RGBA")
    if box:
        frame = resize(frame, box, options.get("fit") or "contain")
    if target in NO_ALPHA:
        frame = flatten(frame, options.get("background") or "#ffffff")
    # Never the opened file itself: its writer would carry the source's own tags over (a TIFF
    # saved from a TiffImageFile keeps its tag directory, XMP and IPTC: strip_metadata).
    return frame.copy() if frame is opened else frame


def save_kwargs(target: str, options: dict[str, Any], exif: bytes | None, icc: bytes | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if target == "jpeg":
        kwargs.update(quality=int(options.get("quality") or 85), optimize=False)
    elif target == "webp":
        kwargs.update(quality=int(options.get("quality") or 85), lossless=bool(options.get("lossless")), method=4)
    elif target == "tiff":
        kwargs.update(compression="tiff_deflate")
    if not options.get("strip_metadata") and target in EXIF_TARGETS:
        if exif:
            kwargs["exif"] = exif
        if icc:
            kwargs["icc_profile"] = icc
    return kwargs


def count_frame(decoded: int, image: Any, ctx: Context) -> int:
    """Pixels decoded so far with the frame ``image`` is at (its own size: a TIFF's pages
    differ), checked before it is decoded: all frames together may decode to at most
    FRAMES_PIXEL_FACTOR x MAX_IMAGE_PIXELS, each being kept in memory until the save."""
    decoded += image.width * image.height
    if decoded > ctx.max_image_pixels * FRAMES_PIXEL_FACTOR:
        raise ConversionFailed("The image's frames are too large together.", "IMAGE_TOO_LARGE")
    return decoded


def clean_exif(image: Any) -> bytes | None:
    """EXIF to carry over, with the orientation reset (the pixels are already upright)."""
    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001  a broken EXIF block is dropped, not fatal
        return None
    if not exif:
        return None
    if 0x0112 in exif:
        exif[0x0112] = 1
    for tag in LAYOUT_TAGS & set(exif):  # a TIFF's own layout (size, strips, compression): not the output's
        del exif[tag]
    return exif.tobytes()


# TIFF tags that describe how the source's pixels are stored, which a TIFF's getexif() returns
# with its descriptive tags: carried into a resized or re-encoded image they contradict it
# (libtiff refuses such pages: "encoder error -8").
LAYOUT_TAGS = {254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 292, 293, 317, 320}
LAYOUT_TAGS |= {322, 323, 324, 325, 338, 339, 347, 513, 514, 530, 531, 532}


class ImageConverter(Converter):
    name = "pillow-image"
    sources = IMAGE_FORMATS
    targets = IMAGE_FORMATS
    modules = ("PIL",)
    same_format = True

    def options_for(self, source: str, target: str) -> tuple[Option, ...]:
        extra: tuple[Option, ...] = ()
        if target in ("jpeg", "webp"):
            extra += (QUALITY,)
        if target == "webp":
            extra += (LOSSLESS,)
        if target in NO_ALPHA:
            extra += (BACKGROUND,)
        return (*SIZE_OPTIONS, *extra, ORIENT, STRIP)

    def convert(self, src: Path, source: str, dst: Path, target: str, options: dict[str, Any], ctx: Context) -> dict[str, Any]:
        image = open_image(src, ctx, source)
        with image:
            n_frames = getattr(image, "n_frames", 1) if target in ANIMATED_TARGETS | PAGED_TARGETS else 1
            box, stored_box = output_boxes(image, options)
            if source == "jpeg" and box and n_frames == 1:
                # Decode at 1/2, 1/4 or 1/8 scale when the output is that much smaller.
                image.draft("RGB", stored_box)
            icc = image.info.get("icc_profile")
            try:
                if n_frames > 1 and getattr(image, "is_animated", False):
                    frames, durations, decoded = [], [], 0
                    for index in range(n_frames):
                        image.seek(index)
                        decoded = count_frame(decoded, image, ctx)
                        frames.append(prepare_frame(image.copy(), target, options, box))
                        durations.append(image.info.get("duration", 100))
                        ctx.progress(index + 1, n_frames + 1)
                    # After the frames: resetting the orientation tag must not stop their rotation.
                    kwargs = save_kwargs(target, options, clean_exif(image), icc)
                    if target in ANIMATED_TARGETS:
                        kwargs.update(duration=durations, loop=image.info.get("loop", 0))
                    frames[0].save(dst, PIL_NAMES[target], save_all=True, append_images=frames[1:], **kwargs)
                    width, height = frames[0].size
                else:
                    frame = prepare_frame(image, target, options, box)
                    ctx.progress(1, 2)
                    if target == "ico":
                        side = min(256, max(frame.size))
                        frame.save(dst, "ICO", sizes=[(s, s) for s in (16, 32, 48, 64, 128, 256) if s <= side] or [(16, 16)])
                    else:
                        frame.save(dst, PIL_NAMES[target], **save_kwargs(target, options, clean_exif(image), icc))
                    width, height = frame.size
                    n_frames = 1
            except (OSError, ValueError, SyntaxError, EOFError) as exc:
                raise ConversionFailed(f"The image could not be converted: {exc}", "UNREADABLE_CONTENT") from None
        ctx.progress(1, 1)
        return {"width": width, "height": height, "frames": n_frames}


class ImageToPdf(Converter):
    name = "pillow-pdf"
    sources = IMAGE_FORMATS
    targets = ("pdf",)
    modules = ("PIL",)
    options = (
        Option("resolution", "int", 72, 36, 1200, help="Dots per inch: the page size is pixels / resolution."),
        ORIENT,
        Option("background", "color", "#ffffff", help="Colour behind transparent pixels."),
    )

    def convert(self, src: Path, source: str, dst: Path, target: str, options: dict[str, Any], ctx: Context) -> dict[str, Any]:
        image = open_image(src, ctx, source)
        with image:
            pages, decoded = [], 0
            count = getattr(image, "n_frames", 1)
            for index in range(count):
                image.seek(index)
                decoded = count_frame(decoded, image, ctx)
                pages.append(prepare_frame(image.copy(), "jpeg", options, None))
                ctx.progress(index + 1, count + 1)
            title = ctx.title_for(src)
            pages[0].save(
                dst, "PDF", save_all=True, append_images=pages[1:], resolution=float(options.get("resolution") or 72), title=title
            )
        return {"pages": len(pages)}
