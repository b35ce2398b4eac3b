from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts import services


class Command(BaseCommand):
    help = "Create an organization and print its id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--quota-bytes", type=int, default=None, help="Storage quota (default: DEFAULT_STORAGE_QUOTA_BYTES).")

    def handle(self, *args: Any, **options: Any) -> None:
        org = services.organization_create(actor=None, name=options["name"])
        if options["quota_bytes"] is not None:
            org.storage_quota_bytes = options["quota_bytes"]
            org.save(update_fields=["storage_quota_bytes"])
        self.stdout.write(org.id)
