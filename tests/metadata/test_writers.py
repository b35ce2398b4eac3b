"""Write-back on real files: round trips per family, and stripping verified on the raw
bytes of the output (nothing identifying left anywhere in the file)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from metadata import containers as c
from metadata.containers import ContainerError
from metadata.probe import probe_path
from metadata.writers import apply
from tests.metadata import samples as s

needs_ffmpeg = pytest.mark.skipif(not s.FFMPEG, reason="ffmpeg is not installed")
IDENTIFYING = [s.AUTHOR, s.SERIAL, s.OWNER, s.COMMENT, s.SOFTWARE, "Acme Secret Corp", "THUMBNAIL-"]


def leftovers(path: Path, needles: list[str] = IDENTIFYING) -> list[str]:
    """Needles found anywhere in the raw bytes (UTF-8, UTF-16 either way, Latin-1)."""
    raw = path.read_bytes()
    found = []
    for needle in needles:
        forms = {needle.encode(), needle.encode("utf-16-le"), needle.encode("utf-16-be"), needle.encode("latin-1", "ignore")}
        if any(form and form in raw for form in forms):
            found.append(needle)
    return found


def gps_bytes_present(path: Path) -> bool:
    """The GPS rational for 48° as Pillow writes it, or an EXIF GPS IFD pointer tag."""
    raw = path.read_bytes()
    return b"\x88\x25" in raw or b"\x25\x88" in raw


def run(tmp_path: Path, name: str, data: bytes | Path, ops: dict, kind: str | None = None) -> tuple[Path, dict, dict]:
    src = tmp_path / f"src-{name}"
    if isinstance(data, Path):
        src = data
    else:
        src.write_bytes(data)
    dst = tmp_path / f"out-{name}"
    kind = kind or probe_path(str(src))["kind"]
    report = apply(kind, str(src), str(dst), ops, ffmpeg=s.FFMPEG)
    return dst, report, probe_path(str(dst), ffprobe=s.FFPROBE)


def changed_keys(report: dict) -> set[tuple[str, str, str]]:
    return {(c["section"], c["key"], c["action"]) for c in report["changed"]}


def jpeg_scan(data: bytes) -> bytes:
    """Everything from the first SOS marker to EOI: the compressed pixels."""
    segments = c.jpeg_segments(io.BytesIO(data))
    head = 2 + sum(4 + len(p) for _, p in segments)
    end = data.index(b"\xff\xd9", head) + 2
    return data[head:end]


def png_idat(data: bytes) -> bytes:
    return b"".join(d for t, d, _ in c.png_chunks(io.BytesIO(data)) if t == b"IDAT")


class TestJpeg:
    def test_strip_all_leaves_nothing_and_keeps_pixels(self, tmp_path):
        original = s.jpeg_bytes()
        dst, report, probed = run(tmp_path, "a.jpg", original, {"strip_all": True})
        assert leftovers(dst) == []
        assert not gps_bytes_present(dst)
        assert dst.read_bytes().count(b"\xff\xd8") == 1  # no embedded thumbnail JPEG
        assert jpeg_scan(dst.read_bytes()) == jpeg_scan(original)  # not re-encoded
        assert {k for k in ("exif", "gps", "xmp", "iptc", "comment") if k in probed["sections"]} == set()
        assert ("exif", "<thumbnail>", "removed") in changed_keys(report)
        with Image.open(dst) as img:
            img.load()
            assert img.size == (64, 48)

    def test_anonymize_keeps_camera_but_drops_people_places_devices(self, tmp_path):
        dst, report, probed = run(tmp_path, "a.jpg", s.jpeg_bytes(), {"anonymize": True})
        assert leftovers(dst) == []
        assert "gps" not in probed["common"] and "gps" not in probed["sections"]
        assert probed["common"]["camera_make"] == s.MAKE and probed["common"]["camera_model"] == s.MODEL
        assert probed["sections"]["exif"]["DateTimeOriginal"] == "2023:07:14 10:20:30"
        keys = changed_keys(report)
        for key in ("Artist", "BodySerialNumber", "CameraOwnerName", "Software", "UserComment"):
            assert ("exif", key, "removed") in keys
        assert ("xmp", "*", "removed") in keys and ("iptc", "*", "removed") in keys

    def test_set_and_remove_round_trip(self, tmp_path):
        ops = {"set": {"exif": {"Artist": "Bob Builder", "Copyright": "CC-BY"}}, "remove": {"gps": ["*"], "exif": ["Software"]}}
        _dst, report, probed = run(tmp_path, "a.jpg", s.jpeg_bytes(), ops)
        assert probed["sections"]["exif"]["Artist"] == "Bob Builder"
        assert probed["sections"]["exif"]["Copyright"] == "CC-BY"
        assert "Software" not in probed["sections"]["exif"]
        assert "gps" not in probed["common"]
        assert probed["sections"]["exif"]["BodySerialNumber"] == s.SERIAL  # untouched
        assert probed["sections"]["xmp"]["dc:creator"] == [s.AUTHOR]  # untouched: only asked for EXIF
        assert report["skipped"] == []

    def test_unknown_and_absent_keys_are_reported_per_key(self, tmp_path):
        ops = {"set": {"exif": {"FNumber": "2.8", "Artist": "X"}}, "remove": {"exif": ["LensModel"]}}
        _dst, report, _ = run(tmp_path, "a.jpg", s.jpeg_bytes(), ops)
        reasons = {(k["section"], k["key"]): k["reason"] for k in report["skipped"]}
        assert "cannot be set" in reasons[("exif", "FNumber")]
        assert reasons[("exif", "LensModel")] == "not present in the file"
        assert ("exif", "Artist", "set") in changed_keys(report)

    def test_set_exif_on_a_jpeg_without_exif(self, tmp_path):
        out = io.BytesIO()
        Image.new("RGB", (8, 8)).save(out, "JPEG")
        _dst, _report, probed = run(tmp_path, "plain.jpg", out.getvalue(), {"set": {"exif": {"Artist": "New"}}})
        assert probed["common"]["author"] == "New"

    def test_comment_set(self, tmp_path):
        _dst, _report, probed = run(tmp_path, "a.jpg", s.jpeg_bytes(), {"set": {"comment": {"Comment": "hello"}}})
        assert probed["sections"]["comment"] == {"Comment": "hello"}

    def test_icc_survives_strip_unless_removed_by_name(self, tmp_path):
        from PIL import ImageCms

        icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        out = io.BytesIO()
        Image.new("RGB", (8, 8)).save(out, "JPEG", icc_profile=icc, exif=s.make_exif())
        _dst, report, probed = run(tmp_path, "icc.jpg", out.getvalue(), {"strip_all": True})
        assert "icc" in probed["sections"]
        assert any(k["section"] == "icc" for k in report["skipped"])
        _dst, _report, probed = run(tmp_path, "icc2.jpg", out.getvalue(), {"strip_all": True, "remove": {"icc": ["*"]}})
        assert "icc" not in probed["sections"]

    def test_trailing_preview_after_eoi_is_dropped_on_strip(self, tmp_path):
        preview = io.BytesIO()
        Image.new("RGB", (8, 8)).save(preview, "JPEG", comment=("PREVIEW " + s.SERIAL).encode())
        data = s.jpeg_bytes() + preview.getvalue()
        dst, report, _ = run(tmp_path, "mpf.jpg", data, {"strip_all": True})
        assert leftovers(dst) == []
        assert ("jpeg", "<data after the image>", "removed") in changed_keys(report)

    def test_progressive_scans_with_a_comment_between_them(self, tmp_path):
        out = io.BytesIO()
        Image.effect_noise((64, 48), 40).convert("RGB").save(out, "JPEG", progressive=True, quality=80)
        data = out.getvalue()
        second_scan = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
        comment = b"\xff\xfe" + (len(s.SERIAL) + 4).to_bytes(2, "big") + s.SERIAL.encode() + b"\xff\xd9"  # a fake EOI inside
        hidden = data[:second_scan] + comment + data[second_scan:]
        with Image.open(io.BytesIO(hidden)) as img:
            expected = img.convert("RGB").tobytes()
        dst, report, _ = run(tmp_path, "prog.jpg", hidden, {"strip_all": True})
        assert leftovers(dst) == []
        with Image.open(dst) as img:
            assert img.convert("RGB").tobytes() == expected  # every scan kept, bit for bit
        assert ("comment", "<between scans>", "removed") in changed_keys(report)

    def test_truncated_scan_is_refused_when_scrubbing(self, tmp_path):
        data = s.jpeg_bytes()
        with pytest.raises(ContainerError) as caught:
            run(tmp_path, "cut.jpg", data[:-10], {"strip_all": True}, kind="jpeg")
        assert caught.value.code == "TRUNCATED"

    def test_truncated_headers_are_refused(self, tmp_path):
        data = s.jpeg_bytes()
        with pytest.raises(ContainerError) as caught:
            run(tmp_path, "cut.jpg", data[:300], {"strip_all": True}, kind="jpeg")
        assert caught.value.code == "TRUNCATED"


class TestPng:
    def test_strip_all_keeps_idat(self, tmp_path):
        original = s.png_bytes()
        dst, _report, probed = run(tmp_path, "a.png", original, {"strip_all": True})
        assert leftovers(dst) == []
        assert not gps_bytes_present(dst)
        assert png_idat(dst.read_bytes()) == png_idat(original)
        assert set(probed["sections"]) == set()
        with Image.open(dst) as img:
            img.load()

    def test_anonymize_and_set_text(self, tmp_path):
        ops = {"anonymize": True, "set": {"png_text": {"Title": "New title", "Location": "nowhere"}}}
        dst, _report, probed = run(tmp_path, "a.png", s.png_bytes(), ops)
        assert leftovers(dst) == []
        text = probed["sections"]["png_text"]
        assert text["Title"] == "New title" and text["Location"] == "nowhere"
        assert "Author" not in text and "Software" not in text and "Comment" not in text
        assert "gps" not in probed["common"]
        assert probed["common"]["camera_model"] == s.MODEL

    def test_bad_keyword_is_skipped(self, tmp_path):
        _dst, report, _ = run(tmp_path, "a.png", s.png_bytes(), {"set": {"png_text": {" padded": "x", "x" * 80: "y"}}})
        assert {k["key"] for k in report["skipped"]} == {" padded", "x" * 80}


class TestTiff:
    @pytest.mark.parametrize("pages", [1, 3])
    def test_strip_all_in_place_keeps_pixels_and_pages(self, tmp_path, pages):
        original = s.tiff_bytes(pages=pages)
        dst, report, probed = run(tmp_path, "a.tif", original, {"strip_all": True})
        assert leftovers(dst, [*IDENTIFYING, s.TITLE]) == []  # every page's directory, stale ones included
        assert not gps_bytes_present(dst)
        assert {"xmp", "gps"} & set(probed["sections"]) == set()
        assert "Artist" not in probed["sections"]["exif"] and "ImageWidth" in probed["sections"]["exif"]
        with Image.open(io.BytesIO(original)) as before, Image.open(dst) as after:
            assert after.n_frames == pages
            for page in range(pages):
                before.seek(page)
                after.seek(page)
                assert after.tobytes() == before.tobytes()  # strips untouched
        assert ("gps", "GPSLatitude", "removed") in changed_keys(report)

    def test_anonymize_keeps_the_camera(self, tmp_path):
        dst, _report, probed = run(tmp_path, "a.tif", s.tiff_bytes(), {"anonymize": True})
        assert leftovers(dst, [*IDENTIFYING, s.TITLE]) == []
        assert probed["common"]["camera_model"] == s.MODEL and "gps" not in probed["common"]
        assert probed["sections"]["exif"]["DateTimeOriginal"] == "2023:07:14 10:20:30"

    def test_set_replaces_old_values_in_the_bytes(self, tmp_path):
        ops = {"set": {"exif": {"Artist": "Bob", "BodySerialNumber": "NEW-1"}}, "remove": {"gps": ["*"]}}
        dst, report, probed = run(tmp_path, "a.tif", s.tiff_bytes(), ops)
        assert probed["common"]["author"] == "Bob" and probed["sections"]["exif"]["BodySerialNumber"] == "NEW-1"
        assert probed["sections"]["exif"]["CameraOwnerName"] == s.OWNER  # untouched
        assert leftovers(dst, [s.SERIAL]) == []  # a replaced value is zeroed, not orphaned
        assert probed["sections"]["xmp"]["dc:creator"] == [s.AUTHOR]  # XMP was not asked for: untouched
        assert "gps" not in probed["common"]
        assert report["skipped"] == []

    def test_set_exif_ifd_tag_where_there_is_none(self, tmp_path):
        _dst, _report, probed = run(tmp_path, "a.tif", s.tiff_bytes(sub_ifds=False), {"set": {"exif": {"LensModel": "50mm"}}})
        assert probed["sections"]["exif"]["LensModel"] == "50mm"

    def test_nothing_to_do_keeps_every_byte(self, tmp_path):
        original = s.tiff_bytes()
        dst, report, _ = run(tmp_path, "a.tif", original, {"remove": {"exif": ["LensModel"]}})
        assert dst.read_bytes() == original and report["changed"] == []

    def test_directory_loop_is_refused(self, tmp_path):
        data = bytearray(s.tiff_bytes(sub_ifds=False))
        ifd0 = int.from_bytes(data[4:8], "little")
        count = int.from_bytes(data[ifd0 : ifd0 + 2], "little")
        data[ifd0 + 2 + 12 * count : ifd0 + 6 + 12 * count] = ifd0.to_bytes(4, "little")  # next IFD = itself
        with pytest.raises(ContainerError) as caught:
            run(tmp_path, "loop.tif", bytes(data), {"strip_all": True}, kind="tiff")
        assert caught.value.code == "MALFORMED_TIFF"


class TestWebp:
    def test_strip_all_keeps_the_bitstream(self, tmp_path):
        original = s.webp_bytes()
        dst, _report, probed = run(tmp_path, "a.webp", original, {"strip_all": True})
        assert leftovers(dst, [*IDENTIFYING, s.TITLE]) == []
        assert {"exif", "gps", "xmp"} & set(probed["sections"]) == set()
        with Image.open(io.BytesIO(original)) as before, Image.open(dst) as after:
            assert after.tobytes() == before.tobytes()
        assert dst.read_bytes()[4:8] == (len(dst.read_bytes()) - 8).to_bytes(4, "little")  # RIFF size

    def test_set_exif_on_a_simple_webp_adds_the_extended_header(self, tmp_path):
        dst, _report, probed = run(tmp_path, "plain.webp", s.webp_bytes(metadata=False), {"set": {"exif": {"Artist": "Bob"}}})
        assert dst.read_bytes()[12:16] == b"VP8X"
        assert probed["common"]["author"] == "Bob"
        with Image.open(dst) as img:
            img.load()
            assert img.mode == "RGBA" and img.size == (20, 10)

    def test_anonymize(self, tmp_path):
        dst, _report, probed = run(tmp_path, "a.webp", s.webp_bytes(), {"anonymize": True})
        assert leftovers(dst) == [] and "gps" not in probed["common"]
        assert probed["common"]["camera_make"] == s.MAKE


class TestPdf:
    def test_strip_rewrites_the_whole_document(self, tmp_path):
        original = s.pdf_bytes(incremental_old_author=True)
        assert original.count(b"%%EOF") == 2 and s.AUTHOR.encode() in original  # the old value hides in revision 1
        dst, report, probed = run(tmp_path, "a.pdf", original, {"strip_all": True})
        raw = dst.read_bytes()
        assert leftovers(dst, [s.AUTHOR, "Newer Person", s.SOFTWARE, s.TITLE]) == []
        assert raw.count(b"%%EOF") == 1 and b"/Prev" not in raw  # one revision, no incremental update
        assert b"/Metadata" not in raw and b"/Producer" not in raw
        assert "pdf_info" not in probed["sections"] and probed["common"]["pages"] == 2
        assert ("xmp", "*", "removed") in changed_keys(report)

    def test_set_title_drops_stale_xmp(self, tmp_path):
        dst, report, probed = run(tmp_path, "a.pdf", s.pdf_bytes(), {"set": {"pdf_info": {"Title": "Renamed"}}})
        assert probed["common"]["title"] == "Renamed"
        assert probed["common"]["author"] == s.AUTHOR
        assert s.TITLE.encode() not in dst.read_bytes()
        assert any(k["section"] == "xmp" and "contradict" in k["reason"] for k in report["changed"])

    def test_anonymize(self, tmp_path):
        dst, _report, probed = run(tmp_path, "a.pdf", s.pdf_bytes(), {"anonymize": True})
        assert leftovers(dst, [s.AUTHOR, s.SOFTWARE]) == []
        assert probed["common"]["title"] == s.TITLE

    def test_encrypted_pdf_is_refused(self, tmp_path):
        from pypdf import PdfWriter

        writer = PdfWriter()
        writer.add_blank_page(100, 100)
        writer.encrypt("secret")
        out = io.BytesIO()
        writer.write(out)
        with pytest.raises(ContainerError) as caught:
            run(tmp_path, "enc.pdf", out.getvalue(), {"strip_all": True})
        assert caught.value.code == "ENCRYPTED"


class TestOffice:
    def test_strip_all(self, tmp_path):
        dst, _report, probed = run(tmp_path, "a.docx", s.docx_bytes(), {"strip_all": True})
        assert leftovers(dst) == []  # (compressed parts are checked through the archive below too)
        with zipfile.ZipFile(dst) as archive:
            every = b"".join(archive.read(n) for n in archive.namelist())
            assert archive.read("word/document.xml") == s.DOCUMENT.encode()
        assert s.AUTHOR.encode() not in every and b"Acme Secret" not in every
        assert probed["sections"].get("office_core", {}) == {}

    def test_anonymize_and_set(self, tmp_path):
        w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
        comments = f'<w:comments {w}><w:comment w:id="0" w:author="{s.AUTHOR}" w:initials="AQA"><w:p/></w:comment></w:comments>'
        ops = {"anonymize": True, "set": {"office_core": {"title": "Report", "created": "2024-01-01T00:00:00Z"}}}
        dst, report, probed = run(tmp_path, "a.docx", s.docx_bytes(extra={"word/comments.xml": comments.encode()}), ops)
        with zipfile.ZipFile(dst) as archive:
            every = b"".join(archive.read(n) for n in archive.namelist())
            assert archive.read("word/comments.xml") == comments.replace(s.AUTHOR, "").replace("AQA", "").encode()
            assert archive.read("word/document.xml") == s.DOCUMENT.encode()  # no authors in it: byte for byte
        assert s.AUTHOR.encode() not in every and s.OWNER.encode() not in every and b"Acme" not in every
        core = probed["sections"]["office_core"]
        assert core["title"] == "Report" and core["created"] == "2024-01-01T00:00:00Z"
        assert "creator" not in core and "revision" not in core
        assert probed["sections"]["office_app"]["Pages"] == "3"
        assert ("office_document", "word/comments.xml", "removed") in changed_keys(report)

    def test_tracked_change_authors_and_xlsx_comment_authors(self, tmp_path):
        w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
        document = (
            f'<w:document {w}><w:body><w:ins w:id="1" w:author="{s.AUTHOR}"><w:r><w:t>x</w:t></w:r></w:ins></w:body></w:document>'
        )
        xl_comments = f'<comments xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><authors><author>{s.AUTHOR}</author></authors></comments>'
        data = s.docx_bytes(extra={"word/document2.xml": document.encode(), "xl/comments1.xml": xl_comments.encode()})
        dst, _report, _ = run(tmp_path, "a.docx", data, {"strip_all": True}, kind="docx")
        with zipfile.ZipFile(dst) as archive:
            every = b"".join(archive.read(n) for n in archive.namelist())
            assert b'w:author=""' in archive.read("word/document2.xml")
        assert s.AUTHOR.encode() not in every

    def test_bomb_core_is_refused(self, tmp_path):
        with pytest.raises(ContainerError) as caught:
            run(tmp_path, "bomb.docx", s.docx_bomb(), {"strip_all": True})
        assert caught.value.code == "XML_FORBIDDEN"

    def test_zip_bomb_is_refused(self, tmp_path):
        with pytest.raises(ContainerError) as caught:
            run(tmp_path, "zb.docx", s.docx_zip_bomb(), {"anonymize": True})
        assert caught.value.code in ("TOO_LARGE", "ZIP_BOMB")


@needs_ffmpeg
class TestMedia:
    @pytest.mark.parametrize(
        ("kind", "section", "title_key"),
        [("mp3", "id3", "TIT2"), ("flac", "vorbis", "title"), ("ogg", "vorbis", "title"), ("m4a", "mp4", "©nam")],
    )
    def test_set_remove_round_trip(self, tmp_path, kind, section, title_key):
        path = s.ffmpeg_media(tmp_path / f"in.{kind}", kind)
        comment_key = {"id3": "TXXX:comment", "vorbis": "description", "mp4": "©cmt"}[section]  # where ffmpeg puts it
        ops = {"set": {section: {title_key: "New Title"}}, "remove": {section: [comment_key]}}
        dst, report, probed = run(tmp_path, f"a.{kind}", path, ops)
        assert probed["common"]["title"] == "New Title"
        assert probed["common"]["author"] == s.AUTHOR
        assert s.COMMENT.encode() not in dst.read_bytes()
        assert report["skipped"] == []
        assert probed["common"]["duration"] == pytest.approx(1.0, abs=0.1)

    @pytest.mark.parametrize("kind", ["mp3", "flac", "ogg", "m4a", "mp4"])
    @pytest.mark.parametrize("mode", ["strip_all", "anonymize"])
    def test_scrub_leaves_nothing(self, tmp_path, kind, mode):
        path = s.ffmpeg_media(tmp_path / f"in.{kind}", kind)
        dst, _report, probed = run(tmp_path, f"a.{kind}", path, {mode: True})
        assert leftovers(dst, [s.AUTHOR, s.COMMENT, "+48.8584"]) == []
        assert b"loci" not in dst.read_bytes() and "gps" not in probed["common"]  # the 3GPP location box is gone
        if mode == "anonymize":
            assert probed["common"]["title"] == s.TITLE
        if s.FFPROBE:
            assert not [c for c in probed["containers"] if c["status"] == "error"]

    def test_id3_non_text_frame_is_skipped(self, tmp_path):
        path = s.ffmpeg_media(tmp_path / "in.mp3", "mp3")
        _dst, report, _ = run(tmp_path, "a.mp3", path, {"set": {"id3": {"APIC": "x", "TXXX:mood": "calm"}}})
        assert [k["key"] for k in report["skipped"]] == ["APIC"]
        assert ("id3", "TXXX:mood", "set") in changed_keys(report)
