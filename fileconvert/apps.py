from django.apps import AppConfig


class FileconvertConfig(AppConfig):
    name = "fileconvert"
    verbose_name = "fileconvert platform"

    def ready(self) -> None:
        from fileconvert import checks  # noqa: F401  registers the system checks
        from fileconvert.api import schema  # noqa: F401  registers the OpenAPI auth extensions
