from django.apps import AppConfig
from django.db.models import Q


class UploadsConfig(AppConfig):
    name = "uploads"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from fileconvert.usage import register_storage_model
        from uploads.models import StoredFile

        # Bytes count once they are confirmed in storage (thumbnails are ours, not the tenant's).
        register_storage_model(StoredFile, size_field="size", counted=Q(confirmed_at__isnull=False))
