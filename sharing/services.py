"""Writes of the sharing app: signed download links, share links, their revocation and
the counting of downloads through them. Keyword-only, atomic, audited."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.identity import Identity
from accounts.models import hash_secret
from accounts.services import audit_record
from fileconvert.errors import Conflict, ValidationFailed
from fileconvert.signed import file_token_make
from sharing.models import RANK, ShareLink, ShareVisibility
from sharing.selectors import downloadable, shareable
from uploads import services as upload_services
from uploads.models import FileStatus, StoredFile, Visibility

DOWNLOAD_PURPOSE = "download"
SHARE_TOKEN_KIND = "fcs"


def _conf(name: str) -> Any:
    return settings.FILECONVERT[name]


# --- Signed ?dl= links -------------------------------------------------------------------


def _download_ttl(ttl: int | None) -> int:
    value = _conf("DOWNLOAD_LINK_TTL_SECONDS") if ttl is None else int(ttl)
    maximum = _conf("DOWNLOAD_LINK_MAX_TTL_SECONDS")
    if value < 1 or value > maximum:
        raise ValidationFailed(f"expires_in must be between 1 and {maximum} seconds.", fields={"expires_in": ["out of range"]})
    return value


def download_path(file: StoredFile) -> str:
    return f"/api/files/{file.organization_id}/{file.pk}/download"


def download_url_for(file: StoredFile, ttl: int | None = None) -> str:
    """A relative URL that downloads ``file`` with no auth header until it expires or the
    file's content changes: ``/api/files/{org_id}/{file_id}/download?dl=<token>``."""
    token, _expires = file_token_make(purpose=DOWNLOAD_PURPOSE, file_id=file.pk, sha256=file.sha256, ttl=_download_ttl(ttl))
    return f"{download_path(file)}?{urlencode({'dl': token})}"


@dataclass(frozen=True)
class DownloadLink:
    url: str
    expires_at: datetime


def download_link_create(*, actor: Identity, file: StoredFile, ttl: int | None = None) -> DownloadLink:
    if not downloadable(file):
        raise Conflict("This file has no downloadable content.", code="NOT_DOWNLOADABLE")
    seconds = _download_ttl(ttl)
    token, expires = file_token_make(purpose=DOWNLOAD_PURPOSE, file_id=file.pk, sha256=file.sha256, ttl=seconds)
    audit_record(org=actor.org, actor=actor, action="file.download_link", target=file, details={"ttl": seconds})
    return DownloadLink(
        url=f"{download_path(file)}?{urlencode({'dl': token})}",
        expires_at=datetime.fromtimestamp(expires, tz=UTC),
    )


# --- Share links -------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareResult:
    link: ShareLink | None  # None when the file was made private
    token: str  # the raw token, shown once ("" when no link)
    revoked: int


def _expiry(expires_in: int | None, expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_in is not None and expires_at is not None:
        raise ValidationFailed("Give expires_in or expires_at, not both.", fields={"expires_at": ["conflicts with expires_in"]})
    maximum = _conf("SHARE_LINK_MAX_TTL_SECONDS")
    if expires_in is not None:
        if expires_in < 1 or expires_in > maximum:
            raise ValidationFailed(
                f"expires_in must be between 1 and {maximum} seconds.", fields={"expires_in": ["out of range"]}
            )
        return now + timedelta(seconds=expires_in)
    if expires_at is not None:
        if expires_at <= now:
            raise ValidationFailed("expires_at must be in the future.", fields={"expires_at": ["in the past"]})
        if expires_at > now + timedelta(seconds=maximum):
            raise ValidationFailed(f"expires_at is more than {maximum} seconds away.", fields={"expires_at": ["too far"]})
        return expires_at
    return None


def _recipients(users: list[str], emails: list[str]) -> tuple[list[str], list[str]]:
    user_ids = sorted({u.strip() for u in users if u and u.strip()})
    addresses = sorted({e.strip().lower() for e in emails if e and e.strip()})
    if not user_ids and not addresses:
        raise ValidationFailed("A restricted share names at least one user or e-mail.", fields={"users": ["required"]})
    if len(user_ids) + len(addresses) > _conf("SHARE_MAX_RECIPIENTS"):
        raise ValidationFailed(
            f"At most {_conf('SHARE_MAX_RECIPIENTS')} users and e-mails per link.", fields={"users": ["too many"]}
        )
    return user_ids, addresses


def share_create(
    *,
    actor: Identity,
    file: StoredFile,
    visibility: str,
    expires_in: int | None = None,
    expires_at: datetime | None = None,
    users: list[str] | None = None,
    emails: list[str] | None = None,
) -> ShareResult:
    """Set the file's visibility (through ``uploads.services.file_update``, which refuses
    ``public`` for files that are not active) and, unless it is private, mint a link."""
    if visibility not in Visibility.values:
        raise ValidationFailed("visibility is invalid.", fields={"visibility": [f"one of {', '.join(Visibility.values)}"]})
    now = timezone.now()
    if visibility == Visibility.PRIVATE:
        with transaction.atomic():
            upload_services.file_update(actor=actor, file=file, data={"visibility": Visibility.PRIVATE})
            revoked = links_revoke(file_id=file.pk, reason="private", wider_than=Visibility.PRIVATE)
        return ShareResult(link=None, token="", revoked=revoked)

    user_ids, addresses = _recipients(users or [], emails or []) if visibility == Visibility.RESTRICTED else ([], [])
    if (users or emails) and visibility != Visibility.RESTRICTED:
        raise ValidationFailed("users and emails apply to restricted shares only.", fields={"users": ["not restricted"]})
    expiry = _expiry(expires_in, expires_at, now)
    with transaction.atomic():
        locked = StoredFile.objects.select_for_update().get(pk=file.pk)
        if visibility == Visibility.PUBLIC and locked.status != FileStatus.ACTIVE:
            raise Conflict("Only active (reviewed) files can be shared publicly.", code="NOT_SHAREABLE")
        if not shareable(locked):
            raise Conflict("This file cannot be shared in its current state.", code="NOT_SHAREABLE")
        locked = upload_services.file_update(actor=actor, file=locked, data={"visibility": visibility})
        # At once, not only after commit: links wider than the new visibility end now.
        revoked = links_revoke(file_id=locked.pk, reason="narrowed", wider_than=visibility)
        prefix = secrets.token_hex(6)
        raw = f"{SHARE_TOKEN_KIND}_{prefix}_{secrets.token_urlsafe(32)}"
        link = ShareLink.objects.create(
            organization=locked.organization,
            file=locked,
            prefix=prefix,
            secret_hash=hash_secret(raw),
            visibility=ShareVisibility(visibility),
            allowed_user_ids=user_ids,
            allowed_emails=addresses,
            content_sha256=locked.sha256,
            expires_at=expiry,
            created_by=actor.user,
        )
        audit_record(
            org=actor.org,
            actor=actor,
            action="share.create",
            target=link,
            details={
                "file_id": locked.pk,
                "visibility": visibility,
                "expires_at": expiry.isoformat() if expiry else None,
                "users": user_ids,
                "emails": addresses,
            },
        )
    return ShareResult(link=link, token=raw, revoked=revoked)


def links_revoke(*, file_id: str, reason: str, wider_than: str = Visibility.PRIVATE) -> int:
    """End the live links of a file whose audience is wider than ``wider_than``
    (``private``: all of them). Idempotent; returns how many it ended."""
    keep = [v for v in ShareVisibility.values if RANK[v] <= RANK[wider_than]]
    live = ShareLink.objects.filter(file_id=file_id, revoked_at__isnull=True).exclude(visibility__in=keep)
    return live.update(revoked_at=timezone.now(), revoked_reason=reason)


def share_revoke(*, actor: Identity, link: ShareLink) -> ShareLink:
    with transaction.atomic():
        locked = ShareLink.objects.select_for_update().get(pk=link.pk)
        if locked.revoked_at is None:
            locked.revoked_at = timezone.now()
            locked.revoked_reason = "revoked"
            locked.save(update_fields=["revoked_at", "revoked_reason"])
            audit_record(org=actor.org, actor=actor, action="share.revoke", target=locked, details={"file_id": locked.file_id})
    return locked


def share_download_record(*, link: ShareLink, actor: Identity | None, ranged: bool) -> None:
    """Count one download through a link (an atomic increment, no lost updates) and audit it."""
    with transaction.atomic():
        ShareLink.objects.filter(pk=link.pk).update(download_count=F("download_count") + 1, last_downloaded_at=timezone.now())
        audit_record(
            org=link.organization,
            actor=actor,
            action="share.download",
            target=link,
            details={"file_id": link.file_id, "visibility": link.visibility, "ranged": ranged},
        )


def signed_download_record(*, file: StoredFile, expires_at: int) -> None:
    audit_record(
        org=file.organization,
        actor=None,
        action="file.download_signed",
        target=file,
        details={"link_expires_at": expires_at},
    )
