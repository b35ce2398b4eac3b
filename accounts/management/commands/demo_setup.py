"""Idempotent demo data for ``make run``: an organization, a platform admin, an API key.

The admin password and the key are kept in ``$FILECONVERT_DATA_DIR/demo-credentials.json``
(mode 0600) so a second run prints the same working login instead of new ones.
"""

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts import services
from accounts.models import Membership, Organization, User

DEMO_EMAIL = "admin@example.com"


class Command(BaseCommand):
    help = "Create (once) and print the demo organization, admin login and API key."

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(settings.DATA_DIR) / "demo-credentials.json"
        saved: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        org = Organization.objects.filter(pk=saved.get("org_id")).first()
        if org is None:
            org = services.organization_create(actor=None, name="Demo organization")
        user = User.objects.filter(email=DEMO_EMAIL).first()
        password = saved.get("password")
        if user is None or not password or not user.check_password(password):
            password = secrets.token_urlsafe(12)
            if user is None:
                services.user_create(
                    actor=None, org=org, email=DEMO_EMAIL, role="owner", password=password, is_platform_admin=True
                )
                user = User.objects.get(email=DEMO_EMAIL)
            else:
                user.set_password(password)
                user.is_platform_admin = True
                user.save(update_fields=["password", "is_platform_admin"])
        Membership.objects.get_or_create(organization=org, user=user, defaults={"role": "owner"})
        raw = saved.get("api_key", "")
        try:
            identity = services.api_key_authenticate(raw=raw) if raw else None
        except Exception:  # noqa: BLE001 - revoked or from an older database: issue a new one
            identity = None
        if identity is None or identity.org.pk != org.pk:
            _key, raw = services.api_key_issue_for(org=org, user=user, name="demo")
        path.write_text(json.dumps({"org_id": org.id, "password": password, "api_key": raw}))
        path.chmod(0o600)
        port = options.get("port") or "8000"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "fileconvert demo is ready",
                    f"  organization : {org.id}",
                    f"  admin login  : {DEMO_EMAIL} / {password}   -> http://localhost:{port}/admin/",
                    f"  API key      : {raw}",
                    f"  try          : curl -H 'X-API-Key: {raw}' http://localhost:{port}/api/auth/me",
                    f"  API docs     : http://localhost:{port}/docs",
                    "",
                ]
            )
        )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", default=None)
