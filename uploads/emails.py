"""E-mail messages: a bounded pre-scan, then parts out as attachments (SECURITY #14)."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage, Message
from typing import IO

from django.conf import settings

from fileconvert.errors import Unprocessable
from fileconvert.names import sanitize_filename

_CONTENT_TYPE_LINE = re.compile(rb"^content-type:", re.IGNORECASE | re.MULTILINE)
_MULTIPART = re.compile(rb"multipart/", re.IGNORECASE)
MAX_MULTIPARTS = 100
_GUESSED_EXT = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "text/plain": ".txt",
    "text/html": ".html",
    "message/rfc822": ".eml",
    "text/csv": ".csv",
}


@dataclass(frozen=True)
class Attachment:
    name: str
    claimed_type: str
    payload: bytes
    inline: bool


@dataclass(frozen=True)
class ParsedEmail:
    subject: str
    sender: str
    recipients: str
    date: str
    text: str
    attachments: list[Attachment]


def _limit(name: str) -> int:
    return int(settings.FILECONVERT[name])


def prescan(fh: IO[bytes], size: int) -> None:
    """Cheap byte-level checks before any parsing; 422 when a limit is crossed."""
    if size > _limit("MAX_EMAIL_BYTES"):
        raise Unprocessable(f"E-mail messages are limited to {_limit('MAX_EMAIL_BYTES')} bytes.", code="EMAIL_TOO_LARGE")
    fh.seek(0)
    raw = fh.read(_limit("MAX_EMAIL_BYTES") + 1)
    fh.seek(0)
    header_end = re.search(rb"\r?\n\r?\n", raw)
    header_size = header_end.start() if header_end else len(raw)
    if header_size > _limit("MAX_EMAIL_HEADER_BYTES"):
        raise Unprocessable("The message's headers are too large.", code="EMAIL_HEADERS_TOO_LARGE")
    if len(_CONTENT_TYPE_LINE.findall(raw)) > _limit("MAX_EMAIL_PARTS"):
        raise Unprocessable(f"The message has more than {_limit('MAX_EMAIL_PARTS')} parts.", code="EMAIL_TOO_MANY_PARTS")
    if len(_MULTIPART.findall(raw)) > MAX_MULTIPARTS:
        raise Unprocessable("The message nests too many multiparts.", code="EMAIL_TOO_DEEP")


def _depth(message: Message) -> int:
    deepest = 0
    stack = [(message, 1)]
    while stack:
        part, depth = stack.pop()
        deepest = max(deepest, depth)
        if part.is_multipart():
            stack.extend((child, depth + 1) for child in part.get_payload())  # type: ignore[union-attr]
    return deepest


def parse(fh: IO[bytes], size: int) -> ParsedEmail:
    prescan(fh, size)
    try:
        message = email.message_from_binary_file(fh, policy=email.policy.default)
    except (RecursionError, ValueError, TypeError, IndexError) as exc:
        raise Unprocessable(f"The message could not be parsed: {type(exc).__name__}.", code="EMAIL_UNPARSEABLE") from None
    assert isinstance(message, EmailMessage)
    if _depth(message) > _limit("MAX_EMAIL_DEPTH"):
        raise Unprocessable(f"The message nests deeper than {_limit('MAX_EMAIL_DEPTH')} levels.", code="EMAIL_TOO_DEEP")
    attachments: list[Attachment] = []
    text = ""
    stack: list[Message] = [message]
    while stack:
        part = stack.pop(0)
        content_type = part.get_content_type()
        # message/rfc822 is "multipart" to the email package; a forwarded message is one .eml attachment.
        if part.is_multipart() and content_type != "message/rfc822":
            stack[0:0] = list(part.get_payload())  # type: ignore[arg-type]
            continue
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        is_body_text = content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename
        if is_body_text:
            if not text or content_type == "text/plain":
                text = _text_of(part) or text
            continue
        if content_type == "message/rfc822":
            inner = part.get_payload()
            payload = inner[0].as_bytes() if isinstance(inner, list) and inner else part.as_bytes()
        else:
            try:
                payload = part.get_payload(decode=True) or b""
            except (ValueError, AssertionError, LookupError):
                payload = b""
        index = len(attachments) + 1
        default = f"attachment-{index}{_GUESSED_EXT.get(content_type, '.bin')}"
        attachments.append(
            Attachment(
                name=sanitize_filename(filename, default=default),
                claimed_type=content_type[:200],
                payload=payload,
                inline=disposition == "inline",
            )
        )
    return ParsedEmail(
        subject=str(message.get("subject", ""))[:500],
        sender=str(message.get("from", ""))[:500],
        recipients=str(message.get("to", ""))[:1000],
        date=str(message.get("date", ""))[:100],
        text=text[:20000],
        attachments=attachments,
    )


def _text_of(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError, AssertionError):
        raw = part.get_payload(decode=True) or b""
        content = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return content if isinstance(content, str) else ""
