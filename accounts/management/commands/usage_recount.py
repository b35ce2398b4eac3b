from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import Organization, StorageUsage
from fileconvert.usage import storage_usage_recount


class Command(BaseCommand):
    help = (
        "Check every organization's storage usage counter against the sum of its files; "
        "with --fix, set the counters that differ (each under its own row lock)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fix", action="store_true", help="Set the counters that differ to the sum.")
        parser.add_argument("--org", action="append", default=[], help="Only this organization (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        orgs = Organization.objects.order_by("pk")
        if options["org"]:
            orgs = orgs.filter(pk__in=options["org"])
        wrong = 0
        for org_id in orgs.values_list("pk", flat=True).iterator():
            with transaction.atomic():
                # Every counted write of this organization updates its counter row (the triggers),
                # and not every one takes the quota lock (a delete does not): lock the counter row
                # itself, so both reads below come after the writes in flight and before the next.
                # Found: locked; created: ours. Its values are the counter's.
                usage, _ = StorageUsage.objects.select_for_update().get_or_create(organization_id=org_id)
                counted, summed = (usage.bytes, usage.files), storage_usage_recount(org_id)
                if counted == summed:
                    continue
                wrong += 1
                self.stdout.write(
                    f"{org_id}: counter {counted[0]} bytes / {counted[1]} files, files sum {summed[0]} / {summed[1]}"
                )
                if options["fix"]:
                    usage.bytes, usage.files = summed
                    usage.save(update_fields=["bytes", "files"])
        if wrong and not options["fix"]:
            raise CommandError(f"{wrong} organization(s) with a counter that differs from the sum (run with --fix)")
        self.stdout.write(f"{wrong} fixed" if wrong else "every counter matches")
