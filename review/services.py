"""Review decisions: the only way a staged file becomes active or rejected.

Each decision is one conditional UPDATE on ``review_state='pending'`` inside a
transaction, so of two admins deciding the same file at once exactly one changes the
row and the other is told 409; a file that is gone is a 404. The API, the Django admin
(buttons and bulk actions) and the beat policy all call these functions.

Effects of a decision, in the same transaction:
- approve: file ``staged`` → ``active``, review ``approved``; its task REVIEWING →
  COMPLETED; audit ``review.approve``; ``file_activated`` after commit (search indexes it).
- reject: file ``staged`` → ``failed`` with error ``REVIEW_REJECTED`` and the reason,
  review ``rejected``; its task → FAILED with the same code and reason (the tenant sees
  it on the file and on the task); audit ``review.reject``; ``file_withdrawn`` after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.identity import Identity
from accounts.models import Membership, User
from accounts.scopes import ADMIN_ALL
from accounts.services import audit_record
from fileconvert.errors import Conflict, Forbidden, NotFound, ValidationFailed
from fileconvert.signed import file_token_make
from review.models import ReviewEscalation
from uploads.models import FileStatus, ReviewState, StoredFile, Task, TaskStatus
from uploads.signals import file_activated, file_withdrawn, send_on_commit

logger = logging.getLogger(__name__)

PREVIEW_PURPOSE = "preview"
REJECTED_CODE = "REVIEW_REJECTED"
DEADLINE_REASON = "review deadline passed"
POLICY_ESCALATE = "escalate"
POLICY_REJECT = "reject"
POLICIES = (POLICY_ESCALATE, POLICY_REJECT)
REASON_MAX = 1000
MODE_ADMIN_SITE = "admin_site"


def _conf(name: str) -> object:
    return settings.FILECONVERT[name]


def admin_site_actor(user: User) -> Identity:
    """The Identity of a platform admin acting in the Django admin (no API credential)."""
    membership = Membership.objects.filter(user=user).select_related("organization").order_by("pk").first()
    return Identity(
        org=membership.organization if membership else None,  # type: ignore[arg-type]
        user=user,
        role="platform_admin",
        mode=MODE_ADMIN_SITE,
        scopes=frozenset({ADMIN_ALL}) if user.is_platform_admin else frozenset(),
    )


def _check_reviewer(actor: Identity | None) -> None:
    """``None`` is the platform itself (beat); anyone else must be an active platform admin."""
    if actor is not None and not (actor.is_platform_admin and actor.has_scope(ADMIN_ALL)):
        raise Forbidden("Platform admin privileges are required.")


def _clean_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed("reason is required.", fields={"reason": ["This field may not be blank."]})
    if len(text) > REASON_MAX:
        raise ValidationFailed(
            f"reason must be at most {REASON_MAX} characters.", fields={"reason": [f"at most {REASON_MAX} characters"]}
        )
    return text


def _not_pending(file_id: str) -> Exception:
    """Why a conditional update changed nothing: gone (404) or already decided (409)."""
    current = StoredFile.objects.filter(pk=file_id).values_list("review_state", flat=True).first()
    if current is None:
        return NotFound()
    if current in (ReviewState.APPROVED, ReviewState.REJECTED):
        return Conflict(f"This object was already {current}.", code="ALREADY_DECIDED", review_state=current)
    return Conflict("This object is not waiting for review.", code="NOT_PENDING", review_state=current)


def _decide(*, actor: Identity | None, file_id: str, approve: bool, reason: str, now: datetime) -> StoredFile:
    user = actor.user if actor else None
    with transaction.atomic():
        # Lock in the order a file's deletion does (Django deletes the dependent rows, task
        # and escalation, before the file), so a decision racing a delete waits, never deadlocks.
        list(Task.objects.select_for_update().filter(file_id=file_id).values_list("pk", flat=True))
        list(ReviewEscalation.objects.select_for_update().filter(file_id=file_id).values_list("pk", flat=True))
        claimed = StoredFile.objects.filter(pk=file_id, review_state=ReviewState.PENDING, status=FileStatus.STAGED)
        if approve:
            changed = claimed.update(
                status=FileStatus.ACTIVE,
                review_state=ReviewState.APPROVED,
                reviewed_at=now,
                reviewed_by=user,
                review_reason="",
            )
        else:
            changed = claimed.update(
                status=FileStatus.FAILED,
                review_state=ReviewState.REJECTED,
                reviewed_at=now,
                reviewed_by=user,
                review_reason=reason,
                error_code=REJECTED_CODE,
                error_message=reason,
            )
        if not changed:
            raise _not_pending(file_id)
        stored = StoredFile.objects.select_related("organization").get(pk=file_id)
        tasks = Task.objects.filter(file_id=file_id)
        if approve:
            tasks.filter(status=TaskStatus.REVIEWING).update(status=TaskStatus.COMPLETED, updated_at=now)
        else:
            # DISCARDED is the tenant's own verdict and stays; anything else failed review.
            tasks.exclude(status=TaskStatus.DISCARDED).update(status=TaskStatus.FAILED, updated_at=now)
            tasks.update(error_code=REJECTED_CODE, error_message=reason, updated_at=now)
        ReviewEscalation.objects.filter(file_id=file_id).delete()
        audit_record(
            org=stored.organization,
            actor=actor,
            action="review.approve" if approve else "review.reject",
            target=stored,
            details={
                "reviewer": user.email if user else "system",
                "reviewer_id": user.pk if user else None,
                "decided_at": now.isoformat(),
                "reason": reason,
                "name": stored.name,
                "sha256": stored.sha256,
            },
        )
        signal = file_activated if approve else file_withdrawn
        send_on_commit(signal, file_id=stored.pk, organization_id=stored.organization_id)
    return stored


def file_approve(*, actor: Identity | None, file: StoredFile | str, now: datetime | None = None) -> StoredFile:
    """Approve a pending file (404 if gone, 409 if decided or not staged)."""
    _check_reviewer(actor)
    file_id = file if isinstance(file, str) else file.pk
    return _decide(actor=actor, file_id=file_id, approve=True, reason="", now=now or timezone.now())


def file_reject(*, actor: Identity | None, file: StoredFile | str, reason: str, now: datetime | None = None) -> StoredFile:
    """Reject a pending file with a reason the tenant will see (400 if blank)."""
    _check_reviewer(actor)
    text = _clean_reason(reason)
    file_id = file if isinstance(file, str) else file.pk
    return _decide(actor=actor, file_id=file_id, approve=False, reason=text, now=now or timezone.now())


@dataclass
class BulkOutcome:
    decided: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # file id -> error code


def files_approve(*, actor: Identity, files: Iterable[StoredFile | str], now: datetime | None = None) -> BulkOutcome:
    """Bulk approve: each file through ``file_approve`` (its own transaction); losers are skipped."""
    _check_reviewer(actor)
    outcome = BulkOutcome()
    for item in files:
        file_id = item if isinstance(item, str) else item.pk
        try:
            file_approve(actor=actor, file=file_id, now=now)
            outcome.decided.append(file_id)
        except (NotFound, Conflict) as exc:
            outcome.skipped[file_id] = exc.code
    return outcome


def files_reject(*, actor: Identity, files: Iterable[StoredFile | str], reason: str, now: datetime | None = None) -> BulkOutcome:
    """Bulk reject with one reason for all."""
    _check_reviewer(actor)
    text = _clean_reason(reason)
    outcome = BulkOutcome()
    for item in files:
        file_id = item if isinstance(item, str) else item.pk
        try:
            file_reject(actor=actor, file=file_id, reason=text, now=now)
            outcome.decided.append(file_id)
        except (NotFound, Conflict) as exc:
            outcome.skipped[file_id] = exc.code
    return outcome


# --- Previews ----------------------------------------------------------------------------


def preview_link(*, actor: Identity, file: StoredFile) -> tuple[str, datetime]:
    """A signed token (``fileconvert.signed``, purpose "preview") and its expiry."""
    _check_reviewer(actor)
    if not file.has_bytes:
        raise Conflict("This object has no content yet.", code="NO_CONTENT")
    token, expires = file_token_make(
        purpose=PREVIEW_PURPOSE, file_id=file.pk, sha256=file.sha256, ttl=int(_conf("REVIEW_PREVIEW_TTL_SECONDS"))
    )
    return token, datetime.fromtimestamp(expires, tz=UTC)


# --- Deadlines and retention (beat) ------------------------------------------------------


def overdue_policy() -> str:
    policy = str(_conf("REVIEW_OVERDUE_POLICY")).strip().lower()
    if policy not in POLICIES:
        raise ValueError(f"REVIEW_OVERDUE_POLICY must be one of {', '.join(POLICIES)}, got {policy!r}")
    return policy


def review_apply_overdue_policy(*, now: datetime | None = None, policy: str | None = None, batch: int = 500) -> int:
    """Apply the platform's policy to pending files past their deadline; returns how many
    files it acted on this run. ``escalate`` records each file once (idempotent) and audits
    it; ``reject`` rejects it with reason "review deadline passed"."""
    moment = now or timezone.now()
    policy = policy or overdue_policy()
    overdue = StoredFile.objects.filter(review_state=ReviewState.PENDING, review_expires_at__lt=moment).order_by(
        "review_expires_at", "pk"
    )
    acted = 0
    if policy == POLICY_REJECT:
        for file_id in list(overdue.values_list("pk", flat=True)[:batch]):
            try:
                file_reject(actor=None, file=file_id, reason=DEADLINE_REASON, now=moment)
                acted += 1
            except (NotFound, Conflict):
                continue  # decided by an admin meanwhile
        return acted
    candidates = list(
        overdue.filter(review_escalation__isnull=True)
        .select_related("organization")
        .only("pk", "name", "organization", "review_expires_at")[:batch]
    )
    for stored in candidates:
        try:
            with transaction.atomic():
                ReviewEscalation.objects.create(file_id=stored.pk, escalated_at=moment, deadline=stored.review_expires_at)
                audit_record(
                    org=stored.organization,
                    actor=None,
                    action="review.escalate",
                    target=stored,
                    details={"deadline": stored.review_expires_at.isoformat(), "name": stored.name},
                )
        except IntegrityError:
            continue  # another run escalated it first
        logger.warning("review overdue, escalated", extra={"file_id": stored.pk, "deadline": stored.review_expires_at})
        acted += 1
    return acted


def review_purge_rejected(*, now: datetime | None = None, batch: int = 200) -> int:
    """Delete rejected files (rows and bytes) once the retention period has passed."""
    from uploads.services import file_delete

    moment = now or timezone.now()
    cutoff = moment - timedelta(days=int(_conf("REVIEW_REJECTED_RETENTION_DAYS")))
    doomed = list(
        StoredFile.objects.filter(review_state=ReviewState.REJECTED, reviewed_at__lte=cutoff)
        .select_related("organization")
        .order_by("reviewed_at", "pk")[:batch]
    )
    purged = 0
    for stored in doomed:
        # A rejected parent takes its derived files with it; skip those already gone.
        if not StoredFile.objects.filter(pk=stored.pk).exists():
            continue
        file_delete(actor=None, file=stored, reason="review_purge")
        purged += 1
    if purged:
        logger.info("rejected files purged", extra={"count": purged})
    return purged
