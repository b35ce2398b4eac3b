"""Signed, expiring, content-bound tokens for links that carry no auth header.

One mechanism for every such link (review previews, ``?dl=`` download links, …): a
token names a purpose, a file and the first bytes of that file's SHA-256, and expires.
It is an HMAC (Django's ``TimestampSigner`` over ``SECRET_KEY``, salted per purpose),
so it cannot be forged or moved to another purpose or file, and it stops working when
the file's content changes (a new SHA-256) even before it expires.

    token = file_token_make(purpose="download", file_id=f.pk, sha256=f.sha256, ttl=3600)
    file_id = file_token_check(token, purpose="download", lookup=lambda fid: current_sha)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.core import signing

from fileconvert.errors import NotFound

_SALT = "fileconvert.signed."
_HASH_PREFIX = 16  # hex chars of the SHA-256 bound into the token (64 bits)


class LinkInvalid(NotFound):
    """A tampered, expired, revoked or stale link: indistinguishable from a missing file."""

    default_message = "This link is invalid or has expired."


@dataclass(frozen=True)
class SignedFile:
    file_id: str
    expires_at: int  # epoch seconds


def file_token_make(*, purpose: str, file_id: str, sha256: str, ttl: int) -> tuple[str, int]:
    """Return ``(token, expires_at_epoch)``."""
    expires_at = int(time.time()) + int(ttl)
    payload = {"f": file_id, "h": (sha256 or "")[:_HASH_PREFIX], "e": expires_at}
    token = signing.TimestampSigner(salt=_SALT + purpose).sign_object(payload, compress=False)
    return token, expires_at


def file_token_check(token: str, *, purpose: str, current_sha256: Callable[[str], str | None]) -> SignedFile:
    """Verify a token; ``current_sha256(file_id)`` returns the file's SHA-256 now, or None
    when the file is gone or no longer eligible. Raises ``LinkInvalid`` on any failure."""
    try:
        payload = signing.TimestampSigner(salt=_SALT + purpose).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError):
        raise LinkInvalid() from None
    if not isinstance(payload, dict) or not isinstance(payload.get("f"), str) or not isinstance(payload.get("e"), int):
        raise LinkInvalid()
    if payload["e"] < time.time():
        raise LinkInvalid()
    sha = current_sha256(payload["f"])
    if sha is None or sha[:_HASH_PREFIX] != payload.get("h"):
        raise LinkInvalid()
    return SignedFile(file_id=payload["f"], expires_at=payload["e"])
