from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from fileconvert.ids import ID_MAX_LENGTH, IdFactory


class Dataset(models.Model):
    """A named group of files in an organization ("project" in the batch API)."""

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("dset"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="dataset_unique_name")]
        indexes = [models.Index(fields=["organization", "-id"], name="dataset_org_idx")]

    def __str__(self) -> str:
        return self.name


class Upload(models.Model):
    """One submission of one or more files (a batch); its status derives from its tasks."""

    SOURCE_BATCH = "batch"
    SOURCE_PRESIGNED = "presigned"
    SOURCE_STREAM = "stream"
    SOURCE_API = "api"
    SOURCE_CHOICES = [(s, s) for s in (SOURCE_BATCH, SOURCE_PRESIGNED, SOURCE_STREAM, SOURCE_API)]

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("upl"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="uploads")
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="uploads")
    name = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=16, choices=SOURCE_CHOICES)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [models.Index(fields=["organization", "-id"], name="upload_org_idx")]

    def __str__(self) -> str:
        return self.name or self.id


class FileStatus(models.TextChoices):
    PENDING = "pending", "Awaiting bytes"
    UPLOADING = "uploading", "Receiving bytes"
    PROCESSING = "processing", "Processing"
    STAGED = "staged", "Staged for review"
    ACTIVE = "active", "Active"
    FAILED = "failed", "Failed"


class ReviewState(models.TextChoices):
    NOT_REQUIRED = "not_required", "Not required"
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class Visibility(models.TextChoices):
    PRIVATE = "private", "Private"
    ORG = "org", "Organization"
    PUBLIC = "public", "Public"
    RESTRICTED = "restricted", "Restricted"


class StoredFile(models.Model):
    """A file and its bytes in storage. ``storage_key`` is ours; ``name`` is for display only."""

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("fil"), editable=False)
    # Foreign keys are indexed in Meta.indexes (decision 0014); the organization by file_org_idx.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="files", db_index=False)
    upload = models.ForeignKey(Upload, null=True, blank=True, on_delete=models.SET_NULL, related_name="files", db_index=False)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="files", db_index=False)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children", db_index=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    name = models.CharField(max_length=255, help_text="Sanitised original name, for display.")
    storage_key = models.CharField(max_length=600, unique=True, editable=False)
    size = models.BigIntegerField(null=True, blank=True)
    expected_size = models.BigIntegerField(null=True, blank=True, help_text="Size the client announced, if any.")
    sha256 = models.CharField(max_length=64, blank=True)
    content_type = models.CharField(max_length=200, blank=True, help_text="Detected from the bytes.")
    claimed_content_type = models.CharField(max_length=200, blank=True, help_text="What the client said; never trusted.")
    kind = models.CharField(max_length=32, blank=True, help_text="Format family detected from the bytes (png, pdf, eml…).")
    status = models.CharField(max_length=16, choices=FileStatus.choices, default=FileStatus.PENDING)
    review_state = models.CharField(max_length=16, choices=ReviewState.choices, default=ReviewState.NOT_REQUIRED)
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE)
    metadata = models.JSONField(default=dict, blank=True, help_text="Summary extracted after upload.")
    thumbnail_key = models.CharField(max_length=600, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=1000, blank=True)
    process_attempts = models.PositiveSmallIntegerField(default=0)
    process_enqueued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    confirmed_at = models.DateTimeField(null=True, blank=True, help_text="When the bytes were verified in storage.")
    expires_at = models.DateTimeField(null=True, blank=True)
    # Platform review (review app): set when the file is staged, decided by a platform admin.
    review_expires_at = models.DateTimeField(null=True, blank=True, help_text="Review deadline (staged files).")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    review_reason = models.CharField(max_length=1000, blank=True, help_text="Why the file was rejected.")

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-id"], name="file_org_idx"),
            models.Index(fields=["organization", "status", "-id"], name="file_org_status_idx"),
            models.Index(fields=["expires_at"], name="file_expiry_idx", condition=Q(expires_at__isnull=False)),
            # Files not active, the few: the processing sweeper's, the admin's status filter
            # across organizations. An active file leaves it (decision 0014).
            models.Index(fields=["status", "process_enqueued_at"], name="file_not_active_idx", condition=~Q(status="active")),
            # Lookups by checksum (the review console's search, duplicate detection).
            models.Index(fields=["sha256"], name="file_sha256_idx"),
            # The review queue: pending files, oldest deadline first.
            models.Index(fields=["review_expires_at", "id"], name="file_review_queue_idx", condition=Q(review_state="pending")),
            models.Index(fields=["upload"], name="file_upload_idx"),
            models.Index(fields=["dataset"], name="file_dataset_idx"),
            models.Index(fields=["parent"], name="file_parent_idx"),
            models.Index(fields=["uploaded_by"], name="file_uploaded_by_idx"),
            models.Index(fields=["reviewed_by"], name="file_reviewed_by_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def has_bytes(self) -> bool:
        return self.confirmed_at is not None


class TaskStatus(models.TextChoices):
    PROCESSING = "PROCESSING", "Processing"
    REVIEWING = "REVIEWING", "Reviewing"
    COMPLETED = "COMPLETED", "Completed"
    FAILED = "FAILED", "Failed"
    DISCARDED = "DISCARDED", "Discarded"


class Task(models.Model):
    """The processing of one file inside an upload."""

    KIND_FILE = "file"
    KIND_EMAIL_BODY = "email_body"
    KIND_ATTACHMENT = "attachment"

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("tsk"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="tasks")
    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="tasks")
    file = models.OneToOneField(StoredFile, on_delete=models.CASCADE, related_name="task")
    kind = models.CharField(max_length=16, default=KIND_FILE)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.PROCESSING)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-id"], name="task_org_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} {self.status}"
