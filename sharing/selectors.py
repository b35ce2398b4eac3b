"""Reads of the sharing app: which files may be downloaded or shared, and resolving a
``?dl=`` token or a share token to a file. Every refusal of a token is the same 404
(``LinkInvalid``): tampered, expired, revoked, stale and not-for-you look alike."""

from __future__ import annotations

import hmac

from accounts.identity import Identity
from accounts.models import Membership, hash_secret
from fileconvert.signed import LinkInvalid, SignedFile, file_token_check
from sharing.models import RANK, ShareLink, ShareVisibility
from uploads.models import FileStatus, ReviewState, StoredFile

DOWNLOADABLE_STATUSES = (FileStatus.ACTIVE, FileStatus.STAGED, FileStatus.PROCESSING)


def downloadable(file: StoredFile) -> bool:
    """Bytes confirmed in storage, not rejected, not failed. Staged and processing files are
    downloadable by their own organization (they uploaded them); never publicly shared."""
    return file.has_bytes and file.status in DOWNLOADABLE_STATUSES and file.review_state != ReviewState.REJECTED


def shareable(file: StoredFile, visibility: str | None = None) -> bool:
    if not downloadable(file):
        return False
    return visibility != ShareVisibility.PUBLIC or file.status == FileStatus.ACTIVE


def signed_download(token: str, *, org_id: str, file_id: str) -> tuple[StoredFile, SignedFile]:
    """The file a ``?dl=`` token names, if it is this path's file, still downloadable and
    still holds the content the token was made for."""
    found: dict[str, StoredFile] = {}

    def current_sha256(fid: str) -> str | None:
        file = StoredFile.objects.filter(pk=fid, organization_id=org_id).select_related("organization").first()
        if file is None or fid != file_id or not downloadable(file):
            return None
        found["file"] = file
        return file.sha256

    signed = file_token_check(token, purpose="download", current_sha256=current_sha256)
    return found["file"], signed


def _find_link(raw: str) -> ShareLink | None:
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "fcs" or len(parts[1]) != 12:
        return None
    link = ShareLink.objects.select_related("file", "organization").filter(prefix=parts[1]).first()
    if link is None or not hmac.compare_digest(link.secret_hash, hash_secret(raw.strip())):
        return None
    return link


def may_follow(link: ShareLink, identity: Identity | None) -> bool:
    """The audience rule: public for anyone; org for the organization's members; restricted
    for a signed-in user named by id or e-mail."""
    if link.visibility == ShareVisibility.PUBLIC:
        return True
    if identity is None:
        return False
    user = identity.user
    if link.visibility == ShareVisibility.ORG:
        if identity.org.pk == link.organization_id:
            return True
        return bool(user and Membership.objects.filter(organization_id=link.organization_id, user=user).exists())
    if link.visibility == ShareVisibility.RESTRICTED:
        if user is None or not user.is_active:
            return False
        return user.pk in link.allowed_user_ids or (user.email or "").strip().lower() in link.allowed_emails
    return False


def link_usable(link: ShareLink) -> bool:
    """Defence in depth at access time, whatever the revocation hooks did: the link is live,
    the file still eligible, still as visible as the link, and holds the same content."""
    file = link.file
    return (
        link.is_live()
        and shareable(file, link.visibility)
        and RANK.get(file.visibility, 0) >= RANK[link.visibility]
        and file.sha256 == link.content_sha256
    )


def share_link_resolve(raw: str, identity: Identity | None) -> ShareLink:
    link = _find_link(raw)
    if link is None or not link_usable(link) or not may_follow(link, identity):
        raise LinkInvalid()
    return link
