"""Extraction per family, on real files made by the real libraries; and the hostile ones
(XML bomb, external entity, zip bomb, huge text) failing safely in the sandboxed child."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from search.extract import (
    ExtractionFailed,
    Limits,
    decode_text,
    extract_file,
    filename_words,
)
from tests.search import documents as d

LIMITS = Limits(max_chars=100_000, max_pdf_pages=5, max_unzipped_bytes=8 * 1024 * 1024)


def extract(tmp_path: Path, kind: str, data: bytes, limits: Limits = LIMITS):
    path = tmp_path / f"input.{kind}"
    path.write_bytes(data)
    return extract_file(str(path), kind, limits)


class TestFamilies:
    def test_pdf_text_of_every_page_and_title(self, tmp_path):
        found = extract(
            tmp_path, "pdf", d.pdf_with_text(["Quarterly aardvark census", "Second page mentions walrus"], title="Zoo")
        )
        assert "aardvark" in found.body and "walrus" in found.body
        assert found.title == "Zoo"
        assert found.fields["pages"] == 2

    def test_pdf_page_cap(self, tmp_path):
        pages = [f"page{i} marker{i}" for i in range(8)]
        found = extract(tmp_path, "pdf", d.pdf_with_text(pages), Limits(max_pdf_pages=3))
        assert "marker2" in found.body and "marker3" not in found.body
        assert found.truncated

    def test_garbage_pdf_fails_with_a_code(self, tmp_path):
        with pytest.raises(ExtractionFailed) as info:
            extract(tmp_path, "pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50)
        assert info.value.code == "UNREADABLE_CONTENT"

    def test_plain_text_in_latin1_is_detected(self, tmp_path):
        text = "Le garçon a mangé une crème brûlée à la française. " * 20
        found = extract(tmp_path, "text", text.encode("latin-1"))
        assert "crème brûlée" in found.body

    def test_utf8_cut_by_the_read_cap_is_not_garbled(self):
        assert decode_text("héllo".encode()[:2]) == "h"

    def test_text_cap(self, tmp_path):
        found = extract(tmp_path, "text", b"word " * 100_000, Limits(max_chars=1000))
        assert len(found.body) <= 1000 and found.truncated

    def test_csv_and_tsv(self, tmp_path):
        out = io.StringIO()
        csv.writer(out).writerows([["city", "population"], ["Timbuktu", "54453"], ["Ouagadougou", "2453496"]])
        found = extract(tmp_path, "csv", out.getvalue().encode())
        assert "Timbuktu" in found.body and found.fields["columns"] == ["city", "population"]
        found = extract(tmp_path, "tsv", b"name\tanimal\nalice\tokapi\n")
        assert "okapi" in found.body and found.fields["columns"] == ["name", "animal"]

    def test_json_keys_and_values_and_deep_nesting(self, tmp_path):
        found = extract(tmp_path, "json", json.dumps({"species": ["narwhal", {"habitat": "arctic"}], "n": 3}).encode())
        assert {"species", "narwhal", "habitat", "arctic", "3"} <= set(found.body.split())
        deep = b"[" * 100_000 + b"]" * 100_000  # recursion would blow the stack; falls back to text
        assert extract(tmp_path, "json", deep).body.startswith("[")

    def test_xml_text_in_document_order(self, tmp_path):
        found = extract(tmp_path, "xml", b"<?xml version='1.0'?><doc><title>Atlas</title><p>alpha <b>beta</b> gamma</p></doc>")
        assert found.title == "Atlas"
        assert found.body.split() == ["Atlas", "alpha", "beta", "gamma"]

    def test_markdown_without_markup(self, tmp_path):
        found = extract(tmp_path, "markdown", b"# Field notes\n\nSaw a **pangolin** near [the river](http://x.example/).\n")
        assert found.title == "Field notes"
        assert "pangolin" in found.body and "the river" in found.body
        assert "**" not in found.body and "http://x.example" not in found.body

    def test_html_text_without_scripts_and_styles(self, tmp_path):
        page = (
            b"<html><head><title>Menagerie</title><style>.x{color:red}</style></head>"
            b"<body><p>The tapir sleeps.</p><script>var secretToken = 1;</script><noscript>enable js</noscript></body></html>"
        )
        found = extract(tmp_path, "html", page)
        assert found.title == "Menagerie"
        assert "tapir" in found.body
        assert "secretToken" not in found.body and "color" not in found.body and "enable js" not in found.body

    def test_docx(self, tmp_path):
        found = extract(tmp_path, "docx", d.docx_bytes(["First paragraph about axolotls.", "Second on quokkas."], title="Memo"))
        assert "axolotls" in found.body and "quokkas" in found.body
        assert found.title == "Memo"

    def test_xlsx(self, tmp_path):
        found = extract(tmp_path, "xlsx", d.xlsx_bytes([["animal", "count"], ["capybara", 12]], sheet="Census"))
        assert {"Census", "animal", "capybara", "12"} <= set(found.body.split())

    def test_jpeg_exif(self, tmp_path):
        found = extract(tmp_path, "jpeg", d.jpeg_with_exif("Sunset over the fjord", "Ingrid Photographer"))
        assert found.fields["ImageDescription"] == "Sunset over the fjord"
        assert found.fields["Artist"] == "Ingrid Photographer"
        assert "fjord" in found.body and found.title == "Sunset over the fjord"

    def test_mp3_tags(self, tmp_path):
        found = extract(tmp_path, "mp3", d.mp3_with_tags("Moonlight Sonata", "Ludwig Zebrafinch", album="Nocturnes"))
        assert found.title == "Moonlight Sonata"
        assert found.fields["artist"] == "Ludwig Zebrafinch" and found.fields["album"] == "Nocturnes"
        assert found.fields["duration_seconds"] > 0.2

    def test_email_subject_and_body(self, tmp_path):
        found = extract(tmp_path, "eml", d.eml_bytes("Invoice for the llamas", "Please pay for three llamas."))
        assert found.title == "Invoice for the llamas" and "three llamas" in found.body

    def test_unknown_kind_contributes_nothing(self, tmp_path):
        assert extract(tmp_path, "binary", b"\x00\x01\x02").body == ""

    def test_filename_words(self):
        assert filename_words("Q3_report-final.v2.pdf") == "Q3_report-final.v2.pdf Q3 report final v2 pdf"


class TestHostile:
    def test_billion_laughs_is_refused(self, tmp_path):
        with pytest.raises(ExtractionFailed) as info:
            extract(tmp_path, "xml", d.billion_laughs())
        assert info.value.code == "UNSAFE_CONTENT"

    def test_external_entity_is_refused(self, tmp_path):
        with pytest.raises(ExtractionFailed) as info:
            extract(tmp_path, "xml", d.external_entity_xml())
        assert info.value.code == "UNSAFE_CONTENT"

    def test_xml_bomb_inside_docx_is_refused(self, tmp_path):
        import zipfile

        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("[Content_Types].xml", b"<Types/>")
            archive.writestr("word/document.xml", d.billion_laughs())
        with pytest.raises(ExtractionFailed) as info:
            extract(tmp_path, "docx", out.getvalue())
        assert info.value.code == "UNSAFE_CONTENT"

    def test_zip_bomb_stops_at_the_cap_while_reading(self, tmp_path):
        with pytest.raises(ExtractionFailed) as info:
            extract(tmp_path, "docx", d.zip_bomb_docx(64 * 1024 * 1024), Limits(max_unzipped_bytes=4 * 1024 * 1024))
        assert info.value.code == "ARCHIVE_TOO_LARGE"

    def test_corrupt_zip(self, tmp_path):
        with pytest.raises(ExtractionFailed) as info:
            extract(tmp_path, "xlsx", b"PK\x03\x04" + b"\x00" * 100)
        assert info.value.code == "UNREADABLE_CONTENT"

    def test_markers_in_the_text_are_removed(self, tmp_path):
        found = extract(tmp_path, "text", "a \ue000fake\ue001 mark".encode())
        assert "\ue000" not in found.body and "\ue001" not in found.body
