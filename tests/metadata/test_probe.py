"""The probe on real files of every family, and on hostile and broken ones: a broken
container is an error entry, never an exception."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from metadata.probe import normalise_date, probe_path
from tests.metadata import samples as s

needs_ffmpeg = pytest.mark.skipif(not s.FFMPEG, reason="ffmpeg is not installed")


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def container(result: dict, name: str) -> dict:
    found = [c for c in result["containers"] if c["name"] == name]
    assert found, result["containers"]
    return found[0]


def errors(result: dict) -> dict[str, str]:
    return {c["name"]: c["error"]["code"] for c in result["containers"] if c["status"] == "error"}


class TestImages:
    def test_jpeg_exif_gps_xmp_iptc_comment(self, tmp_path):
        result = probe_path(write(tmp_path, "a.jpg", s.jpeg_bytes()))
        assert result["kind"] == "jpeg"
        assert errors(result) == {}
        common = result["common"]
        assert common["author"] == s.AUTHOR
        assert common["camera_make"] == s.MAKE and common["camera_model"] == s.MODEL
        assert common["created"] == "2023-07-14T10:20:30"
        assert common["gps"] == pytest.approx({"lat": s.GPS[0], "lon": s.GPS[1]}, abs=1e-5)
        assert (common["width"], common["height"]) == (64, 48)
        sections = result["sections"]
        assert sections["exif"]["BodySerialNumber"] == s.SERIAL
        assert sections["exif"]["UserComment"] == s.COMMENT
        assert sections["exif"]["<thumbnail>"] is True
        assert sections["gps"]["GPSLatitudeRef"] == "N"
        assert sections["xmp"]["dc:creator"] == [s.AUTHOR]
        assert sections["xmp"]["dc:title"] == s.TITLE
        assert sections["xmp"]["xmpMM:History"] == [{"xmpMM:action": "saved"}]
        assert sections["iptc"] == {"By-line": s.AUTHOR, "Caption-Abstract": s.TITLE, "City": "Paris"}
        assert sections["comment"]["Comment"] == s.COMMENT
        assert "exif" in result["editable"]["sections"] and result["editable"]["strip_all"] is True

    def test_southern_western_gps_is_negative(self, tmp_path):
        result = probe_path(write(tmp_path, "a.jpg", s.jpeg_bytes(gps=(-33.8568, -151.2153))))
        assert result["common"]["gps"] == pytest.approx({"lat": -33.8568, "lon": -151.2153}, abs=1e-5)

    def test_icc_profile_description(self, tmp_path):
        from PIL import ImageCms

        icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        out = io.BytesIO()
        Image.new("RGB", (8, 8)).save(out, "JPEG", icc_profile=icc)
        result = probe_path(write(tmp_path, "icc.jpg", out.getvalue()))
        assert container(result, "icc")["status"] == "ok"
        assert "sRGB" in result["sections"]["icc"]["description"]
        assert result["sections"]["icc"]["color_space"] == "RGB"

    def test_png_text_chunks_xmp_and_exif(self, tmp_path):
        result = probe_path(write(tmp_path, "a.png", s.png_bytes()))
        assert errors(result) == {}
        text = result["sections"]["png_text"]
        assert text["Author"] == s.AUTHOR
        assert text["Comment"] == s.COMMENT  # from a compressed zTXt chunk
        assert text["Description"] == "Tour Eiffel \u2014 été"  # iTXt, UTF-8
        assert result["sections"]["xmp"]["dc:creator"] == [s.AUTHOR]
        assert result["common"]["title"] == s.TITLE
        assert result["common"]["gps"]["lat"] == pytest.approx(s.GPS[0], abs=1e-5)
        assert (result["common"]["width"], result["common"]["height"]) == (40, 24)

    def test_tiff(self, tmp_path):
        result = probe_path(write(tmp_path, "a.tif", s.tiff_bytes()))
        assert result["kind"] == "tiff"
        assert result["common"]["author"] == s.AUTHOR
        assert result["common"]["camera_model"] == s.MODEL
        assert (result["common"]["width"], result["common"]["height"]) == (32, 20)

    def test_webp(self, tmp_path):
        result = probe_path(write(tmp_path, "a.webp", s.webp_bytes()))
        assert result["kind"] == "webp" and errors(result) == {}
        assert result["common"]["author"] == s.AUTHOR and result["common"]["gps"]["lon"] == pytest.approx(s.GPS[1], abs=1e-5)
        assert result["sections"]["xmp"]["dc:title"] == s.TITLE

    def test_no_pixel_decode(self, tmp_path, monkeypatch):
        """Headers only: a probe never decodes the image data."""
        from PIL import ImageFile

        monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels were decoded"))
        for name, data in (
            ("a.jpg", s.jpeg_bytes()),
            ("a.png", s.png_bytes()),
            ("a.tif", s.tiff_bytes()),
            ("a.webp", s.webp_bytes()),
        ):
            assert errors(probe_path(write(tmp_path, name, data))) == {}


class TestDocuments:
    def test_pdf_info_xmp_pages(self, tmp_path):
        result = probe_path(write(tmp_path, "a.pdf", s.pdf_bytes(pages=3)))
        assert errors(result) == {}
        assert result["sections"]["pdf_info"]["Author"] == s.AUTHOR
        assert result["sections"]["xmp"]["xmp:CreatorTool"] == s.SOFTWARE
        assert result["common"]["pages"] == 3
        assert result["common"]["created"] == "2023-07-14T10:20:30+02:00"

    def test_pdf_flate_bomb_in_xmp_is_an_error_entry(self, tmp_path):
        import zlib

        from pypdf import PdfWriter
        from pypdf.generic import NameObject, NumberObject, StreamObject

        squeeze = zlib.compressobj(9)
        chunk = b"\x00" * (1024 * 1024)
        bomb = b"".join(squeeze.compress(chunk) for _ in range(200)) + squeeze.flush()  # 200 MiB from ~200 KiB
        writer = PdfWriter()
        writer.add_blank_page(100, 100)
        writer.add_metadata({"/Author": s.AUTHOR})
        stream = StreamObject()
        stream._data = bomb
        stream[NameObject("/Filter")] = NameObject("/FlateDecode")
        stream[NameObject("/Length")] = NumberObject(len(bomb))
        stream[NameObject("/Type")] = NameObject("/Metadata")
        writer._root_object[NameObject("/Metadata")] = writer._add_object(stream)
        path = tmp_path / "bomb.pdf"
        with open(path, "wb") as fh:
            writer.write(fh)
        result = probe_path(str(path), timeout=20)
        assert "xmp" in errors(result)  # pypdf's inflate limit, inside the forked child's memory cap
        assert result["common"]["author"] == s.AUTHOR and result["common"]["pages"] == 1

    def test_pdf_page_tree_loop(self, tmp_path):
        data = s.pdf_bytes(pages=1, xmp=None)
        kids = data[data.index(b"/Kids [") : data.index(b"]", data.index(b"/Kids [")) + 1]
        pages_obj = data[: data.index(b"/Type /Pages")].rsplit(b" 0 obj", 1)[0].rsplit(b"\n", 1)[-1]
        looped = data.replace(kids, f"/Kids [ {int(pages_obj)} 0 R ]".encode().ljust(len(kids)))
        result = probe_path(write(tmp_path, "loop.pdf", looped), timeout=5)
        assert errors(result)["pdf"] in ("UNREADABLE", "TIMEOUT")

    def test_docx_core_and_app(self, tmp_path):
        result = probe_path(write(tmp_path, "a.docx", s.docx_bytes()))
        assert result["kind"] == "docx"
        assert errors(result) == {}
        assert result["sections"]["office_core"]["creator"] == s.AUTHOR
        assert result["sections"]["office_app"]["Company"] == "Acme Secret Corp"
        assert result["common"] | {} == result["common"]
        assert result["common"]["author"] == s.AUTHOR
        assert result["common"]["modified"] == "2023-07-15T08:00:00Z"
        assert result["common"]["pages"] == 3


@needs_ffmpeg
class TestMedia:
    @pytest.mark.parametrize(
        ("kind", "section", "artist_key"),
        [("mp3", "id3", "TPE1"), ("flac", "vorbis", "artist"), ("ogg", "vorbis", "artist"), ("m4a", "mp4", "©ART")],
    )
    def test_audio_tags(self, tmp_path, kind, section, artist_key):
        path = s.ffmpeg_media(tmp_path / f"a.{kind}", kind)
        result = probe_path(str(path), ffprobe=s.FFPROBE)
        assert result["kind"] == kind
        assert errors(result) == {}
        assert result["sections"][section][artist_key] == s.AUTHOR
        assert result["common"]["author"] == s.AUTHOR and result["common"]["title"] == s.TITLE
        assert result["common"]["duration"] == pytest.approx(1.0, abs=0.1)
        if s.FFPROBE:
            assert result["sections"]["ffprobe"]["streams"][0]["codec_type"] == "audio"

    @pytest.mark.skipif(not s.FFPROBE, reason="ffprobe is not installed")
    def test_mp4_video_streams(self, tmp_path):
        path = s.ffmpeg_media(tmp_path / "a.mp4", "mp4")
        result = probe_path(str(path), ffprobe=s.FFPROBE)
        assert errors(result) == {}
        types = sorted(st["codec_type"] for st in result["sections"]["ffprobe"]["streams"])
        assert types == ["audio", "video"]
        assert (result["common"]["width"], result["common"]["height"]) == (64, 48)
        assert result["sections"]["ffprobe"]["format"]["tags"]["location"].startswith("+48.8584")

    def test_mp4_header_without_ffprobe(self, tmp_path):
        """Dimensions (tkhd) and the 3GPP location (udta/loci) come from the box headers alone."""
        path = s.ffmpeg_media(tmp_path / "a.mp4", "mp4")
        result = probe_path(str(path), ffprobe=None)
        assert container(result, "mp4_header")["status"] == "ok"
        assert (result["common"]["width"], result["common"]["height"]) == (64, 48)
        assert result["common"]["gps"] == pytest.approx({"lat": 48.8584, "lon": 2.2945}, abs=1e-4)

    def test_mp4_without_moov_is_an_error_entry(self, tmp_path):
        data = s.ffmpeg_media(tmp_path / "a.mp4", "mp4").read_bytes()
        moov = data.find(b"moov") - 4
        result = probe_path(write(tmp_path, "cut.mp4", data[:moov]), ffprobe=None)
        assert errors(result).get("mp4_header") in ("MALFORMED_MP4", "TRUNCATED")

    def test_without_ffprobe_no_ffprobe_container(self, tmp_path):
        path = s.ffmpeg_media(tmp_path / "a.mp3", "mp3")
        result = probe_path(str(path), ffprobe=None)
        assert "ffprobe" not in {c["name"] for c in result["containers"]}

    @pytest.mark.skipif(not s.FFPROBE, reason="ffprobe is not installed")
    def test_ffprobe_failure_is_an_error_entry(self, tmp_path):
        # ID3 header followed by garbage: mutagen and ffprobe both fail, as entries.
        path = write(tmp_path, "bad.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x10" + b"\x00" * 16 + b"garbage" * 100)
        result = probe_path(path, ffprobe=s.FFPROBE)
        assert result["kind"] == "mp3"
        assert "ffprobe" in errors(result)

    @pytest.mark.skipif(not s.FFPROBE, reason="ffprobe is not installed")
    def test_ffprobe_timeout_is_an_error_entry(self, tmp_path):
        path = s.ffmpeg_media(tmp_path / "a.flac", "flac")
        result = probe_path(str(path), ffprobe=s.FFPROBE, timeout=0.001)
        assert errors(result) == {"ffprobe": "TIMEOUT"}
        assert result["common"]["title"] == s.TITLE  # the tags were still read

    def test_playlist_disguised_as_video_never_reaches_ffprobe(self, tmp_path):
        path = write(tmp_path, "evil.mp4", b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n")
        result = probe_path(path, ffprobe=s.FFPROBE or "/nonexistent/ffprobe")
        assert result["kind"] not in ("mp4", "mov")
        assert "ffprobe" not in {c["name"] for c in result["containers"]}


class TestHostile:
    def test_xml_bomb_in_xmp_is_refused(self, tmp_path):
        result = probe_path(write(tmp_path, "bomb.jpg", s.jpeg_bytes(xmp=s.XMP_BOMB)))
        assert errors(result) == {"xmp": "XML_FORBIDDEN"}
        assert "xmp" not in result["sections"]
        assert result["sections"]["exif"]["Artist"] == s.AUTHOR  # the other containers still read

    def test_xxe_in_xmp_is_refused(self, tmp_path):
        xxe = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
        result = probe_path(write(tmp_path, "xxe.jpg", s.jpeg_bytes(xmp=xxe)))
        assert errors(result) == {"xmp": "XML_FORBIDDEN"}

    def test_xml_bomb_in_office_core(self, tmp_path):
        result = probe_path(write(tmp_path, "bomb.docx", s.docx_bomb()))
        assert errors(result) == {"office_core": "XML_FORBIDDEN"}
        assert result["sections"]["office_app"]["Company"] == "Acme Secret Corp"

    def test_zip_bomb_core_part(self, tmp_path):
        result = probe_path(write(tmp_path, "zipbomb.docx", s.docx_zip_bomb()))
        assert errors(result)["office_core"] in ("TOO_LARGE", "ZIP_BOMB")

    def test_lying_zip_size_is_caught_while_inflating(self, tmp_path):
        data = bytearray(s.docx_zip_bomb(inflated=4 * 1024 * 1024))
        # Make both headers claim a tiny size: the cap must hold while inflating.
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
            info = archive.getinfo("docProps/core.xml")
        central = bytes(data).rfind(b"PK\x01\x02", 0, len(data))
        while central >= 0:
            name_len = struct.unpack("<H", data[central + 28 : central + 30])[0]
            if data[central + 46 : central + 46 + name_len] == b"docProps/core.xml":
                data[central + 24 : central + 28] = struct.pack("<I", 100)
                break
            central = bytes(data).rfind(b"PK\x01\x02", 0, central)
        local = info.header_offset
        data[local + 22 : local + 26] = struct.pack("<I", 100)
        result = probe_path(write(tmp_path, "liar.docx", bytes(data)))
        assert errors(result)["office_core"] in ("ZIP_BOMB", "UNREADABLE")

    def test_png_text_bomb(self, tmp_path):
        from metadata.containers import png_chunk

        bomb = png_chunk(b"zTXt", b"Comment\x00\x00" + __import__("zlib").compress(b"A" * (16 * 1024 * 1024), 9))
        png = s.png_bytes(exif=False, xmp=False)
        data = png[:33] + bomb + png[33:]
        result = probe_path(write(tmp_path, "bomb.png", data))
        assert "TEXT_BOMB" in errors(result).values()
        assert result["common"]["width"] == 40

    @pytest.mark.parametrize("name", ["a.jpg", "a.png", "a.pdf", "a.docx", "a.tif"])
    def test_truncated_files_give_error_entries(self, tmp_path, name):
        data = {"a.jpg": s.jpeg_bytes, "a.png": s.png_bytes, "a.pdf": s.pdf_bytes, "a.docx": s.docx_bytes, "a.tif": s.tiff_bytes}[
            name
        ]()
        for cut in (len(data) // 3, 40, 12):
            result = probe_path(write(tmp_path, f"cut-{cut}-{name}", data[:cut]))
            assert result["containers"], result
            assert errors(result), (cut, result["containers"])

    def test_png_private_chunk_past_the_end_is_truncation(self, tmp_path):
        from metadata.containers import png_chunk

        png = s.png_bytes(exif=False, xmp=False)
        lying = png[:33] + (500 * 1024 * 1024).to_bytes(4, "big") + b"prVt" + b"x" * 100
        result = probe_path(write(tmp_path, "lying.png", lying))
        assert errors(result) == {"png": "TRUNCATED"} and result["common"]["width"] == 40
        big = png[:33] + png_chunk(b"prVt", b"\x00" * (20 * 1024 * 1024)) + png[33:]
        result = probe_path(write(tmp_path, "big.png", big))  # skipped with a seek, never read
        assert errors(result) == {} and result["common"]["author"] == s.AUTHOR

    def test_oversized_jpeg_headers_are_refused(self, tmp_path):
        data = s.jpeg_bytes(xmp=None, iptc=False)
        filler = (b"\xff\xef" + (60002).to_bytes(2, "big") + b"\x00" * 60000) * 300  # 18 MB of APP15
        result = probe_path(write(tmp_path, "fat.jpg", data[:2] + filler + data[2:]))
        assert errors(result) == {"jpeg": "TOO_LARGE"}

    def test_absurd_id3_tag_size_is_refused_before_mutagen(self, tmp_path):
        header = b"ID3\x04\x00\x00" + bytes([0x7F, 0x7F, 0x7F, 0x7F])  # 256 MiB claimed
        result = probe_path(write(tmp_path, "fat.mp3", header + b"\x00" * 1000), ffprobe=None)
        assert errors(result) == {"tags": "TOO_LARGE"}

    def test_oversized_flac_metadata_is_refused_before_mutagen(self, tmp_path, monkeypatch):
        from metadata import probe

        monkeypatch.setattr(probe, "MAX_TAG_BYTES", 1000)  # the real cap is 64 MiB; the walk is the same
        blocks = bytes([6]) + (600).to_bytes(3, "big") + b"\x00" * 600 + bytes([0x86]) + (600).to_bytes(3, "big") + b"\x00" * 600
        result = probe_path(write(tmp_path, "fat.flac", b"fLaC" + blocks), ffprobe=None)
        assert errors(result) == {"tags": "TOO_LARGE"}
        monkeypatch.setattr(probe, "MAX_TAG_BYTES", 1300)
        assert "TOO_LARGE" not in errors(probe_path(write(tmp_path, "ok.flac", b"fLaC" + blocks), ffprobe=None)).values()

    def test_corrupt_exif_block(self, tmp_path):
        data = s.jpeg_bytes(xmp=None, iptc=False)
        start = data.index(b"Exif\x00\x00") + 6
        broken = data[:start] + b"XX\x00\x00garbage!!!" + data[start + 14 :]
        result = probe_path(write(tmp_path, "x.jpg", broken))
        assert "exif" in errors(result)
        assert result["common"]["width"] == 64

    def test_garbage_is_not_a_container(self, tmp_path):
        result = probe_path(write(tmp_path, "x.bin", b"\x00\x01\x02garbage" * 50))
        assert result["containers"] == [] and result["common"] == {}
        assert result["editable"] == {"sections": {}, "strip_all": False, "anonymize": False}


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2024:05:01 10:20:30", "2024-05-01T10:20:30"),
        ("D:20240501102030+02'00'", "2024-05-01T10:20:30+02:00"),
        ("D:20240501102030Z", "2024-05-01T10:20:30Z"),
        ("2024-05-01T10:20:30Z", "2024-05-01T10:20:30Z"),
        ("not a date", "not a date"),
    ],
)
def test_dates_are_normalised(raw, iso):
    assert normalise_date(raw) == iso
