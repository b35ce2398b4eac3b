from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import services
from accounts.models import Organization, User
from fileconvert.errors import AppError


class Command(BaseCommand):
    help = "Issue an API key for a member of an organization; prints the key alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--user", required=True, help="The member's e-mail.")
        parser.add_argument("--scopes", default="", help="Comma-separated; default: everything the user's role allows.")
        parser.add_argument("--name", default="cli")

    def handle(self, *args: Any, **options: Any) -> None:
        org = Organization.objects.filter(pk=options["org"]).first()
        user = User.objects.filter(email=options["user"].strip().lower()).first()
        if org is None or user is None:
            raise CommandError("Unknown organization or user.")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()] or None
        try:
            key, raw = services.api_key_issue_for(org=org, user=user, name=options["name"], scopes=scopes)
        except AppError as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(f"key id {key.id}, scopes {','.join(key.scopes)}")
        self.stdout.write(raw)
