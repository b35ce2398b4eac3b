"""E-mail uploads (seed 002 "complex example", SECURITY #14): one task for the body and
one per attachment; bounded pre-scan at upload; hostile names and structures."""

from __future__ import annotations

import email.base64mime
import hashlib
import io
from email import encoders
from email.charset import Charset
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from PIL import Image
from pypdf import PdfWriter

from fileconvert import storage
from tests.conftest import assert_error, data_of
from uploads.models import StoredFile, Task, TaskStatus, Upload
from uploads.processing import file_process

# --- builders (Python's email package, pypdf, Pillow) -------------------------------------------


def pdf_bytes(pages: int = 1, title: str = "") -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=280)
    if title:
        writer.add_metadata({"/Title": title})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def png_bytes(size=(20, 12)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (0, 200, 100)).save(out, "PNG")
    return out.getvalue()


def invoice_email(pdfs: list[bytes]) -> bytes:
    message = EmailMessage()
    message["From"] = "Billing <billing@example.com>"
    message["To"] = "accounts@example.org"
    message["Subject"] = "Invoices for March"
    message["Date"] = "Tue, 05 Mar 2024 10:00:00 +0000"
    message.set_content("Please find the three invoices attached.\n")
    for index, pdf in enumerate(pdfs, start=1):
        message.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"invoice_{index:03d}.pdf")
    return message.as_bytes()


def nested(depth: int) -> bytes:
    """multipart/mixed nested ``depth`` levels deep, a text leaf at the bottom."""
    part: MIMEMultipart | MIMEText = MIMEText("deep leaf", "plain", "utf-8")
    for level in range(depth - 1):
        wrapper = MIMEMultipart("mixed")
        wrapper.attach(part)
        if level == 0:
            wrapper.attach(MIMEApplication(b"leaf attachment", Name="leaf.bin"))
        part = wrapper
    part["From"] = "deep@example.com"
    part["To"] = "you@example.com"
    part["Subject"] = "deep"
    return part.as_bytes()


# --- helpers -------------------------------------------------------------------------------------


def upload_email(client, raw: bytes, name: str = "message.eml"):
    return client.post("/upload", {"files": [SimpleUploadedFile(name, raw, content_type="message/rfc822")]}, format="multipart")


def media_files() -> set[str]:
    root = Path(settings.MEDIA_ROOT)
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def row_counts() -> tuple[int, int, int]:
    return Upload.objects.count(), StoredFile.objects.count(), Task.objects.count()


def limits(**values):
    return override_settings(FILECONVERT={**settings.FILECONVERT, **values})


def uploaded_message(client, raw: bytes, name: str = "message.eml") -> tuple[dict, StoredFile]:
    body = data_of(upload_email(client, raw, name), 201)
    assert len(body["tasks"]) == 1
    return body, StoredFile.objects.get(pk=body["tasks"][0]["file_id"])


def children_of(message: StoredFile) -> list[StoredFile]:
    return list(StoredFile.objects.filter(parent=message).order_by("storage_key"))


def stored_bytes(stored: StoredFile) -> bytes:
    return b"".join(storage.iter_chunks(stored.storage_key))


# --- the seed's complex example -------------------------------------------------------------------


@pytest.mark.django_db
class TestExpansion:
    def test_email_with_three_pdfs_becomes_four_tasks(self, member):
        client = member.client()
        pdfs = [pdf_bytes(pages, title=f"Invoice {pages}") for pages in (1, 2, 3)]
        body, message = uploaded_message(client, invoice_email(pdfs))
        assert file_process(file_id=message.pk) == "staged"
        message.refresh_from_db()
        assert message.kind == "eml" and message.content_type == "message/rfc822"
        summary = message.metadata["email"]
        assert summary["subject"] == "Invoices for March"
        assert summary["from"] == "Billing <billing@example.com>"
        assert summary["attachments"] == 3
        assert summary["text_excerpt"].startswith("Please find the three invoices attached.")

        upload = data_of(client.get(f"/upload/{body['id']}"))
        assert len(upload["tasks"]) == 4
        kinds = sorted(t["kind"] for t in upload["tasks"])
        assert kinds == ["attachment", "attachment", "attachment", "email_body"]
        # The attachments are still being processed.
        assert upload["status"] == "PROCESSING"
        assert upload["task_counts"] == {"REVIEWING": 1, "PROCESSING": 3}

        children = children_of(message)
        assert [c.name for c in children] == ["invoice_001.pdf", "invoice_002.pdf", "invoice_003.pdf"]
        for child, original in zip(children, pdfs, strict=True):
            assert child.parent_id == message.pk
            assert child.upload_id == message.upload_id and child.organization_id == member.org.pk
            assert child.storage_key.startswith(f"{member.org.pk}/{message.pk}/.attachments/")
            assert stored_bytes(child) == original
            assert child.size == len(original) and child.sha256 == hashlib.sha256(original).hexdigest()
            assert child.task.kind == Task.KIND_ATTACHMENT
            assert data_of(client.get(f"/task/{child.task.pk}"))["parent_file_id"] == message.pk

        for child in children:
            assert file_process(file_id=child.pk) == "staged"
        for child, pages in zip(children_of(message), (1, 2, 3), strict=True):
            assert child.kind == "pdf" and child.content_type == "application/pdf"
            assert child.metadata["pages"] == pages
        upload = data_of(client.get(f"/upload/{body['id']}"))
        assert upload["status"] == "REVIEWING"
        assert upload["task_counts"] == {"REVIEWING": 4}

    def test_processing_twice_creates_no_duplicates(self, member):
        _body, message = uploaded_message(member.client(), invoice_email([pdf_bytes(1), pdf_bytes(2), pdf_bytes(3)]))
        assert file_process(file_id=message.pk) == "staged"
        assert file_process(file_id=message.pk) == "skipped"
        first = {c.pk: c.storage_key for c in children_of(message)}
        assert len(first) == 3
        # A redelivery after the row was reset (e.g. a worker died before finishing) expands nothing again.
        StoredFile.objects.filter(pk=message.pk).update(status="processing")
        Task.objects.filter(file_id=message.pk).update(status=TaskStatus.PROCESSING)
        assert file_process(file_id=message.pk) == "staged"
        assert {c.pk: c.storage_key for c in children_of(message)} == first
        assert Task.objects.filter(upload_id=message.upload_id).count() == 4
        assert Task.objects.filter(upload_id=message.upload_id, kind=Task.KIND_EMAIL_BODY).count() == 1

    def test_email_without_attachments_is_one_task(self, member):
        message = EmailMessage()
        message["From"] = "a@example.com"
        message["To"] = "b@example.com"
        message["Subject"] = "Just text"
        message.set_content("Nothing attached.")
        body, stored = uploaded_message(member.client(), message.as_bytes())
        assert file_process(file_id=stored.pk) == "staged"
        upload = data_of(member.client().get(f"/upload/{body['id']}"))
        assert len(upload["tasks"]) == 1
        assert upload["status"] == "REVIEWING"
        stored.refresh_from_db()
        assert stored.metadata["email"]["attachments"] == 0
        assert not children_of(stored)

    def test_detected_from_the_bytes_without_an_eml_name(self, member):
        _body, message = uploaded_message(member.client(), invoice_email([pdf_bytes(1)]), name="scan.txt")
        file_process(file_id=message.pk)
        message.refresh_from_db()
        assert message.kind == "eml"
        assert len(children_of(message)) == 1

    def test_attachments_of_attachments_are_not_expanded(self, member):
        inner = EmailMessage()
        inner["From"] = "c@example.com"
        inner["To"] = "d@example.com"
        inner["Subject"] = "inner"
        inner.set_content("inner body")
        inner.add_attachment(pdf_bytes(1), maintype="application", subtype="pdf", filename="inner.pdf")
        outer = EmailMessage()
        outer["From"] = "a@example.com"
        outer["To"] = "b@example.com"
        outer["Subject"] = "outer"
        outer.set_content("outer body")
        outer.add_attachment(inner.as_bytes(), maintype="message", subtype="rfc822", filename="forwarded.eml")
        _body, message = uploaded_message(member.client(), outer.as_bytes())
        file_process(file_id=message.pk)
        [child] = children_of(message)
        assert child.name == "forwarded.eml"
        assert file_process(file_id=child.pk) == "staged"
        child.refresh_from_db()
        assert child.kind == "eml"
        assert not children_of(child)


# --- structure and encodings -----------------------------------------------------------------------


@pytest.mark.django_db
class TestStructure:
    def test_nested_alternative_inline_image_and_forwarded_message(self, member):
        logo = png_bytes()
        report = pdf_bytes(2)
        forwarded = EmailMessage()
        forwarded["From"] = "carol@example.com"
        forwarded["To"] = "alice@example.com"
        forwarded["Subject"] = "Original thread"
        forwarded.set_content("FORWARDED BODY")
        forwarded.add_attachment(b"inner,csv\n1,2\n", maintype="text", subtype="csv", filename="inner.csv")

        message = EmailMessage()
        message["From"] = "alice@example.com"
        message["To"] = "bob@example.com"
        message["Subject"] = "Fwd: Original thread"
        message.set_content("OUTER PLAIN BODY")
        message.add_alternative("<html><body><p>OUTER HTML</p><img src='cid:logo'></body></html>", subtype="html")
        message.get_payload()[1].add_related(logo, "image", "png", cid="<logo>")
        message.add_attachment(report, maintype="application", subtype="pdf", filename="report.pdf")
        message.add_attachment(forwarded)  # message/rfc822
        raw = message.as_bytes()
        assert message.get_content_type() == "multipart/mixed"
        assert message.get_payload()[0].get_content_type() == "multipart/alternative"

        body, stored = uploaded_message(member.client(), raw)
        assert file_process(file_id=stored.pk) == "staged"
        stored.refresh_from_db()
        summary = stored.metadata["email"]
        # The body is the outer message's plain text, never the forwarded message's.
        assert summary["text_excerpt"].strip() == "OUTER PLAIN BODY"
        children = children_of(stored)
        by_type = {c.claimed_content_type: c for c in children}
        assert set(by_type) == {"image/png", "application/pdf", "message/rfc822"}
        assert summary["attachments"] == 3
        image = by_type["image/png"]
        assert stored_bytes(image) == logo
        assert image.metadata["email_part"]["inline"] is True
        assert image.name.endswith(".png")
        assert stored_bytes(by_type["application/pdf"]) == report
        assert by_type["application/pdf"].metadata["email_part"]["inline"] is False
        eml = by_type["message/rfc822"]
        assert eml.name.endswith(".eml")
        assert b"FORWARDED BODY" in stored_bytes(eml)
        upload = data_of(member.client().get(f"/upload/{body['id']}"))
        assert len(upload["tasks"]) == 4
        for child in children:
            file_process(file_id=child.pk)
        image.refresh_from_db()
        assert image.kind == "png" and image.metadata["width"] == 20
        eml.refresh_from_db()
        assert eml.kind == "eml"

    def test_base64_and_quoted_printable_parts_decode_to_the_original_bytes(self, member):
        binary = bytes(range(256)) * 4
        text = "naïve café, 50 % off = bargain\n" * 20
        message = MIMEMultipart()
        message["From"] = "a@example.com"
        message["To"] = "b@example.com"
        message["Subject"] = "encodings"
        message.attach(MIMEText("body", "plain", "utf-8"))
        b64 = MIMEApplication(binary, Name="blob.bin")  # base64 by default
        b64.add_header("Content-Disposition", "attachment", filename="blob.bin")
        qp = MIMEApplication(text.encode("utf-8"), "octet-stream", encoders.encode_quopri)
        qp.add_header("Content-Disposition", "attachment", filename="notes.txt")
        message.attach(b64)
        message.attach(qp)
        raw = message.as_bytes()
        assert b"Content-Transfer-Encoding: base64" in raw
        assert b"Content-Transfer-Encoding: quoted-printable" in raw
        _body, stored = uploaded_message(member.client(), raw)
        file_process(file_id=stored.pk)
        by_name = {c.name: c for c in children_of(stored)}
        assert stored_bytes(by_name["blob.bin"]) == binary
        assert stored_bytes(by_name["notes.txt"]) == text.encode("utf-8")

    def test_non_utf8_charsets(self, member):
        message = MIMEMultipart()
        message["From"] = "shop@example.jp"
        message["To"] = "b@example.com"
        message["Subject"] = email.base64mime.header_encode("請求書のお知らせ".encode("shift_jis"), charset="shift_jis")
        message.attach(MIMEText("Café crème à volonté", "plain", "iso-8859-1"))  # quoted-printable
        attachment = MIMEApplication(pdf_bytes(1), "pdf")
        attachment.add_header("Content-Disposition", "attachment", filename=("iso-8859-1", "", "reçu.pdf"))
        message.attach(attachment)
        raw = message.as_bytes()
        assert b"=?shift_jis?b?" in raw
        assert "Café".encode() not in raw  # really encoded as Latin-1 (QP), not UTF-8
        _body, stored = uploaded_message(member.client(), raw)
        assert file_process(file_id=stored.pk) == "staged"
        stored.refresh_from_db()
        summary = stored.metadata["email"]
        assert summary["subject"] == "請求書のお知らせ"
        assert summary["text_excerpt"] == "Café crème à volonté"
        [child] = children_of(stored)
        assert child.name == "reçu.pdf"

    @pytest.mark.parametrize("name", ["message.eml", "message.bin"])
    def test_8bit_latin1_body_is_still_an_email(self, member, name):
        latin1 = Charset("iso-8859-1")
        latin1.body_encoding = None  # Content-Transfer-Encoding: 8bit, raw Latin-1 bytes
        message = MIMEMultipart()
        message["From"] = "a@example.com"
        message["To"] = "b@example.com"
        message["Subject"] = "8bit"
        message.attach(MIMEText("Café crème", "plain", latin1))
        message.attach(MIMEApplication(b"attached", Name="a.bin"))
        raw = message.as_bytes()
        assert b"Caf\xe9 cr\xe8me" in raw
        _body, stored = uploaded_message(member.client(), raw, name)
        assert file_process(file_id=stored.pk) == "staged"
        stored.refresh_from_db()
        assert stored.kind == "eml"
        assert stored.metadata["email"]["text_excerpt"] == "Café crème"
        assert [c.name for c in children_of(stored)] == ["a.bin"]

    def test_undecodable_charset_does_not_break_processing(self, member):
        raw = (
            b"From: a@example.com\r\nTo: b@example.com\r\nSubject: odd\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nbody \xff\xfe bytes\r\n"
        )
        _body, stored = uploaded_message(member.client(), raw)
        assert file_process(file_id=stored.pk) == "staged"
        stored.refresh_from_db()
        assert "body" in stored.metadata["email"]["text_excerpt"]


# --- hostile attachment names ---------------------------------------------------------------------


HOSTILE_NAMES = [
    ("utf-8", "../../x.pdf"),
    ("utf-8", "..%2F..%2Fetc%2Fpasswd"),
    ("utf-8", "../../etc/passwd"),
    ("utf-8", "..\\..\\windows\\win.ini"),
    ("utf-8", "C:\\Users\\evil.pdf"),
    ("utf-8", "．．／．．／fullwidth.pdf"),
    ("utf-8", "invoice\u202efdp.exe"),
    ("utf-8", "zero\u200bwidth.pdf"),
    ("utf-8", "nul\x00byte.pdf"),
    ("utf-8", "CON"),
]


@pytest.mark.django_db
class TestHostileNames:
    def test_rfc2231_names_are_sanitised(self, member):
        message = MIMEMultipart()
        message["From"] = "a@example.com"
        message["To"] = "b@example.com"
        message["Subject"] = "names"
        message.attach(MIMEText("body", "plain", "utf-8"))
        payloads = []
        for index, (charset, name) in enumerate(HOSTILE_NAMES):
            data = f"attachment {index}".encode()
            payloads.append(data)
            part = MIMEApplication(data)
            part.add_header("Content-Disposition", "attachment", filename=(charset, "", name))
            message.attach(part)
        plain = MIMEApplication(b"plain param")
        plain.add_header("Content-Disposition", "attachment", filename="../../plain.pdf")
        message.attach(plain)
        raw = message.as_bytes()
        assert b"filename*=utf-8''..%2F..%2Fx.pdf" in raw
        assert b"..%252F..%252Fetc%252Fpasswd" in raw  # decodes to the literal "..%2F..%2Fetc%2Fpasswd"

        _body, stored = uploaded_message(member.client(), raw)
        assert file_process(file_id=stored.pk) == "staged"
        children = children_of(stored)
        names = [c.name for c in children]
        assert names == [
            "x.pdf",
            "..%2F..%2Fetc%2Fpasswd",  # shown as text, never decoded into a path
            "passwd",
            "win.ini",
            "evil.pdf",
            "fullwidth.pdf",
            "invoicefdp.exe",
            "zerowidth.pdf",
            "nulbyte.pdf",
            "_CON",
            "plain.pdf",
        ]
        for child, data in zip(children, [*payloads, b"plain param"], strict=True):
            assert "/" not in child.name and "\\" not in child.name
            assert not any(ch in child.name for ch in "\x00\u202e\u200b\r\n")
            assert child.storage_key.startswith(f"{member.org.pk}/{stored.pk}/.attachments/")
            assert ".." not in child.storage_key
            assert stored_bytes(child) == data

    def test_rfc2231_continuations(self, member):
        raw = (
            b"From: a@example.com\r\nTo: b@example.com\r\nSubject: cont\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="BOUND"\r\n\r\n'
            b"--BOUND\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
            b"--BOUND\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment;\r\n filename*0*=utf-8''..%2F..%2F;\r\n filename*1*=secret%2Fr%C3%A9sum%C3%A9.pdf\r\n"
            b"\r\naGVsbG8=\r\n--BOUND--\r\n"
        )
        _body, stored = uploaded_message(member.client(), raw)
        file_process(file_id=stored.pk)
        [child] = children_of(stored)
        assert child.name == "résumé.pdf"
        assert stored_bytes(child) == b"hello"


# --- pre-scan limits -------------------------------------------------------------------------------


@pytest.mark.django_db
class TestLimits:
    def assert_refused(self, member, raw: bytes, code: str, name: str = "message.eml") -> None:
        before_files, before_rows = media_files(), row_counts()
        assert_error(upload_email(member.client(), raw, name), 422, code)
        assert media_files() == before_files
        assert row_counts() == before_rows

    def test_too_many_parts_is_422_at_upload(self, member):
        message = MIMEMultipart()
        message["From"] = "a@example.com"
        message["To"] = "b@example.com"
        message["Subject"] = "many parts"
        for index in range(12):
            message.attach(MIMEApplication(f"part {index}".encode(), Name=f"p{index}.bin"))
        with limits(MAX_EMAIL_PARTS=5):
            self.assert_refused(member, message.as_bytes(), "EMAIL_TOO_MANY_PARTS")
        with limits(MAX_EMAIL_PARTS=20):
            data_of(upload_email(member.client(), message.as_bytes()), 201)

    def test_too_many_parts_is_caught_in_a_batch_too(self, member):
        message = MIMEMultipart()
        message["From"] = "a@example.com"
        message["To"] = "b@example.com"
        message["Subject"] = "many parts"
        for index in range(12):
            message.attach(MIMEApplication(b"x", Name=f"p{index}.bin"))
        before_files, before_rows = media_files(), row_counts()
        files = [
            SimpleUploadedFile("ok.txt", b"a harmless file"),
            SimpleUploadedFile("many.eml", message.as_bytes()),
        ]
        with limits(MAX_EMAIL_PARTS=5):
            response = member.client().post("/upload", {"files": files}, format="multipart")
        assert_error(response, 422, "EMAIL_TOO_MANY_PARTS")
        assert media_files() == before_files
        assert row_counts() == before_rows

    def test_headers_too_large_is_422_at_upload(self, member):
        message = EmailMessage()
        message["From"] = "a@example.com"
        message["To"] = "b@example.com"
        message["Subject"] = "big headers"
        for index in range(80):
            message[f"X-Padding-{index}"] = "p" * 60
        message.set_content("small body")
        raw = message.as_bytes()
        assert raw.index(b"\n\n") > 4096
        with limits(MAX_EMAIL_HEADER_BYTES=2048):
            self.assert_refused(member, raw, "EMAIL_HEADERS_TOO_LARGE")

    def test_message_too_large_is_422_at_upload(self, member):
        raw = invoice_email([pdf_bytes(3)])
        with limits(MAX_EMAIL_BYTES=len(raw) - 1):
            self.assert_refused(member, raw, "EMAIL_TOO_LARGE")

    def test_nesting_deeper_than_the_limit_fails_the_task(self, member):
        raw = nested(6)
        with limits(MAX_EMAIL_DEPTH=3):
            body, stored = uploaded_message(member.client(), raw)  # the byte-level pre-scan lets it through
            assert file_process(file_id=stored.pk) == "failed"
        stored.refresh_from_db()
        assert stored.status == "failed" and stored.error_code == "EMAIL_TOO_DEEP"
        task = data_of(member.client().get(f"/task/{body['tasks'][0]['id']}"))
        assert task["status"] == "FAILED"
        assert task["error"]["code"] == "EMAIL_TOO_DEEP"
        assert not children_of(stored)
        assert data_of(member.client().get(f"/upload/{body['id']}"))["status"] == "FAILED"

    def test_nesting_within_the_limit_is_expanded(self, member):
        with limits(MAX_EMAIL_DEPTH=6):
            _body, stored = uploaded_message(member.client(), nested(6))
            assert file_process(file_id=stored.pk) == "staged"
        [child] = children_of(stored)
        assert child.name == "leaf.bin"
        assert stored_bytes(child) == b"leaf attachment"

    def test_absurd_nesting_is_422_at_upload(self, member):
        # Hand-written: 150 nested multiparts, as a hostile client would send (SECURITY #14, depth 1000).
        depth = 150
        head = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
        opening = b"".join(
            b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level) for level in range(depth)
        )
        closing = b"".join(b"\r\n--b%d--\r\n" % level for level in reversed(range(depth)))
        raw = head + opening + b"Content-Type: text/plain\r\n\r\nleaf" + closing
        self.assert_refused(member, raw, "EMAIL_TOO_DEEP")

    def test_worker_survives_a_failed_message(self, member):
        with limits(MAX_EMAIL_DEPTH=2):
            _body, deep = uploaded_message(member.client(), nested(4))
            assert file_process(file_id=deep.pk) == "failed"
        _body, fine = uploaded_message(member.client(), invoice_email([pdf_bytes(1)]))
        assert file_process(file_id=fine.pk) == "staged"
        assert len(children_of(fine)) == 1
