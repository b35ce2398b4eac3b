from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "sharing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from sharing import receivers
        from uploads.signals import file_content_changed, file_visibility_changed, file_withdrawn

        file_withdrawn.connect(receivers.on_file_withdrawn, dispatch_uid="sharing.withdrawn")
        file_content_changed.connect(receivers.on_file_content_changed, dispatch_uid="sharing.content_changed")
        file_visibility_changed.connect(receivers.on_file_visibility_changed, dispatch_uid="sharing.visibility_changed")
