"""The inline path's JPEG bound (engine._jpeg_single_pass): files Pillow calls baseline (no
'progressive' in info) that libjpeg still decodes with a full-resolution coefficient buffer or
a pass per scan must fork."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from conversions import converters, engine

# 8900x8900 RGB, arithmetic-coded sequential, one scan per component: 171 bytes (cjpeg-like libjpeg encoder).
ARITH_SEQUENTIAL = bytes.fromhex(
    "ffd8ffee000e41646f626500640000000000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc900110822c422c403521100471100421100ffcc000600101005ffda0008015200003f001eb780ffcc000600101005ffda0008014700003f001eb780ffcc000600101005ffda0008014200003f001eb780ffd9"
)
OPTIONS = {"width": 1024, "fit": "contain", "auto_orient": True}


def seg(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def huffman_jpeg(width: int, height: int, components: int, *, interleaved: bool) -> bytes:
    """Every block is 2 bits (a 1-bit DC code for diff 0, a 1-bit AC code for EOB)."""
    out = b"\xff\xd8" + seg(0xFFDB, b"\x00" + bytes([1] * 64))
    sof = struct.pack(">BHHB", 8, height, width, components) + b"".join(bytes([i + 1, 0x11, 0]) for i in range(components))
    one = bytes([1] + [0] * 15) + b"\x00"
    out += seg(0xFFC0, sof) + seg(0xFFC4, b"\x00" + one + b"\x10" + one)
    blocks = ((width + 7) // 8) * ((height + 7) // 8)

    def data(bits: int) -> bytes:
        full, rest = divmod(bits, 8)
        return bytes(full) + (bytes([(1 << (8 - rest)) - 1]) if rest else b"")

    if interleaved:
        sos = bytes([components]) + b"".join(bytes([i + 1, 0]) for i in range(components)) + bytes([0, 63, 0])
        out += seg(0xFFDA, sos) + data(2 * blocks * components)
    else:
        for i in range(components):
            out += seg(0xFFDA, bytes([1, i + 1, 0, 0, 63, 0])) + data(2 * blocks)
    return out + b"\xff\xd9"


def inline(tmp_path, body: bytes) -> bool:
    path = tmp_path / "in.jpg"
    path.write_bytes(body)
    return engine._inline_bounded(converters.route_for("jpeg", "jpeg"), path, len(body), OPTIONS)


def pillow_jpeg(mode: str, **save) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (3000, 2000)).save(out, "JPEG", **save)
    return out.getvalue()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(huffman_jpeg(8900, 8900, 3, interleaved=False), id="one-scan-per-component (~460 MB of coefficients)"),
        pytest.param(huffman_jpeg(8900, 8900, 4, interleaved=False), id="cmyk-one-scan-per-component (~610 MB)"),
        pytest.param(ARITH_SEQUENTIAL, id="arithmetic-sequential (171 bytes, a pass over 79 MP per scan)"),
        pytest.param(pillow_jpeg("RGB", progressive=True), id="progressive"),
    ],
)
def test_multi_pass_jpegs_fork(tmp_path, body):
    assert not inline(tmp_path, body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(huffman_jpeg(8900, 8900, 3, interleaved=True), id="interleaved-huffman"),
        pytest.param(pillow_jpeg("RGB", quality=85, icc_profile=b"x" * 70000), id="pillow-rgb-big-icc"),
        pytest.param(pillow_jpeg("CMYK"), id="pillow-cmyk-adobe"),
    ],
)
def test_single_pass_jpegs_stay_inline(tmp_path, body):
    assert inline(tmp_path, body)
