from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import services
from accounts.models import Organization
from accounts.scopes import ROLES
from fileconvert.errors import AppError


class Command(BaseCommand):
    help = "Create a user (or add an existing one) in an organization with a role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--org", required=True, help="Organization id (org_…).")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--platform-admin", action="store_true", help="Give access to the Django admin and review API.")
        parser.add_argument("--password", default=None, help="Lets the user sign in (admin, bearer tokens).")

    def handle(self, *args: Any, **options: Any) -> None:
        org = Organization.objects.filter(pk=options["org"]).first()
        if org is None:
            raise CommandError(f"No organization {options['org']}.")
        try:
            membership = services.user_create(
                actor=None,
                org=org,
                email=options["email"],
                role=options["role"],
                password=options["password"],
                is_platform_admin=options["platform_admin"],
            )
        except AppError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(membership.user.id)
