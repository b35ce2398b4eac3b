"""The three identity modes, and every way a credential can be bad (SECURITY #18, #19)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AccessToken, ApiKey, Organization, User
from tests.conftest import PASSWORD, assert_error, data_of

GATEWAY_KEY = "test-gateway-key-0123456789"


def gateway_headers(org="gw-org-1", user="gw-user-1", role="member", key=GATEWAY_KEY, underscore=False):
    sep = "_" if underscore else "-"
    return {
        f"HTTP_X{sep}GATEWAY{sep}KEY".replace("-", "_"): key,
        "HTTP_X_AUTH_ORG_ID": org,
        "HTTP_X_AUTH_USER_ID": user,
        "HTTP_X_AUTH_ROLE": role,
    }


@pytest.mark.django_db
class TestApiKeys:
    def test_valid_key_resolves_identity(self, owner):
        me = data_of(owner.client().get("/api/auth/me"))
        assert me["auth_mode"] == "api_key"
        assert me["organization"]["id"] == owner.org.id
        assert me["user"]["email"] == owner.user.email
        assert me["role"] == "owner"
        assert "org.manage" in me["scopes"] and "admin:*" not in me["scopes"]

    def test_header_name_is_case_insensitive(self, owner, anon):
        # Django folds header names; the seeds send lower-case x-api-key.
        response = anon.get("/api/auth/me", headers={"x-api-key": owner.key})
        assert data_of(response)["user"]["id"] == owner.user.id

    def test_last_used_at_is_recorded(self, owner):
        owner.client().get("/api/auth/me")
        assert ApiKey.objects.get(user=owner.user).last_used_at is not None

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda k: k[:-1],  # truncated
            lambda k: k + "x",  # extended
            lambda k: k[:-4] + "AAAA",  # wrong secret, right prefix
            lambda k: "fck_000000000000_" + "a" * 43,  # unknown prefix
            lambda k: "garbage",
            lambda k: k.replace("fck_", "fct_"),  # a key presented as a token kind
        ],
    )
    def test_wrong_keys_are_uniform_401(self, owner, anon, mangle):
        body = assert_error(anon.get("/api/auth/me", HTTP_X_API_KEY=mangle(owner.key)), 401, "UNAUTHORIZED")
        assert body["details"]["message"] == "Invalid API key."

    def test_revoked_key_fails_immediately(self, owner):
        client = owner.client()
        data_of(client.get("/api/auth/me"))
        key_id = ApiKey.objects.get(user=owner.user).id
        data_of(client.delete(f"/api/api-keys/{key_id}"))
        assert_error(client.get("/api/auth/me"), 401, "UNAUTHORIZED")

    def test_expired_key_is_401(self, owner):
        ApiKey.objects.filter(user=owner.user).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert_error(owner.client().get("/api/auth/me"), 401, "UNAUTHORIZED")

    def test_key_of_removed_member_is_401(self, owner, member):
        response = owner.client().delete(f"/api/users/{owner.org.id}/{member.user.id}")
        assert response.status_code == 204
        assert_error(member.client().get("/api/auth/me"), 401)

    def test_deactivated_user_key_is_401(self, member):
        User.objects.filter(pk=member.user.pk).update(is_active=False)
        assert_error(member.client().get("/api/auth/me"), 401)

    def test_demoted_user_loses_scopes_at_once(self, owner, admin):
        assert "org.manage" in data_of(admin.client().get("/api/auth/me"))["scopes"]
        owner.client().patch(f"/api/users/{owner.org.id}/{admin.user.id}", {"role": "viewer"}, format="json")
        assert data_of(admin.client().get("/api/auth/me"))["scopes"] == ["org.read", "upload.read"]

    def test_missing_credentials_is_401(self, anon):
        assert_error(anon.get("/api/auth/me"), 401, "UNAUTHORIZED")


@pytest.mark.django_db
class TestBearerTokens:
    def test_anonymous_session_gets_its_own_ephemeral_org(self, anon):
        first = data_of(anon.post("/api/anon/session"), 201)
        second = data_of(anon.post("/api/anon/session"), 201)
        assert first["org_id"] != second["org_id"]
        me = data_of(anon.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {first['token']}"))
        assert me["auth_mode"] == "anonymous"
        assert me["organization"]["is_anonymous"] is True
        assert me["organization"]["expires_at"] is not None
        org = Organization.objects.get(pk=first["org_id"])
        assert org.storage_quota_bytes == settings.FILECONVERT["ANON_STORAGE_QUOTA_BYTES"]
        assert AccessToken.objects.get(organization=org).secret_hash != first["token"]

    def test_anonymous_session_cannot_read_another_session(self, anon):
        one = data_of(anon.post("/api/anon/session"), 201)
        two = data_of(anon.post("/api/anon/session"), 201)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {one['token']}")
        assert_error(client.get(f"/api/settings/{two['org_id']}/set_anything"), 404, "NOT_FOUND")

    def test_expired_anonymous_session_is_401(self, anon):
        token = data_of(anon.post("/api/anon/session"), 201)["token"]
        Organization.objects.filter(is_anonymous=True).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert_error(anon.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}"), 401)

    def test_user_token_sign_in_and_sign_out(self, owner, anon):
        token = data_of(anon.post("/api/auth/token", {"email": owner.user.email, "password": PASSWORD}, format="json"), 201)
        assert token["org_id"] == owner.org.id
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token['token']}")
        me = data_of(client.get("/api/auth/me"))
        assert me["auth_mode"] == "bearer" and me["role"] == "owner"
        assert client.delete("/api/auth/token").status_code == 204
        assert_error(client.get("/api/auth/me"), 401)

    def test_wrong_password_is_401(self, owner, anon):
        assert_error(anon.post("/api/auth/token", {"email": owner.user.email, "password": "nope"}, format="json"), 401)
        assert_error(anon.post("/api/auth/token", {"email": "ghost@example.com", "password": "nope"}, format="json"), 401)

    def test_expired_and_revoked_tokens_are_401(self, owner, anon):
        _t, raw = services.user_token_create(email=owner.user.email, password=PASSWORD)
        AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        assert_error(anon.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {raw}"), 401)
        _t, raw = services.user_token_create(email=owner.user.email, password=PASSWORD)
        AccessToken.objects.filter(prefix=raw.split("_")[1]).update(revoked_at=timezone.now())
        assert_error(anon.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {raw}"), 401)

    @pytest.mark.parametrize("header", ["Bearer ", "Bearer nonsense", "Bearer fct_abc_def", "Basic dXNlcjpwYXNz"])
    def test_bad_authorization_headers(self, anon, header):
        response = anon.get("/api/auth/me", HTTP_AUTHORIZATION=header)
        assert_error(response, 401)


@pytest.mark.django_db
class TestGateway:
    def test_gateway_identity_is_provisioned_on_first_sight(self, anon):
        me = data_of(anon.get("/api/auth/me", **gateway_headers(role="admin")))
        assert me["auth_mode"] == "gateway" and me["role"] == "admin"
        again = data_of(anon.get("/api/auth/me", **gateway_headers(role="admin")))
        assert again["organization"]["id"] == me["organization"]["id"]
        assert again["user"]["id"] == me["user"]["id"]
        assert Organization.objects.filter(gateway_ref="gw-org-1").count() == 1

    def test_gateway_role_is_authoritative(self, anon):
        data_of(anon.get("/api/auth/me", **gateway_headers(role="admin")))
        assert data_of(anon.get("/api/auth/me", **gateway_headers(role="viewer")))["role"] == "viewer"

    def test_identity_headers_without_gateway_key_are_ignored(self, anon):
        headers = gateway_headers()
        del headers["HTTP_X_GATEWAY_KEY"]
        assert_error(anon.get("/api/auth/me", **headers), 401)
        assert not Organization.objects.filter(gateway_ref="gw-org-1").exists()

    def test_wrong_gateway_key_is_401(self, anon):
        assert_error(anon.get("/api/auth/me", **gateway_headers(key="wrong")), 401)
        assert_error(anon.get("/api/auth/me", **gateway_headers(key=GATEWAY_KEY[:-1])), 401)

    def test_invalid_role_is_401(self, anon):
        assert_error(anon.get("/api/auth/me", **gateway_headers(role="superuser")), 401)

    def test_gateway_disabled_without_configured_key(self, anon):
        with override_settings(FILECONVERT={**settings.FILECONVERT, "GATEWAY_KEY": ""}):
            assert_error(anon.get("/api/auth/me", **gateway_headers(key="")), 401)
            assert_error(anon.get("/api/auth/me", **gateway_headers(key="anything")), 401)
