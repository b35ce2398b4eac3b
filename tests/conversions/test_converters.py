"""Every converter on real files; outputs re-opened by the reading library and checked."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conversions import converters
from conversions.converters.base import Context, ConversionFailed
from tests.conversions import samples

needs_ffmpeg = pytest.mark.skipif(not samples.HAS_FFMPEG, reason="ffmpeg is not installed")
needs_soffice = pytest.mark.skipif(not samples.HAS_SOFFICE, reason="LibreOffice is not installed")


def convert(tmp_path: Path, data: bytes, source: str, target: str, extra=None, **options) -> tuple[bytes, dict, list[int]]:
    route = converters.route_for(source, target)
    assert route is not None, f"no route {source} -> {target}"
    validated = converters.validate_options(route, options)
    src = tmp_path / f"input.{source}"
    src.write_bytes(data)
    seen: list[int] = []
    ctx = Context(workdir=tmp_path, max_image_pixels=80_000_000, timeout=120, extra_inputs=extra or [], report=seen.append)
    out = converters.run_route(route, src, validated, ctx, tmp_path)
    return Path(out["path"]).read_bytes(), out["facts"], seen


def reopen(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# --- images -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["png", "jpeg", "webp", "gif", "bmp", "tiff", "ico"])
def test_jpeg_to_every_image_format(tmp_path, target):
    out, _facts, progress = convert(tmp_path, samples.image_bytes("jpeg", (64, 48)), "jpeg", target)
    image = reopen(out)
    expected = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP", "tiff": "TIFF", "ico": "ICO"}[target]
    assert image.format == expected
    if target != "ico":
        assert image.size == (64, 48)
    assert progress and progress[-1] == 100


@pytest.mark.parametrize("source", ["png", "webp", "gif", "bmp", "tiff", "ico"])
def test_every_image_format_to_png(tmp_path, source):
    out, facts, _ = convert(tmp_path, samples.image_bytes(source, (32, 32)), source, "png")
    assert reopen(out).format == "PNG"
    assert facts["width"] == 32


def test_exif_orientation_applied_and_exif_carried_over(tmp_path):
    # Orientation 6 = rotate 90° clockwise: a 300x200 file displays as 200x300.
    out, _facts, _ = convert(tmp_path, samples.jpeg_with_exif((300, 200), orientation=6), "jpeg", "jpeg")
    image = reopen(out)
    assert image.size == (200, 300)
    exif = image.getexif()
    assert exif.get(0x0112) == 1  # reset: the pixels are upright now
    assert exif.get(0x010F) == "TestCam"


def test_auto_orient_off_keeps_stored_pixels(tmp_path):
    out, _, _ = convert(tmp_path, samples.jpeg_with_exif((300, 200), orientation=6), "jpeg", "png", auto_orient=False)
    assert reopen(out).size == (300, 200)


def test_strip_metadata_drops_exif(tmp_path):
    out, _, _ = convert(tmp_path, samples.jpeg_with_exif(), "jpeg", "jpeg", strip_metadata=True)
    assert not reopen(out).getexif()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"width": 100}, (100, 50)),
        ({"height": 25}, (50, 25)),
        ({"width": 100, "height": 100, "fit": "contain"}, (100, 50)),
        ({"width": 100, "height": 100, "fit": "cover"}, (100, 100)),
        ({"width": 100, "height": 100, "fit": "fill"}, (100, 100)),
        ({"width": 1000, "height": 1000, "fit": "inside"}, (200, 100)),
    ],
)
def test_resize_and_fit(tmp_path, options, expected):
    data = samples.image_bytes("png", (200, 100))
    out, facts, _ = convert(tmp_path, data, "png", "webp", **options)
    assert reopen(out).size == expected
    assert (facts["width"], facts["height"]) == expected


def test_jpeg_draft_thumbnail_has_exact_size(tmp_path):
    data = samples.image_bytes("jpeg", (3000, 2000))
    out, _, _ = convert(tmp_path, data, "jpeg", "jpeg", width=1024, quality=70)
    assert reopen(out).size == (1024, 683)


def test_transparent_png_to_jpeg_uses_background(tmp_path):
    out, _, _ = convert(tmp_path, samples.png_rgba(), "png", "jpeg", background="#00ff00")
    image = reopen(out).convert("RGB")
    assert image.mode == "RGB"
    r, g, b = image.getpixel((100, 70))  # transparent area
    assert g > 200 and r < 60 and b < 60
    r, g, b = image.getpixel((20, 20))  # opaque red
    assert r > 200 and g < 60


def test_quality_changes_size(tmp_path):
    noisy = io.BytesIO()
    Image.effect_noise((200, 200), 80).convert("RGB").save(noisy, "PNG")
    low, _, _ = convert(tmp_path, noisy.getvalue(), "png", "jpeg", quality=10)
    high, _, _ = convert(tmp_path, noisy.getvalue(), "png", "jpeg", quality=95)
    assert len(low) < len(high) / 2


@pytest.mark.parametrize("target", ["gif", "webp"])
def test_animated_gif_keeps_frames(tmp_path, target):
    out, facts, _ = convert(tmp_path, samples.animated_gif(frames=4), "gif", target, width=20)
    image = Image.open(io.BytesIO(out))
    assert getattr(image, "n_frames", 1) == 4
    assert image.size == (20, 15)
    assert facts["frames"] == 4


def _multipage_tiff(colours) -> bytes:
    pages = [Image.new("RGB", (30, 20), colour) for colour in colours]
    out = io.BytesIO()
    pages[0].save(out, "TIFF", save_all=True, append_images=pages[1:])
    return out.getvalue()


def test_a_multi_page_tiff_keeps_its_pages(tmp_path):
    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250)]
    out, facts, _ = convert(tmp_path, _multipage_tiff(colours), "tiff", "tiff", width=15)
    image = Image.open(io.BytesIO(out))
    assert image.n_frames == 3 and facts["frames"] == 3
    for index, colour in enumerate(colours):
        image.seek(index)
        assert image.size == (15, 10) and image.convert("RGB").getpixel((7, 5)) == colour
    # and an animation's frames become pages
    out, facts, _ = convert(tmp_path, samples.animated_gif(frames=4), "gif", "tiff")
    assert Image.open(io.BytesIO(out)).n_frames == 4 == facts["frames"]


def test_frames_too_large_together_count_each_pages_own_size(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # open_image sets it for the process
    from conversions.converters.images import ImageConverter

    small, large = Image.new("RGB", (1, 1)), Image.new("RGB", (30, 20))
    out = io.BytesIO()
    small.save(out, "TIFF", save_all=True, append_images=[large] * 5)  # a 1x1 first page, then 5 x 600 px
    src = tmp_path / "pages.tiff"
    src.write_bytes(out.getvalue())
    with pytest.raises(ConversionFailed) as caught:
        ImageConverter().convert(src, "tiff", tmp_path / "out.tiff", "tiff", {}, Context(workdir=tmp_path, max_image_pixels=700))
    assert caught.value.code == "IMAGE_TOO_LARGE"


def test_frames_too_large_together_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # open_image sets it for the process
    from conversions.converters.images import ImageConverter

    src = tmp_path / "pages.tiff"
    src.write_bytes(_multipage_tiff([(1, 2, 3)] * 5))  # 5 x 600 px
    ctx = Context(workdir=tmp_path, max_image_pixels=700)  # each page fits; the five together do not (4 x 700)
    with pytest.raises(ConversionFailed) as caught:
        ImageConverter().convert(src, "tiff", tmp_path / "out.tiff", "tiff", {}, ctx)
    assert caught.value.code == "IMAGE_TOO_LARGE"
    ImageConverter().convert(src, "tiff", tmp_path / "one.png", "jpeg", {}, ctx)  # one page: fine


def test_decompression_bomb_is_refused(tmp_path):
    bomb = samples.pixel_flood_png(20000)  # 400 Mpx declared, a few kB on disk
    assert len(bomb) < 100_000
    with pytest.raises(ConversionFailed) as caught:
        convert(tmp_path, bomb, "png", "jpeg")
    assert caught.value.code == "IMAGE_TOO_LARGE"


def test_disallowed_image_format_is_not_opened(tmp_path):
    # An EPS (Ghostscript territory) named .png: Pillow may not even try it.
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(ConversionFailed) as caught:
        convert(tmp_path, eps, "png", "jpeg")
    assert caught.value.code == "UNREADABLE_CONTENT"


def test_images_to_pdf_multi_frame(tmp_path):
    out, facts, _ = convert(tmp_path, samples.animated_gif(frames=3), "gif", "pdf")
    assert samples.pdf_pages(out) == 3
    assert facts["pages"] == 3


# --- PDF ----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["png", "jpeg", "webp"])
def test_pdf_page_to_image(tmp_path, target):
    pdf = samples.pdf_bytes(pages=3, size=(200, 300))
    out, facts, _ = convert(tmp_path, pdf, "pdf", target, page=2, dpi=144)
    image = reopen(out)
    assert image.size == (400, 600) and image.format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[target]
    assert facts == {"width": 400, "height": 600, "page": 2, "pages": 3}


def test_pdf_to_png_renders_every_page_into_a_zip_by_default(tmp_path):
    import zipfile

    pdf = samples.pdf_bytes(pages=3, size=(200, 300), texts=["Alpha", "Bravo", "Charlie"])
    out, facts, progress = convert(tmp_path, pdf, "pdf", "png", dpi=72)
    assert facts == {"archive": "zip", "pages": 3, "rendered": 3, "width": 200, "height": 300}
    with zipfile.ZipFile(io.BytesIO(out)) as archive:
        assert archive.namelist() == ["page-001.png", "page-002.png", "page-003.png"]
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}  # PNG is compressed already
        pages = [reopen(archive.read(name)) for name in archive.namelist()]
    assert [(p.format, p.size) for p in pages] == [("PNG", (200, 300))] * 3
    # each entry is its own page: the same as rendering that page alone
    second, _, _ = convert(tmp_path, pdf, "pdf", "png", dpi=72, page=2)
    assert pages[1].tobytes() == reopen(second).tobytes() != pages[0].tobytes()
    assert progress == sorted(progress) and progress[-1] == 100 and len(set(progress)) >= 4  # per page


def test_pdf_pages_selects_some_pages_as_jpeg(tmp_path):
    import zipfile

    out, facts, _ = convert(tmp_path, samples.pdf_bytes(pages=4), "pdf", "jpeg", pages="2,4", dpi=72, quality=60)
    with zipfile.ZipFile(io.BytesIO(out)) as archive:
        assert archive.namelist() == ["page-002.jpg", "page-004.jpg"]
        assert {reopen(archive.read(n)).format for n in archive.namelist()} == {"JPEG"}
    assert facts["rendered"] == 2 and facts["pages"] == 4


def test_pdf_pages_to_one_multi_page_tiff(tmp_path):
    pdf = samples.pdf_bytes(pages=3, size=(200, 300), texts=["Alpha", "Bravo", "Charlie"])
    out, facts, progress = convert(tmp_path, pdf, "pdf", "tiff", dpi=72)
    image = Image.open(io.BytesIO(out))
    assert image.format == "TIFF" and image.n_frames == 3 and "archive" not in facts
    assert facts["rendered"] == 3 and progress[-1] == 100
    pages = []
    for index in range(3):
        image.seek(index)
        assert image.size == (200, 300)
        pages.append(image.convert("RGB").tobytes())
    assert len(set(pages)) == 3  # three different pages, in order
    alone, _, _ = convert(tmp_path, pdf, "pdf", "tiff", dpi=72, pages="2")
    assert Image.open(io.BytesIO(alone)).n_frames == 1
    assert Image.open(io.BytesIO(alone)).convert("RGB").tobytes() == pages[1]


@pytest.mark.parametrize(("target", "pil_format"), [("gif", "GIF"), ("bmp", "BMP")])
def test_pdf_page_to_gif_or_bmp(tmp_path, target, pil_format):
    pdf = samples.pdf_bytes(pages=2, size=(200, 300), texts=["Alpha", "Bravo"])
    out, facts, _ = convert(tmp_path, pdf, "pdf", target, page=2, dpi=144)
    image = reopen(out)
    assert (image.format, image.size) == (pil_format, (400, 600))
    assert facts == {"width": 400, "height": 600, "page": 2, "pages": 2}
    # the same pixels as the PNG of that page, but for GIF's 256-colour palette
    png = reopen(convert(tmp_path, pdf, "pdf", "png", page=2, dpi=144)[0]).convert("RGB")
    if target == "bmp":
        assert image.convert("RGB").tobytes() == png.tobytes()
    else:
        assert image.mode == "P" and len(image.getcolors(256) or []) <= 256
        assert image.convert("RGB").getextrema() == png.getextrema()  # black text on white survives the palette


def test_pdf_pages_to_gif_and_bmp_come_as_a_zip(tmp_path):
    import zipfile

    pdf = samples.pdf_bytes(pages=3, size=(120, 160), texts=["Alpha", "Bravo", "Charlie"])
    for target, packing in (("gif", zipfile.ZIP_STORED), ("bmp", zipfile.ZIP_DEFLATED)):  # BMP is not compressed
        out, facts, progress = convert(tmp_path, pdf, "pdf", target, dpi=72)
        assert facts == {"archive": "zip", "pages": 3, "rendered": 3, "width": 120, "height": 160}
        with zipfile.ZipFile(io.BytesIO(out)) as archive:
            assert archive.namelist() == [f"page-00{n}.{target}" for n in (1, 2, 3)]
            assert {i.compress_type for i in archive.infolist()} == {packing}
            pages = [reopen(archive.read(name)) for name in archive.namelist()]
        assert {(p.format, p.size) for p in pages} == {(target.upper(), (120, 160))}
        assert len({p.convert("RGB").tobytes() for p in pages}) == 3
        assert progress[-1] == 100


def test_pages_asked_for_twice_are_rendered_once(tmp_path):
    import zipfile

    out, facts, _ = convert(tmp_path, samples.pdf_bytes(pages=4), "pdf", "png", pages="3,1-2,2-3", dpi=36)
    with zipfile.ZipFile(io.BytesIO(out)) as archive:
        assert archive.namelist() == ["page-003.png", "page-001.png", "page-002.png"]  # the order asked, each once
    assert facts["rendered"] == 3


def test_a_page_too_wide_for_webp_is_image_too_large(tmp_path):
    with pytest.raises(ConversionFailed) as caught:
        convert(tmp_path, samples.pdf_bytes(pages=1, size=(3000, 200)), "pdf", "webp", dpi=600)  # 25,000 px wide
    assert caught.value.code == "IMAGE_TOO_LARGE" and "16383" in caught.value.message


@pytest.mark.parametrize(("pages", "options"), [(1, {}), (3, {"pages": "3"}), (3, {"page": 3})])
def test_one_page_is_one_image_not_an_archive(tmp_path, pages, options):
    out, facts, _ = convert(tmp_path, samples.pdf_bytes(pages=pages), "pdf", "png", dpi=72, **options)
    assert reopen(out).format == "PNG" and "archive" not in facts and facts["page"] == pages


def test_too_many_pages_for_one_job_fail_before_rendering(tmp_path, monkeypatch):
    from conversions.converters import pdf as pdf_converter

    monkeypatch.setattr(pdf_converter, "MAX_RENDERED_PAGES", 2)
    with pytest.raises(ConversionFailed) as caught:
        convert(tmp_path, samples.pdf_bytes(pages=3), "pdf", "png")
    assert caught.value.code == "TOO_MANY_PAGES" and "pages" in caught.value.message
    assert convert(tmp_path, samples.pdf_bytes(pages=3), "pdf", "png", pages="1-2", dpi=72)[1]["rendered"] == 2


def _actions(data: bytes) -> list:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    found = []
    for page in reader.pages:
        found += [("page", k) for k in page if k == "/AA"]
        for ref in page.get("/Annots") or []:
            annot = ref.get_object()
            action = annot.get("/A")
            found.append((annot.get("/Subtype"), action.get_object().get("/S") if action else None, "/AA" in annot))
    root = reader.trailer["/Root"]
    found += [("root", k) for k in ("/AA", "/OpenAction") if k in root]
    found += [("names", k) for k in (root.get("/Names") or {})]
    return found


def test_scrub_actions_leaves_only_jumps_and_links_to_the_web(tmp_path):
    from pypdf import PdfReader

    from conversions.converters.pdf import scrub_actions

    path = tmp_path / "actions.pdf"
    path.write_bytes(samples.pdf_with_actions())
    assert len(_actions(path.read_bytes())) == 12  # what the sample carries, as read back
    assert scrub_actions(path) > 0
    scrubbed = path.read_bytes()
    assert _actions(scrubbed) == [("/Link", "/URI", False), ("/Link", "/URI", False), ("/Link", None, False)]
    reader = PdfReader(io.BytesIO(scrubbed))
    uris = [a.get_object()["/A"]["/URI"] for a in reader.pages[0]["/Annots"] if "/A" in a.get_object()]
    assert uris == ["https://example.com/safe", "https://example.com/kept"]  # the mouse-over script of the first went
    assert "Page with actions" in reader.pages[0].extract_text()
    for marker in (b"ACTION-MARKER", b"DOCUMENT-MARKER", b"EMBEDDED-FILE-MARKER", b"cmd.exe", b"file:///etc/passwd"):
        assert marker not in scrubbed, marker
    assert scrub_actions(path) == 0 and path.read_bytes() == scrubbed  # nothing left: not rewritten
    clean = tmp_path / "clean.pdf"
    clean.write_bytes(samples.pdf_bytes(pages=2))
    before = clean.stat().st_mtime_ns, clean.read_bytes()
    assert scrub_actions(clean) == 0 and (clean.stat().st_mtime_ns, clean.read_bytes()) == before


def _pdf_case(case: str) -> bytes:
    """A one-page PDF with one way of carrying an action that scrub_actions must find."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, DictionaryObject, FloatObject, NameObject, StreamObject, TextStringObject

    def d(**entries) -> DictionaryObject:
        return DictionaryObject({NameObject(f"/{k}"): v for k, v in entries.items()})

    def launch(marker: str = "MARKERLAUNCH") -> DictionaryObject:
        return d(S=NameObject("/Launch"), F=TextStringObject(marker))

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(samples.pdf_bytes(pages=1))))
    page, root, box = writer.pages[0], writer._root_object, ArrayObject([FloatObject(0)] * 4)
    link, annot = NameObject("/Link"), NameObject("/Annot")
    if case == "inline widget":
        widget = d(Type=annot, Subtype=NameObject("/Widget"), Rect=box, A=launch(), AA=d(E=launch()))
        page[NameObject("/Annots")] = ArrayObject([widget])
    elif case == "outline item without parent":
        item = writer._add_object(d(Title=TextStringObject("x"), A=launch()))
        root[NameObject("/Outlines")] = writer._add_object(d(Type=NameObject("/Outlines"), First=item, Last=item))
    elif case == "catalog without type":
        del root[NameObject("/Type")]
        root[NameObject("/OpenAction")] = launch()
    elif case == "xfa":
        xfa = StreamObject()
        xfa._data = b"<xdp:xdp><script>app.alert('MARKERLAUNCH')</script></xdp:xdp>"
        root[NameObject("/AcroForm")] = d(Fields=ArrayObject(), XFA=writer._add_object(xfa))
    elif case == "associated file":
        data = StreamObject()
        data._data = b"MARKERLAUNCH"
        spec = d(Type=NameObject("/Filespec"), F=TextStringObject("x.exe"), EF=d(F=writer._add_object(data)))
        root[NameObject("/AF")] = ArrayObject([writer._add_object(spec)])
    elif case == "indirect subtype":
        data = StreamObject()
        data._data = b"MARKERLAUNCH"
        spec = d(Type=NameObject("/Filespec"), F=TextStringObject("x.exe"), EF=d(F=writer._add_object(data)))
        subtype = writer._add_object(NameObject("/FileAttachment"))
        page[NameObject("/Annots")] = ArrayObject([writer._add_object(d(Type=annot, Subtype=subtype, Rect=box, FS=spec))])
    elif case == "a chain of 200":
        action = launch("MARKERLAUNCH0")
        for index in range(1, 200):
            action = d(S=NameObject("/Launch"), F=TextStringObject(f"MARKERLAUNCH{index}"), Next=writer._add_object(action))
        page[NameObject("/Annots")] = ArrayObject([writer._add_object(d(Type=annot, Subtype=link, Rect=box, A=action))])
    else:  # a web link with characters that make it something else to some viewers
        uri = {"nul": "h\x00ttps://x/MARKERLAUNCH", "tab": "ht\ttp://MARKERLAUNCH/", "vt": "https\x0b://MARKERLAUNCH"}[case]
        action = d(S=NameObject("/URI"), URI=TextStringObject(uri))
        page[NameObject("/Annots")] = ArrayObject([writer._add_object(d(Type=annot, Subtype=link, Rect=box, A=action))])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    "case",
    ["inline widget", "outline item without parent", "catalog without type", "xfa", "associated file", "indirect subtype",
     "a chain of 200", "nul", "tab", "vt"],
)  # fmt: skip
def test_scrub_actions_finds_actions_wherever_they_are_written(tmp_path, case):
    from pypdf import PdfReader

    from conversions.converters.pdf import scrub_actions

    path = tmp_path / "case.pdf"
    path.write_bytes(_pdf_case(case))
    assert b"MARKERLAUNCH" in path.read_bytes() or case == "nul"  # written as UTF-16 there
    assert scrub_actions(path) > 0
    scrubbed = path.read_bytes()
    assert b"MARKERLAUNCH" not in scrubbed and b"/Launch" not in scrubbed, case  # nor left unreferenced
    reader = PdfReader(io.BytesIO(scrubbed))
    assert "Page number 1" in reader.pages[0].extract_text()
    assert all("/A" not in a.get_object() and "/AA" not in a.get_object() for a in reader.pages[0].get("/Annots") or [])


def test_pdf_page_beyond_the_end_fails(tmp_path):
    with pytest.raises(ConversionFailed) as caught:
        convert(tmp_path, samples.pdf_bytes(pages=2), "pdf", "png", page=5)
    assert caught.value.code == "INVALID_PAGES"


def test_pdf_to_text(tmp_path):
    pdf = samples.pdf_bytes(pages=3, texts=["Alpha page", "Bravo page", "Charlie page"])
    out, facts, progress = convert(tmp_path, pdf, "pdf", "text", pages="1,3")
    text = out.decode()
    assert "Alpha page" in text and "Charlie page" in text and "Bravo" not in text
    assert facts["pages"] == 2
    assert progress[-1] == 100


def test_pdf_page_extraction_and_merge(tmp_path):
    main = samples.pdf_bytes(pages=4, texts=["one", "two", "three", "four"])
    other = tmp_path / "other.pdf"
    other.write_bytes(samples.pdf_bytes(pages=2, texts=["extra1", "extra2"]))
    out, facts, _ = convert(tmp_path, main, "pdf", "pdf", extra=[(other, "pdf")], pages="2-3")
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(out))
    texts = [p.extract_text() for p in reader.pages]
    assert len(texts) == 4 and "two" in texts[0] and "three" in texts[1] and "extra2" in texts[3]
    assert reader.metadata.title == "Sample document"  # document info carried over
    assert facts["pages"] == 4


def test_malformed_pdf_fails_cleanly(tmp_path):
    broken = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R /Prev 999999 >>\n%%EOF"
    for target in ("text", "png", "pdf"):
        with pytest.raises(ConversionFailed):
            convert(tmp_path, broken, "pdf", target)


# --- data ---------------------------------------------------------------------------------

CSV = "id,name,score,active\n1,Ada,9.5,true\n2,Grace,9.8,false\n3,Alan,9.7,true\n"


def test_csv_to_json_infers_types(tmp_path):
    out, facts, _ = convert(tmp_path, CSV.encode(), "csv", "json")
    rows = json.loads(out)
    assert rows[0] == {"id": 1, "name": "Ada", "score": 9.5, "active": True}
    assert facts["rows"] == 3


RECORDS = [
    {"id": 1, "name": "Zoë", "tags": ["a", "b"], "address": {"city": "Zürich", "zip": None}},
    {"id": 2, "name": "Ada", "score": 9.5, "ok": True},
    "a bare string",
    [1, [2, 3]],
]


@pytest.mark.parametrize("pretty", [True, False])
@pytest.mark.parametrize(
    "records",
    [RECORDS, [*RECORDS[:2], RECORDS[3]], [], [{}], [{"k": "v"}], ["x", "y"]],
    ids=["mixed", "collections", "empty", "empty-object", "one", "scalars"],
)
def test_json_and_yaml_written_record_by_record_are_the_whole_lists_text(tmp_path, pretty, records):
    from conversions.converters.base import Context
    from conversions.converters.data import write_records

    for fmt in ("json", "yaml"):
        dst = tmp_path / f"out.{fmt}"
        write_records(records, dst, fmt, {"pretty": pretty}, Context(tmp_path))
        if fmt == "json":
            expected = json.dumps(records, ensure_ascii=False, indent=2 if pretty else None, default=str)
        else:
            expected = yaml.safe_dump(records, allow_unicode=True, sort_keys=False, default_flow_style=None if pretty else True)
        assert dst.read_text(encoding="utf-8") == expected, fmt


@pytest.mark.parametrize(("source", "target"), [("csv", "json"), ("ndjson", "yaml"), ("xlsx", "xml"), ("csv", "xlsx")])
def test_data_progress_follows_the_rows_read_and_written(tmp_path, source, target):
    rows = [{"n": i, "name": f"row {i}"} for i in range(6000)]
    if source == "xlsx":
        data = samples.xlsx_bytes([["n", "name"], *[[r["n"], r["name"]] for r in rows]], extra_sheet=False)
    elif source == "csv":
        data = ("n,name\n" + "".join(f"{r['n']},{r['name']}\n" for r in rows)).encode()
    else:
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    _out, facts, progress = convert(tmp_path, data, source, target)
    assert facts["rows"] == 6000
    reading = [p for p in progress if 0 < p < 50]
    writing = [p for p in progress if 50 < p < 100]
    assert len(set(reading)) >= 3 and len(set(writing)) >= 3, progress  # both halves move, row by row
    assert progress == sorted(progress) and progress[-1] == 100


def test_csv_semicolon_latin1_to_ndjson(tmp_path):
    data = "id;name\n1;Zoë\n2;Renée\n".encode("latin-1")
    out, _, _ = convert(tmp_path, data, "csv", "ndjson", delimiter=";", encoding="latin-1", infer_types=False)
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert lines == [{"id": "1", "name": "Zoë"}, {"id": "2", "name": "Renée"}]


def test_wrong_encoding_fails(tmp_path):
    with pytest.raises(ConversionFailed) as caught:
        convert(tmp_path, "a\n\xff\xfe\n".encode("latin-1"), "csv", "json")
    assert caught.value.code == "BAD_ENCODING"


def test_json_nested_to_csv_flattened(tmp_path):
    data = json.dumps([{"id": 1, "who": {"name": "Ada", "city": "London"}, "tags": ["a", "b"]}]).encode()
    out, _, _ = convert(tmp_path, data, "json", "csv")
    rows = list(csv.DictReader(io.StringIO(out.decode())))
    assert rows == [{"id": "1", "who.name": "Ada", "who.city": "London", "tags": '["a", "b"]'}]


def test_json_to_tsv_unflattened_and_yaml(tmp_path):
    data = json.dumps({"items": [{"a": 1, "b": {"c": 2}}]}).encode()
    out, _, _ = convert(tmp_path, data, "json", "yaml")
    assert yaml.safe_load(out) == [{"a": 1, "b": {"c": 2}}]
    out, _, _ = convert(tmp_path, data, "json", "tsv", flatten=False)
    assert list(csv.reader(io.StringIO(out.decode()), delimiter="\t")) == [["a", "b"], ["1", '{"c": 2}']]


def test_xlsx_sheet_to_csv_and_back(tmp_path):
    book = samples.xlsx_bytes([["name", "age"], ["Ada", 36], ["Alan", 41]])
    out, _facts, _ = convert(tmp_path, book, "xlsx", "csv", sheet="People")
    assert out.decode().splitlines() == ["name,age", "Ada,36", "Alan,41"]
    out, _, _ = convert(tmp_path, book, "xlsx", "json", sheet="2")
    assert json.loads(out) == [{"x": 42}]
    xlsx, _, _ = convert(tmp_path, CSV.encode(), "csv", "xlsx", sheet="Scores")
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(xlsx))["Scores"]
    assert [c.value for c in sheet[1]] == ["id", "name", "score", "active"]
    assert sheet.max_row == 4 and sheet["C2"].value == 9.5


def test_xlsx_missing_sheet_fails(tmp_path):
    with pytest.raises(ConversionFailed) as caught:
        convert(tmp_path, samples.xlsx_bytes([["a"], [1]]), "xlsx", "csv", sheet="Nope")
    assert caught.value.code == "INVALID_SHEET"


def test_xlsx_zip_bomb_refused(tmp_path):
    out = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (600 * 1024**2))
    with pytest.raises(ConversionFailed) as caught:
        convert(tmp_path, out.getvalue(), "xlsx", "csv")
    assert caught.value.code == "ARCHIVE_TOO_LARGE"


def test_xml_roundtrip_and_xxe_refused(tmp_path):
    data = b"<people><person id='1'><name>Ada</name></person><person id='2'><name>Alan</name></person></people>"
    out, _facts, _ = convert(tmp_path, data, "xml", "json")
    assert json.loads(out) == [{"@id": "1", "name": "Ada"}, {"@id": "2", "name": "Alan"}]
    out, _, _ = convert(tmp_path, CSV.encode(), "csv", "xml", root="scores")
    from defusedxml import ElementTree

    root = ElementTree.fromstring(out)
    assert root.tag == "scores" and len(root) == 3 and root[0].find("name").text == "Ada"
    xxe = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><a>&x;</a></r>'
    with pytest.raises(ConversionFailed):
        convert(tmp_path, xxe, "xml", "json")
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><r><x>&b;</x></r>'
    with pytest.raises(ConversionFailed):
        convert(tmp_path, bomb, "xml", "json")


def test_yaml_is_safe_loaded(tmp_path):
    evil = b"- !!python/object/apply:os.system ['echo pwned']\n"
    with pytest.raises(ConversionFailed):
        convert(tmp_path, evil, "yaml", "json")
    out, _, _ = convert(tmp_path, b"- a: 1\n  b: two\n", "yaml", "json", pretty=False)
    assert out == b'[{"a": 1, "b": "two"}]'


# --- text ---------------------------------------------------------------------------------


def test_markdown_to_html_sanitised(tmp_path):
    md = b"# Title here\n\nSome *text* and <script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    out, facts, _ = convert(tmp_path, md, "markdown", "html")
    html = out.decode()
    assert "<h1>Title here</h1>" in html and "<em>text</em>" in html and "<table>" in html
    assert "<script" not in html, html
    assert 'href="javascript' not in html and "&lt;script&gt;" in html
    assert "<title>Title here</title>" in html
    assert facts["title"] == "Title here"


def test_html_to_text_and_markdown_chain(tmp_path):
    html = b"<html><head><title>T</title><style>p{}</style></head><body><h1>Head</h1><p>One <b>two</b></p><script>x()</script><ul><li>i1</li></ul></body></html>"
    out, _, _ = convert(tmp_path, html, "html", "text")
    assert out.decode() == "Head\n\nOne two\n\n- i1\n"
    route = converters.route_for("markdown", "text")
    assert route.via == "html"
    out, _, progress = convert(tmp_path, b"# Hi\n\nthere", "markdown", "text")
    assert out.decode().split() == ["Hi", "there"]
    assert progress == sorted(progress)


@pytest.mark.parametrize(
    ("markup", "kept", "gone"),
    [
        ('<img src="file:///etc/hostname">', "<img>", "file:"),
        ('<img src="../../media/org/file/photo.png">', "<img>", "photo.png"),  # relative: another tenant's bytes
        ('<img src="https://tracker.example/p.png">', "<img>", "tracker"),
        ('<img src="data:image/svg+xml;base64,PHN2Zy8+">', "<img>", "svg"),  # SVG can load further URLs
        ('<img srcset="file:///a.png 2x" src="data:image/png;base64,iVBO">', "<img>", "srcset"),  # not an image: dropped
        ('<body background="file:///b.png"><p>x</p></body>', "<p>x</p>", "b.png"),
        ('<p style="background:url(file:///c.png)">x</p>', "<p>x</p>", "c.png"),
        ("<style>@import url(file:///d.css);</style><p>x</p>", "<p>x</p>", "d.css"),
        ('<link rel="stylesheet" href="file:///e.css"><p>x</p>', "<p>x</p>", "e.css"),
        ('<iframe src="file:///etc/passwd"></iframe><p>x</p>', "<p>x</p>", "passwd"),
        ('<object data="file:///f"></object><embed src="file:///g"><p>x</p>', "<p>x</p>", "file:"),
        ('<svg><image href="file:///h.png"/></svg><p>x</p>', "<p>x</p>", "h.png"),
        ('<meta http-equiv="refresh" content="0;url=file:///i"><p>x</p>', "<p>x</p>", "refresh"),
        ('<a href="data:text/html,hi">x</a>', "x</a>", "data:"),
        ('<a href="da&#x09;ta:text/html,hi">x</a>', "x</a>", "href"),  # a tab inside the scheme
        ('<a href="../../media/org/file/a.pdf">x</a>', "x</a>", "href"),  # a relative link becomes a file: link
        ('<a href="\\\\attacker\\share\\x">x</a>', "x</a>", "href"),  # UNC: credentials sent on a click
        ('<a href="javascript:alert(1)">x</a>', "x</a>", "href"),
        ('<a href="#part-2">x</a>', 'href="#part-2"', "javascript"),
        ('<q cite="file:///etc/passwd">x</q>', "<q>x</q>", "cite"),
        ("<script>document.write('x')</script><p>y</p>", "<p>y</p>", "script"),
        ('<a href="https://example.com/">x</a>', 'href="https://example.com/"', "javascript"),  # a link stays a link
    ],
)
def test_the_copy_libreoffice_lays_out_names_nothing_it_would_load(markup, kept, gone):
    from conversions.converters.text import sanitize_for_layout

    page = sanitize_for_layout(markup, default_title="t")
    body = page.split("<body>", 1)[1]
    assert kept in body and gone not in body, body


def test_the_laid_out_copy_keeps_the_title_and_decodes_the_declared_charset():
    from conversions.converters.text import decode_html, sanitize_for_layout

    page = sanitize_for_layout("<title> Caf&eacute; <b>menu</b> </title><p>x</p>", default_title="file name")
    assert "<title>Café menu</title>" in page and page.count("menu") == 1  # the title is not repeated as text
    assert "<title>file name</title>" in sanitize_for_layout("<p>x</p>", default_title="file name")
    assert decode_html('<meta charset="iso-8859-1"><p>caf\xe9</p>'.encode("latin-1")).endswith("café</p>")
    assert decode_html(b"\xef\xbb\xbf<p>caf\xc3\xa9</p>") == "<p>café</p>"
    assert decode_html(b"<p>caf\xe9</p>") == "<p>café</p>"  # not UTF-8, undeclared: windows-1252
    assert decode_html(b'<meta charset="no-such-charset"><p>\xc3\xa9</p>').endswith("é</p>")
    for odd in ("idna", "undefined", "base64", "rot13", "zlib", "utf-7"):  # codecs, but not web charsets
        assert decode_html(f'<meta charset="{odd}"><p>é</p>'.encode()).endswith("é</p>"), odd


def _data_uri(data: bytes, declared: str) -> str:
    import base64

    return f"data:image/{declared};base64,{base64.b64encode(data).decode()}"


def test_a_data_image_reaches_the_layout_only_as_pixels_encoded_again():
    """LibreOffice reads a data: image by its bytes, not by its declared type: an SVG or a PDF
    labelled image/png would load local files or carry link actions into the output."""
    import base64

    from conversions.converters.text import sanitize_for_layout

    red = io.BytesIO()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(red, "PNG")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><image width="9" height="9" href="file:///etc/secret.png"/></svg>'
    pdf = samples.pdf_bytes(pages=1)
    for payload, declared in (
        (svg, "png"),
        (svg, "svg+xml"),
        (pdf, "png"),
        (b"\x89PNG\r\n\x1a\n" + svg, "png"),
        (red.getvalue(), "gif"),
    ):
        page = sanitize_for_layout(f'<img src="{_data_uri(payload, declared)}">', default_title="t")
        assert "<img>" in page and "base64" not in page, (declared, payload[:20])
    page = sanitize_for_layout(f'<img alt="chart" src="{_data_uri(red.getvalue(), "png")}">', default_title="t")
    encoded = page.split('src="data:image/png;base64,', 1)[1].split('"', 1)[0]
    again = reopen(base64.b64decode(encoded))
    assert (again.format, again.size, again.getpixel((3, 3))) == ("PNG", (40, 30), (255, 0, 0))
    jpeg = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 0, 255)).save(jpeg, "JPEG")
    assert 'src="data:image/jpeg;base64,' in sanitize_for_layout(
        f'<img src="{_data_uri(jpeg.getvalue(), "jpeg")}">', default_title="t"
    )


def test_a_jpeg_of_thousands_of_scans_is_not_decoded():
    from conversions.converters import text

    progressive = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 10)).save(progressive, "JPEG", progressive=True)
    data = progressive.getvalue()
    assert "base64," in text.sanitize_for_layout(f'<img src="{_data_uri(data, "jpeg")}">', default_title="t")
    # One scan repeated until there are more than DATA_IMAGE_MAX_SCANS: each would be a pass.
    first = data.index(b"\xff\xda")
    flood = data[:first] + data[first:-2] * (text.DATA_IMAGE_MAX_SCANS // data.count(b"\xff\xda") + 1) + b"\xff\xd9"
    assert flood.count(b"\xff\xda") > text.DATA_IMAGE_MAX_SCANS
    assert "base64," not in text.sanitize_for_layout(f'<img src="{_data_uri(flood, "jpeg")}">', default_title="t")


def test_data_images_of_one_page_share_a_pixel_budget(monkeypatch):
    from conversions.converters import text

    monkeypatch.setattr(text, "DATA_IMAGE_MAX_PIXELS", 2500)
    square = io.BytesIO()
    Image.new("RGB", (40, 40), (0, 255, 0)).save(square, "PNG")  # 1600 pixels: one fits, not two
    page = text.sanitize_for_layout(f'<img src="{_data_uri(square.getvalue(), "png")}">' * 2, default_title="t")
    assert page.count("<img src=") == 1 and page.count("<img>") == 1


def test_a_page_too_large_or_too_deep_to_sanitise_in_bounded_time_is_refused(monkeypatch):
    from conversions.converters import text

    deep = text.MAX_NESTING + 1
    # End tags close only what is open: a stray </x>, or an end tag in an attribute or a comment, closes nothing.
    for markup in ("<div>" * deep, "<div></x>" * deep, "<div title='</div>'>" * deep, "<div><!--</div>-->" * deep, "<b/>" * deep):
        with pytest.raises(ConversionFailed) as caught:
            text.sanitize_for_layout(markup, default_title="t")
        assert caught.value.code == "INPUT_TOO_COMPLEX", markup[:30]
    text.sanitize_for_layout("<div><span><b>x</div>" * deep, default_title="t")  # closing the div closes what it holds
    # Elements that close themselves or whose end a parser infers do not count as depth.
    text.sanitize_for_layout("<div></div>" * 5000 + "<p>x<li>y<br><td>z" * 5000, default_title="t")
    monkeypatch.setattr(text, "MAX_LAYOUT_BYTES", 1000)
    with pytest.raises(ConversionFailed) as caught:
        text.sanitize_for_layout("<p>x</p>" * 200, default_title="t")
    assert caught.value.code == "INPUT_TOO_LARGE"


def test_finding_the_title_is_linear_in_the_markup():
    import time

    from conversions.converters.text import _title

    started = time.process_time()
    for markup in ("<title>" * 200_000, "<title></title" * 100_000, "<title " * 200_000):
        assert _title(markup) == ""  # quadratic with a regular expression: minutes
    assert time.process_time() - started < 5  # a bound far above linear (~50 ms), far below quadratic
    assert _title("<html><TITLE lang=en>A &amp; B</Title><title>second</title>") == "A & B"


@needs_soffice
@pytest.mark.slow
def test_html_to_pdf_lays_out_the_page_with_its_data_images(tmp_path):
    import base64

    from pypdf import PdfReader

    red = io.BytesIO()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(red, "PNG")
    page = (
        "<html><head><title>Quarterly report</title></head><body><h1>Results</h1><p>Revenue <b>rose</b>.</p>"
        f'<img src="data:image/png;base64,{base64.b64encode(red.getvalue()).decode()}" alt="chart">'
        "<table><tr><th>Quarter</th><th>Total</th></tr><tr><td>Q3</td><td>1200</td></tr></table>"
        "<ul><li>first point</li></ul></body></html>"
    ).encode()
    out, facts, progress = convert(tmp_path, page, "html", "pdf")
    reader = PdfReader(io.BytesIO(out))
    text = reader.pages[0].extract_text()
    for words in ("Results", "Revenue rose", "Quarter", "1200", "first point"):
        assert words in text, text
    assert len(reader.pages) == facts["pages"] == 1  # Writer's import: no blank first page
    assert [i.image.size for i in reader.pages[0].images] == [(40, 30)]
    assert reader.metadata.title == "Quarterly report" and progress[-1] == 100


@needs_soffice
@pytest.mark.slow
def test_markdown_reaches_pdf_through_sanitised_html(tmp_path):
    from pypdf import PdfReader

    route = converters.route_for("markdown", "pdf")
    assert [(s.converter.name, s.target) for s in route.steps] == [("markdown-it", "html"), ("libreoffice-html-pdf", "pdf")]
    md = b"# Release notes\n\nVersion **2.0** is out.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![x](file:///etc/hostname)\n"
    out, facts, progress = convert(tmp_path, md, "markdown", "pdf")
    reader = PdfReader(io.BytesIO(out))
    text = reader.pages[0].extract_text()
    assert "Release notes" in text and "Version 2.0 is out." in text and facts["pages"] == 1
    assert not reader.pages[0].images and reader.metadata.title == "Release notes"
    assert progress == sorted(progress) and progress[-1] == 100


# --- audio / video --------------------------------------------------------------------------


@needs_ffmpeg
@pytest.mark.parametrize("target", ["mp3", "ogg", "flac", "m4a", "wav"])
def test_audio_conversions(tmp_path, target):
    wav = samples.audio_bytes(tmp_path, "wav", seconds=2.0)
    out, facts, progress = convert(
        tmp_path,
        wav,
        "wav",
        target,
        sample_rate="22050",
        channels=1,
        **({} if target in ("wav", "flac") else {"audio_bitrate": 64}),
    )
    info = samples.probe(out, tmp_path, f".{target}")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert audio["sample_rate"] == "22050"
    assert abs(float(info["format"]["duration"]) - 2.0) < 0.2
    assert abs(facts["duration"] - 2.0) < 0.2
    assert progress[-1] == 100


@needs_ffmpeg
def test_audio_trim_and_tags_kept(tmp_path):
    mp3 = samples.audio_bytes(tmp_path, "mp3", seconds=3.0)
    out, facts, _ = convert(tmp_path, mp3, "mp3", "ogg", start=0.5, duration=1.0)
    assert abs(facts["duration"] - 1.0) < 0.15
    from mutagen.oggvorbis import OggVorbis

    assert OggVorbis(io.BytesIO(out)).tags["title"] == ["Test tone"]


@needs_ffmpeg
@pytest.mark.parametrize(("source", "target"), [("mp4", "webm"), ("webm", "mp4"), ("mp4", "gif"), ("mp4", "mp3")])
def test_video_conversions(tmp_path, source, target):
    video = samples.video_bytes(tmp_path, source, seconds=2.0, size="160x120")
    options = {"width": 80} if target != "mp3" else {}
    out, _facts, progress = convert(tmp_path, video, source, target, **options)
    info = samples.probe(out, tmp_path, f".{target}")
    streams = {s["codec_type"]: s for s in info["streams"]}
    if target == "mp3":
        assert set(streams) == {"audio"}
    else:
        assert (streams["video"]["width"], streams["video"]["height"]) == (80, 60)
    if target == "gif":
        assert Image.open(io.BytesIO(out)).n_frames >= 15
    else:
        assert abs(float(info["format"]["duration"]) - 2.0) < 0.3
    assert progress and max(progress) >= 50


@needs_ffmpeg
@pytest.mark.parametrize("target", ["mp4", "webm"])
def test_an_animated_gif_to_video_with_odd_sides(tmp_path, target):
    gif = samples.animated_gif(frames=6, size=(41, 31))  # 6 x 80 ms; odd sides the encoders cannot take
    out, facts, _ = convert(tmp_path, gif, "gif", target)
    info = samples.probe(out, tmp_path, f".{target}")
    (video,) = [s for s in info["streams"] if s["codec_type"] == "video"]
    assert video["codec_name"] == {"mp4": "h264", "webm": "vp8"}[target]
    assert (video["width"], video["height"]) == (40, 30)
    assert 0.3 <= float(info["format"]["duration"]) <= 0.7 and facts["duration"] > 0
    assert converters.route_for("gif", "gif").last.converter.name == "pillow-image"  # GIF to GIF stays an image conversion


@needs_ffmpeg
def test_video_trim_frame_rate_and_bitrate(tmp_path):
    import subprocess

    video = samples.video_bytes(tmp_path, "mp4", seconds=3.0, size="160x120")
    out, facts, _ = convert(tmp_path, video, "mp4", "mp4", start=0.5, duration=1.5, fps=5, video_bitrate=100)
    path = tmp_path / "trimmed.mp4"
    path.write_bytes(out)
    shown = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=r_frame_rate,nb_read_frames:format=duration", "-of", "json", str(path)],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    info = json.loads(shown.stdout)
    stream = info["streams"][0]
    assert stream["r_frame_rate"] == "5/1" and 6 <= int(stream["nb_read_frames"]) <= 9  # 1.5 s at 5 fps
    assert abs(float(info["format"]["duration"]) - 1.5) < 0.25 and abs(facts["duration"] - 1.5) < 0.25
    full, _, _ = convert(tmp_path, video, "mp4", "mp4", start=0.5, duration=1.5, fps=5, video_bitrate=2000)
    assert len(out) < len(full)  # the lower bitrate is a smaller file for the same frames


@needs_ffmpeg
def test_webm_to_gif(tmp_path):
    video = samples.video_bytes(tmp_path, "webm", seconds=1.0, size="64x48")
    out, _, _ = convert(tmp_path, video, "webm", "gif", fps=8)
    image = Image.open(io.BytesIO(out))
    assert image.format == "GIF" and image.size == (64, 48) and 6 <= image.n_frames <= 10


@needs_ffmpeg
def test_hls_playlist_disguised_as_mp4_is_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT\n")
    playlist = (
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{secret}\n#EXTINF:10,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n"
    ).encode()
    # Whatever the name says, the demuxer is pinned to the type we detected (mp4 -> mov).
    with pytest.raises(ConversionFailed) as caught:
        convert(tmp_path, playlist, "mp4", "webm")
    assert caught.value.code == "UNREADABLE_CONTENT"
    produced = [p for p in tmp_path.iterdir() if p.name.startswith("step")]
    assert all(b"TOP-SECRET" not in p.read_bytes() for p in produced)


# --- office ---------------------------------------------------------------------------------


@needs_soffice
@pytest.mark.slow
def test_plain_text_to_pdf_keeps_every_line_and_unicode(tmp_path):
    lines = [f"Line {i:03d}: Zürich, naïve café, Ελληνικά" for i in range(120)]  # more than one page
    text = ("\n".join(lines) + "\n").encode()
    out, facts, _ = convert(tmp_path, text, "text", "pdf")
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(out))
    assert out.startswith(b"%PDF") and facts["pages"] == len(reader.pages) >= 2
    extracted = "".join(page.extract_text() for page in reader.pages)
    assert "Line 000: Zürich, naïve café" in extracted and "Line 119" in extracted
    assert "Ελληνικά" in extracted
    # Text is a chainable source now: text -> PDF -> PNG is offered as one job.
    assert [s.target for s in converters.route_for("text", "png").steps] == ["pdf", "png"]
    assert not list(tmp_path.glob("lo-profile-*")), "the throw-away profile must be removed"


@needs_soffice
@pytest.mark.slow
def test_docx_reaches_bmp_through_pdf(tmp_path):
    docx = samples.docx_bytes("Quarterly numbers", paragraphs=3)
    assert [s.target for s in converters.route_for("docx", "bmp").steps] == ["pdf", "bmp"]
    out, facts, progress = convert(tmp_path, docx, "docx", "bmp", dpi=36)
    image = reopen(out)
    assert image.format == "BMP" and facts["page"] == 1 and image.size == (facts["width"], facts["height"])
    assert image.convert("L").getextrema()[0] < 128  # some text was drawn on the white page
    assert progress[-1] == 100


@needs_soffice
@pytest.mark.slow
def test_text_that_names_local_files_is_printed_not_followed(tmp_path):
    text = b"file:///etc/passwd\n<img src='file:///etc/hostname'>\n=HYPERLINK(\"file:///etc/passwd\")\n"
    out, _facts, _ = convert(tmp_path, text, "text", "pdf")
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(out))
    extracted = "".join(page.extract_text() for page in reader.pages)
    assert "file:///etc/passwd" in extracted  # shown as text
    assert "root:x:0:0" not in extracted and len(reader.pages) == 1  # nothing was read into the document
    assert "/URI" not in out.decode("latin-1")  # and no live link to it


@needs_soffice
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["docx", "xlsx", "pptx", "odt", "ods", "odp"])
def test_every_office_format_to_pdf(tmp_path, fmt):
    # The catalogue's templates (conversions.templates, formats._data for XLSX): documents made
    # by our code, opened by LibreOffice, the PDF read back by pypdf.
    from pypdf import PdfReader

    from conversions import formats

    source = formats.TEMPLATES[fmt]()
    out, facts, progress = convert(tmp_path, source, fmt, "pdf")
    reader = PdfReader(io.BytesIO(out))
    text = " ".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) == facts["pages"] >= 1
    expected = {"xlsx": "London", "ods": "apples"}.get(fmt, "fileconvert example")  # XLSX clips its narrow cells
    assert expected in text, text[:300]
    assert progress[-1] == 100


@pytest.mark.parametrize(
    ("svg", "kept", "gone"),
    [
        ('<image href="file:///srv/media/org/f/photo.png"/>', "<image", "file:"),
        ('<image xlink:href="file:///a.png"/>', "<image", "file:"),
        ('<use href="file:///x.svg#icon"/><use href="#local"/>', 'href="#local"', "file:"),
        ('<script>alert(1)</script><rect width="1" height="1"/>', "<rect", "script"),
        ('<foreignObject><iframe src="file:///etc/passwd"/></foreignObject><rect width="1" height="1"/>', "<rect", "passwd"),
        ('<style>@import url(file:///x.css);</style><rect width="1" height="1"/>', "<rect", "import"),
        ('<style>.a { fill: red }</style><rect class="a" width="1" height="1"/>', ".a { fill: red }", "import"),
        ('<rect style="fill:url(file:///p.svg#g)" fill="url(#own)" width="1" height="1"/>', 'fill="url(#own)"', "file:"),
        ('<rect onload="alert(1)" width="1" height="1"/>', "<rect", "onload"),
        ('<image href="data:image/png;base64,PHN2Zy8+"/>', "<image", "base64"),  # an SVG labelled PNG
    ],
)
def test_an_svg_picture_is_kept_but_names_nothing_outside_itself(svg, kept, gone):
    from conversions.converters.office import sanitize_svg

    source = f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">{svg}</svg>'
    out = sanitize_svg(source.encode()).decode()
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')
    assert kept in out and gone not in out, out


def test_an_svg_with_entities_or_a_dtd_becomes_empty():
    from conversions.converters.office import sanitize_svg

    xxe = b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>'
    assert b"passwd" not in sanitize_svg(xxe) and b"<text" not in sanitize_svg(xxe)


def test_an_office_package_is_copied_with_its_svg_html_and_inner_packages_made_safe(tmp_path):
    import zipfile

    from conversions.converters.office import sanitize_package

    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///secret.png"/></svg>'
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as package:
        package.writestr("xl/media/image1.png", svg)  # named PNG, an SVG by its bytes
    source = tmp_path / "in.odt"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("mimetype", "application/vnd.oasis.opendocument.text", compress_type=zipfile.ZIP_STORED)
        package.writestr("Pictures/a.svg", svg)
        package.writestr("word/afchunk.htm", b'<html><body><img src="file:///secret.png"><p>chunk</p></body></html>')
        package.writestr("Object 1/embedded.xlsx", inner.getvalue())
        package.writestr("content.xml", b"<office:document-content/>")
    sanitize_package(source, tmp_path / "out.odt")
    with zipfile.ZipFile(tmp_path / "out.odt") as package:
        assert package.namelist()[0] == "mimetype" and package.infolist()[0].compress_type == zipfile.ZIP_STORED
        assert b"file:" not in package.read("Pictures/a.svg") and b"<image" in package.read("Pictures/a.svg")
        chunk = package.read("word/afchunk.htm")
        assert b"chunk" in chunk and b"file:" not in chunk
        with zipfile.ZipFile(io.BytesIO(package.read("Object 1/embedded.xlsx"))) as nested:
            assert b"file:" not in nested.read("xl/media/image1.png")
        assert package.read("content.xml") == b"<office:document-content/>"  # the rest as it was


def test_code_running_confined_cannot_uncover_the_private_directories(tmp_path):
    """What LibreOffice runs as, were it made to run code: root in the namespace could unmount
    the covering tmpfs; in its own user namespace the mounts are locked."""
    import subprocess

    from conversions.converters import office

    if not office.confinement_prefix():
        pytest.skip("this machine allows no mount namespace")
    private, stage = tmp_path / "data", tmp_path / "stage"
    work = private / "tmp" / "conv-1"
    work.mkdir(parents=True)
    stage.mkdir()
    (private / "secret.txt").write_text("TOP-SECRET")
    (work / "mine.txt").write_text("the job's own")
    attack = f"cd /; umount {work}; umount {private}; cat {private}/secret.txt; cat {work}/mine.txt; cat /proc/1/root{private}/secret.txt"
    done = subprocess.run(
        [*office.isolation(work, (str(private),), stage), "sh", "-c", attack], capture_output=True, text=True, timeout=30
    )
    assert "TOP-SECRET" not in done.stdout and "the job's own" in done.stdout, (done.stdout, done.stderr)
    assert not list(stage.iterdir())  # nothing mounted here outside the namespace


@needs_soffice
@pytest.mark.slow
def test_libreoffice_sees_none_of_the_private_directories(tmp_path, monkeypatch):
    """Confinement alone, with the package sanitiser turned off: an SVG picture naming a file in
    a private directory (stored files, other jobs' work) finds it covered by an empty mount,
    while the job's own work directory, inside that private one, is still there."""
    from pypdf import PdfReader

    from conversions.converters import office

    if not office.confinement_prefix():
        pytest.skip("this machine allows no mount namespace")
    monkeypatch.setattr(office, "sanitize_package", lambda src, dst: dst.write_bytes(src.read_bytes()))
    private = tmp_path / "data"
    (private / "media").mkdir(parents=True)
    secret = private / "media" / "secret.png"
    Image.new("RGB", (50, 50), (1, 2, 3)).save(secret, "PNG")
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="99" height="99"><image width="50" height="50" href="{secret.as_uri()}"/></svg>'
    work = private / "tmp" / "conv-1"
    work.mkdir(parents=True)
    src = work / "in.docx"
    src.write_bytes(samples.docx_with_embedded_image_bytes(svg.encode()))

    def run(private_dirs):
        ctx = Context(workdir=work, timeout=120, private_dirs=private_dirs)
        out = work / "out.pdf"
        office.OfficeToPdf().convert(src, "docx", out, "pdf", {}, ctx)
        return PdfReader(out).pages[0]

    assert [i.image.size for i in run(()).images] == [(50, 50)]  # not covered: LibreOffice draws it
    page = run((str(private),))
    assert not page.images and "Text before the picture" in page.extract_text()
    assert secret.is_file() and (work / "in.docx").is_file()  # covered for LibreOffice only


@needs_soffice
@pytest.mark.slow
def test_docx_to_pdf_and_chain_to_png(tmp_path):
    docx = samples.docx_bytes("Quarterly numbers", paragraphs=3)
    out, facts, _ = convert(tmp_path, docx, "docx", "pdf")
    assert out.startswith(b"%PDF") and samples.pdf_pages(out) == facts["pages"] >= 1
    from pypdf import PdfReader

    assert "Quarterly numbers" in PdfReader(io.BytesIO(out)).pages[0].extract_text()
    route = converters.route_for("docx", "png")
    assert [s.target for s in route.steps] == ["pdf", "png"]
    png, facts, progress = convert(tmp_path, docx, "docx", "png", dpi=72)
    assert reopen(png).format == "PNG" and facts["page"] == 1
    assert progress == sorted(progress) and progress[-1] == 100
    assert not list(tmp_path.glob("lo-profile-*")), "the throw-away profile must be removed"


def test_strip_metadata_drops_a_tiffs_own_tags(tmp_path):
    """An upright TIFF saved again without a resize: the source's tag directory (Artist,
    Copyright, Make, XMP) must not come through, stripped or not (only the EXIF we carry)."""
    from PIL import TiffImagePlugin

    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[315] = "Jane Doe"  # Artist
    tags[33432] = "secret copyright"  # Copyright
    source = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(source, "TIFF", tiffinfo=tags, compression="tiff_deflate")
    out, _, _ = convert(tmp_path, source.getvalue(), "tiff", "tiff", strip_metadata=True)
    image = reopen(out)
    assert image.size == (40, 30) and image.getpixel((5, 5)) == (10, 200, 30)
    assert 315 not in image.tag_v2 and 33432 not in image.tag_v2
