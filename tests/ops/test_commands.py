"""Management commands: the operator's way to bootstrap organizations, users and keys."""

from __future__ import annotations

import io
import json
import re
import stat

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import ApiKey, Membership, Organization, User
from tests.conftest import assert_error, data_of

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def me(key: str):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    return client.get("/api/auth/me")


def make_org(name: str = "Acme") -> str:
    out, _ = run("create_org", name)
    return out.strip()


class TestCreateOrg:
    def test_prints_the_new_org_id(self):
        org_id = make_org("Acme Inc")
        assert re.fullmatch(r"org_[0-9a-z]{26}", org_id)
        org = Organization.objects.get(pk=org_id)
        assert org.name == "Acme Inc" and not org.is_anonymous
        assert org.storage_quota_bytes == settings.FILECONVERT["DEFAULT_STORAGE_QUOTA_BYTES"]

    def test_quota_option(self):
        out, _ = run("create_org", "Small", "--quota-bytes", "1024")
        assert Organization.objects.get(pk=out.strip()).storage_quota_bytes == 1024

    def test_each_run_creates_a_new_org(self):
        assert make_org("Same") != make_org("Same")

    def test_name_is_required(self):
        with pytest.raises(CommandError):
            run("create_org")


class TestCreateUser:
    def test_member_with_role(self):
        org_id = make_org()
        out, _ = run("create_user", "Someone@Example.com", "--org", org_id, "--role", "viewer")
        user = User.objects.get(pk=out.strip())
        assert user.email == "someone@example.com"
        assert not user.is_platform_admin
        assert not user.has_usable_password()
        assert Membership.objects.get(user=user, organization_id=org_id).role == "viewer"

    def test_platform_admin_with_password_can_sign_in(self, anon):
        org_id = make_org()
        out, _ = run(
            "create_user",
            "ops@example.com",
            "--org",
            org_id,
            "--role",
            "owner",
            "--platform-admin",
            "--password",
            "s3cret-pass-123",
        )
        user = User.objects.get(pk=out.strip())
        assert user.is_platform_admin and user.check_password("s3cret-pass-123")
        token = data_of(
            anon.post("/api/auth/token", {"email": "ops@example.com", "password": "s3cret-pass-123"}, format="json"), 201
        )
        assert token["org_id"] == org_id

    def test_existing_user_is_added_to_another_org(self):
        first, second = make_org("One"), make_org("Two")
        run("create_user", "both@example.com", "--org", first, "--role", "member")
        run("create_user", "both@example.com", "--org", second, "--role", "admin")
        assert User.objects.filter(email="both@example.com").count() == 1
        roles = dict(Membership.objects.filter(user__email="both@example.com").values_list("organization_id", "role"))
        assert roles == {first: "member", second: "admin"}

    def test_unknown_org(self):
        with pytest.raises(CommandError, match="org_missing"):
            run("create_user", "x@example.com", "--org", "org_missing", "--role", "member")
        assert not User.objects.filter(email="x@example.com").exists()

    @pytest.mark.parametrize("role", ["superuser", "OWNER", ""])
    def test_bad_role(self, role):
        org_id = make_org()
        with pytest.raises(CommandError):
            run("create_user", "x@example.com", "--org", org_id, "--role", role)
        assert not User.objects.filter(email="x@example.com").exists()

    def test_bad_email(self):
        org_id = make_org()
        with pytest.raises(CommandError):
            run("create_user", "not-an-email", "--org", org_id, "--role", "member")

    def test_role_is_required(self):
        with pytest.raises(CommandError):
            run("create_user", "x@example.com", "--org", make_org())


class TestCreateApiKey:
    def test_key_alone_on_the_last_line_and_it_works(self):
        org_id = make_org()
        run("create_user", "dev@example.com", "--org", org_id, "--role", "admin")
        out, err = run("create_api_key", "--org", org_id, "--user", "DEV@example.com", "--name", "ci")
        key = out.rstrip("\n").splitlines()[-1]
        assert key == key.strip() and " " not in key
        assert key.startswith("fck_")
        assert key not in err  # the key is printed once, on stdout
        identity = data_of(me(key))
        assert identity["organization"]["id"] == org_id
        assert identity["user"]["email"] == "dev@example.com"
        assert identity["role"] == "admin"
        assert ApiKey.objects.get(organization_id=org_id).name == "ci"

    def test_scopes_option_limits_the_key(self):
        org_id = make_org()
        run("create_user", "dev@example.com", "--org", org_id, "--role", "owner")
        out, _ = run("create_api_key", "--org", org_id, "--user", "dev@example.com", "--scopes", "org.read")
        key = out.splitlines()[-1]
        assert data_of(me(key))["scopes"] == ["org.read"]
        response = APIClient().post(
            "/api/settings", {"key": "review.required", "value": False}, format="json", HTTP_X_API_KEY=key
        )
        assert_error(response, 403)

    def test_scopes_beyond_the_role_are_refused(self):
        org_id = make_org()
        run("create_user", "viewer@example.com", "--org", org_id, "--role", "viewer")
        with pytest.raises(CommandError):
            run("create_api_key", "--org", org_id, "--user", "viewer@example.com", "--scopes", "org.manage")
        assert not ApiKey.objects.exists()

    def test_unknown_org_or_user(self):
        org_id = make_org()
        run("create_user", "dev@example.com", "--org", org_id, "--role", "member")
        with pytest.raises(CommandError):
            run("create_api_key", "--org", "org_missing", "--user", "dev@example.com")
        with pytest.raises(CommandError):
            run("create_api_key", "--org", org_id, "--user", "ghost@example.com")
        assert not ApiKey.objects.exists()

    def test_user_of_another_org_is_refused(self):
        mine, theirs = make_org("Mine"), make_org("Theirs")
        run("create_user", "them@example.com", "--org", theirs, "--role", "owner")
        with pytest.raises(CommandError):
            run("create_api_key", "--org", mine, "--user", "them@example.com")
        assert not ApiKey.objects.exists()


class TestDemoSetup:
    @pytest.fixture(autouse=True)
    def data_dir(self, tmp_path):
        with override_settings(DATA_DIR=tmp_path):
            yield tmp_path

    @staticmethod
    def parse(out: str) -> dict[str, str]:
        org = re.search(r"organization : (org_\S+)", out)
        login = re.search(r"admin login  : (\S+) / (\S+)", out)
        key = re.search(r"API key      : (\S+)", out)
        assert org and login and key, out
        return {"org": org.group(1), "email": login.group(1), "password": login.group(2), "key": key.group(1)}

    def test_idempotent(self, data_dir):
        first = self.parse(run("demo_setup")[0])
        second = self.parse(run("demo_setup")[0])
        assert first == second
        assert Organization.objects.filter(name="Demo organization").count() == 1
        assert User.objects.filter(email=first["email"]).count() == 1
        assert ApiKey.objects.count() == 1
        user = User.objects.get(email=first["email"])
        assert user.is_platform_admin and user.check_password(first["password"])
        assert Membership.objects.get(user=user).role == "owner"
        identity = data_of(me(second["key"]))
        assert identity["organization"]["id"] == first["org"]
        saved = data_dir / "demo-credentials.json"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert json.loads(saved.read_text()) == {"org_id": first["org"], "password": first["password"], "api_key": first["key"]}

    def test_port_option_in_the_hints(self):
        out, _ = run("demo_setup", "--port", "9123")
        assert "http://localhost:9123/docs" in out

    def test_revoked_key_is_replaced(self):
        first = self.parse(run("demo_setup")[0])
        ApiKey.objects.update(revoked_at="2000-01-01T00:00:00Z")
        second = self.parse(run("demo_setup")[0])
        assert second["org"] == first["org"] and second["password"] == first["password"]
        assert second["key"] != first["key"]
        data_of(me(second["key"]))

    def test_changed_password_is_reset_to_a_working_one(self):
        first = self.parse(run("demo_setup")[0])
        user = User.objects.get(email=first["email"])
        user.set_password("something-else")
        user.save()
        second = self.parse(run("demo_setup")[0])
        assert second["password"] != first["password"]
        assert User.objects.get(email=first["email"]).check_password(second["password"])
        assert second["key"] == first["key"]

    def test_stale_credentials_file_from_another_database(self, data_dir):
        (data_dir / "demo-credentials.json").write_text(
            json.dumps({"org_id": "org_gone", "password": "old-password", "api_key": "fck_0000_gone"})
        )
        got = self.parse(run("demo_setup")[0])
        assert got["org"] != "org_gone" and got["password"] != "old-password"
        assert data_of(me(got["key"]))["organization"]["id"] == got["org"]
