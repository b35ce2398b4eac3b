"""Raster images whose decoding is bounded before any pixel is decoded (decision 0007).

Small raster images are decoded in the worker process instead of a sandboxed child when
their header proves the work small: one of a few formats, a file of at most
INLINE_MAX_BYTES, one frame, and header dimensions within INLINE_MAX_PIXELS. Memory is then
a few times INLINE_MAX_PIXELS * 4 bytes and the time a few milliseconds, far inside the
sandbox's limits; a decoder that crashes the worker gets the worker-lost path (acks_late
redelivery, then the poison counter of the job or the file). Used by the conversion engine
(``conversions.engine``: inline conversions, with its own checks of the route and the output)
and by the uploads pipeline (``uploads.processing.inspect``: a file's summary and thumbnail,
decision 0013). Everything else still runs sandboxed.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

INLINE_FORMATS = frozenset({"png", "jpeg", "gif", "bmp", "webp"})
# Our format names -> Pillow's: the formats Pillow may open anywhere in the product (the
# converters' allowlist, conversions.converters.images); the inline ones are a subset.
PIL_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP", "tiff": "TIFF", "ico": "ICO"}
INLINE_MAX_BYTES = 1024 * 1024
INLINE_MAX_PIXELS = 1_000_000
INLINE_JPEG_MAX_BYTES = 4 * 1024 * 1024
INLINE_JPEG_MAX_DECODED_PIXELS = 2_000_000
# Metadata is parsed outside the pixel bound: EXIF whose IFDs share values made
# exif_transpose take seconds on a 1 MiB file, and PNG text chunks inflate up to 1000:1.
# Over these (and they are far above what a photo or a screenshot carries), the sandbox.
INLINE_MAX_METADATA_BYTES = 64 * 1024  # EXIF, XMP and all text together, as parsed
INLINE_MAX_TEXT_INFLATED = 256 * 1024  # PNG text while opening (Pillow's limits, lowered)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Warnings while decoding in a worker: none printed (a file can carry tens of thousands
    of malformed tags, each a warning), decompression-bomb warnings raised; the worker's own
    filters are back after."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def metadata_bounded(image: object) -> bool:
    """The metadata of an opened image (``image.info``) that Pillow parses tag by tag or
    string by string (EXIF, XMP, text) is within INLINE_MAX_METADATA_BYTES. An ICC profile
    is only carried as bytes (bounded by the file's size) and does not count."""
    total = 0
    for key, value in getattr(image, "info", {}).items():
        if key == "icc_profile":
            continue
        if isinstance(value, (bytes, bytearray, str)):
            total += len(value)
        elif isinstance(value, tuple):
            total += sum(len(v) for v in value if isinstance(v, (bytes, bytearray, str)))
    return total <= INLINE_MAX_METADATA_BYTES


def small_raster(path: Path | str, kind: str, size: int, *, max_pixels: int | None = None) -> bool:
    """True when ``path`` (sniffed as ``kind``, ``size`` bytes) is a small raster image by
    its header alone: a format of INLINE_FORMATS opened as that format only, at most
    INLINE_MAX_BYTES, one frame, at most INLINE_MAX_PIXELS (and ``max_pixels``, the
    operator's limit: an image over it is left to the sandbox, which refuses it as ever),
    metadata within INLINE_MAX_METADATA_BYTES, and for a JPEG a single-pass structure
    (``jpeg_single_pass``). No pixel is decoded; anything unreadable is False."""
    if kind not in INLINE_FORMATS or not 0 < size <= INLINE_MAX_BYTES:
        return False
    if kind == "jpeg" and not jpeg_single_pass(path):  # first: it reads markers only
        return False
    from PIL import Image, PngImagePlugin

    limits = PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY
    try:
        with quiet():
            # Text inflated while opening stops at INLINE_MAX_TEXT_INFLATED (Pillow's own limits,
            # lowered for this open only; a worker process runs one task at a time).
            PngImagePlugin.MAX_TEXT_CHUNK = PngImagePlugin.MAX_TEXT_MEMORY = INLINE_MAX_TEXT_INFLATED
            with Image.open(path, formats=[PIL_NAMES[kind]]) as image:
                if getattr(image, "n_frames", 1) != 1 or not metadata_bounded(image):
                    return False
                width, height = image.size
                return 0 < width * height <= min(INLINE_MAX_PIXELS, max_pixels or INLINE_MAX_PIXELS)
    except Exception:  # noqa: BLE001  unreadable or suspicious: the sandbox reports it properly
        return False
    finally:
        PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY = limits


def jpeg_single_pass(src: Path | str) -> bool:
    """The markers up to the first SOS describe a JPEG that libjpeg decodes in one pass with no
    whole-image buffer: a Huffman-coded sequential frame (SOF0/SOF1) whose first scan holds every
    component (a later SOS is then an error in libjpeg). "Not progressive" is not enough: a
    sequential file may put each component in its own scan (and repeat them), which makes libjpeg
    keep every DCT coefficient at full resolution (8 bytes a pixel with four components, whatever
    draft asks for), and arithmetic coding (SOF9..) costs a pass over every block per scan for a
    few bytes a scan; lossless and hierarchical frames are not DCT-scaled at all."""
    with open(src, "rb") as fh:  # the header only: segments we do not inspect are skipped by seek
        if fh.read(2) != b"\xff\xd8":
            return False
        components = None
        while fh.tell() <= INLINE_JPEG_MAX_BYTES:
            head = fh.read(2)
            if len(head) != 2 or head[0] != 0xFF:
                return False
            marker = head[1]
            while marker == 0xFF:  # fill bytes
                more = fh.read(1)
                if not more:
                    return False
                marker = more[0]
            if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD9):
                return False  # stand-alone markers (and the end) have no place in the header
            raw = fh.read(2)
            length = int.from_bytes(raw, "big") if len(raw) == 2 else 0
            if length < 2:
                return False
            if marker in (0xC0, 0xC1):
                body = fh.read(length - 2)
                if components is not None or len(body) != length - 2 or len(body) < 6:
                    return False
                components = body[5]
            elif 0xC2 <= marker <= 0xCF and marker not in (
                0xC4,
                0xC8,
            ):  # progressive, lossless, arithmetic (DAC too), hierarchical
                return False
            elif marker == 0xDA:
                first = fh.read(1)
                return components is not None and length >= 3 and first == bytes([components])
            else:
                fh.seek(length - 2, os.SEEK_CUR)
    return False
