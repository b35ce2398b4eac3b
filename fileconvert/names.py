"""Display names from untrusted input, and the ASCII slug used inside storage keys.

SECURITY #8: a client's file name never reaches a path. The display name is
NFKC-normalised (so fullwidth ``．．／`` becomes ``../`` *before* path parts are
dropped), stripped of control, format (bidi, zero-width) and separator characters,
reduced to its last path component, and cut to 255 UTF-8 bytes keeping the extension.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 255
_DROP_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def sanitize_filename(raw: str | None, default: str = "file") -> str:
    text = unicodedata.normalize("NFKC", raw or "")
    text = "".join(" " if ch == "\t" else ch for ch in text if ch == "\t" or unicodedata.category(ch) not in _DROP_CATEGORIES)
    text = re.split(r"[/\\]", text)[-1]  # the last path component, for either separator
    text = text.replace(":", "_")  # drive letters and NTFS streams
    text = re.sub(r"\s+", " ", text).strip().rstrip(". ")
    if not text or set(text) <= {"."}:
        return default
    if _RESERVED.match(text):
        text = f"_{text}"
    if len(text.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext.encode("utf-8")) <= 16 and stem:
            text = _truncate_utf8(stem, MAX_NAME_BYTES - len(ext.encode("utf-8")) - 1) + "." + ext
        else:
            text = _truncate_utf8(text, MAX_NAME_BYTES)
    return text


def storage_slug(name: str, default: str = "file") -> str:
    """ASCII-only, at most 100 characters: the name part of a storage key."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = _SLUG_UNSAFE.sub("-", ascii_name).strip("-.")[:100].strip("-.")
    return slug or default


def extension_of(name: str) -> str:
    _stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and ext and len(ext) <= 10 else ""
