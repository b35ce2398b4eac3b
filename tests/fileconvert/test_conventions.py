"""The API-wide conventions: the success envelope, the error shape on every failure path,
and the request id carried by every response."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.utils.dateparse import parse_datetime

from tests.conftest import PASSWORD, assert_error, data_of
from tests.fileconvert.crash_urls import SECRET_DETAIL

GENERATED_ID = re.compile(r"^req_[0-9a-hjkmnp-tv-z]{26}$")


@pytest.mark.django_db
class TestSuccessEnvelope:
    def test_me_is_wrapped(self, owner):
        response = owner.client().get("/api/auth/me")
        me = data_of(response)
        assert me["organization"]["id"] == owner.org.id
        assert GENERATED_ID.match(response["X-Request-ID"])
        assert parse_datetime(response.json()["timestamp"].replace("Z", "+00:00")) is not None

    def test_list_is_wrapped_around_the_page(self, owner):
        page = data_of(owner.client().get("/api/settings"))
        assert set(page) == {"items", "next_cursor", "has_more"}
        assert page["has_more"] is False and page["next_cursor"] is None

    def test_create_is_wrapped_with_201(self, owner):
        created = data_of(
            owner.client().post("/api/settings", {"key": "files.retention_days", "value": 30}, format="json"),
            201,
        )
        assert created["key"] == "files.retention_days" and created["value"] == 30

    def test_health_and_meta_are_wrapped(self, owner, anon):
        assert data_of(anon.get("/api/health")) == {"status": "ok"}
        meta = data_of(owner.client().get("/api/_meta"))
        assert meta

    def test_no_content_is_an_empty_204(self, owner, anon):
        token = data_of(anon.post("/api/auth/token", {"email": owner.user.email, "password": PASSWORD}, format="json"), 201)
        response = anon.delete("/api/auth/token", HTTP_AUTHORIZATION=f"Bearer {token['token']}")
        assert response.status_code == 204
        assert response.content == b""
        assert GENERATED_ID.match(response["X-Request-ID"])

    @pytest.mark.parametrize(
        ("path", "payload"),
        [("/api/settings", {"key": "review.required", "value": False}), ("/api/feature-flags", {"name": "beta-ui"})],
    )
    def test_resource_delete_is_an_empty_204(self, owner, path, payload):
        client = owner.client()
        created = data_of(client.post(path, payload, format="json"), 201)
        response = client.delete(f"{path}/{owner.org.id}/{created['id']}")
        assert response.status_code == 204, response.content
        assert response.content == b""
        assert client.get(f"{path}/{owner.org.id}/{created['id']}").status_code == 404


@pytest.mark.django_db
class TestErrorShape:
    @pytest.mark.parametrize("path", ["/api/nope", "/api/settings/x/y/z", "/api/auth/me/", "/nope"])
    def test_unknown_paths_are_json_404(self, anon, path):
        response = anon.get(path, HTTP_ACCEPT="text/html")
        assert response["Content-Type"].startswith("application/json")
        assert b"<html" not in response.content.lower()
        assert_error(response, 404, "NOT_FOUND")

    def test_unknown_object_is_404(self, owner):
        assert_error(owner.client().get(f"/api/settings/{owner.org.id}/set_missing"), 404, "NOT_FOUND")

    @pytest.mark.parametrize(
        ("method", "path"),
        [("put", "/api/auth/me"), ("delete", "/api/health"), ("put", "/api/settings"), ("post", "/api/_meta")],
    )
    def test_method_not_allowed(self, owner, method, path):
        response = getattr(owner.client(), method)(path)
        body = assert_error(response, 405, "METHOD_NOT_ALLOWED")
        assert method.upper() in body["details"]["message"]

    def test_unauthenticated_is_401(self, anon):
        assert_error(anon.get("/api/settings"), 401, "UNAUTHORIZED")

    @pytest.mark.parametrize("body", ['{"key": "review.required", "value": tru', "[1, 2", "\x00\xff", '{"a": 1}}'])
    def test_malformed_json_is_400(self, owner, body):
        response = owner.client().post("/api/settings", body, content_type="application/json")
        assert_error(response, 400, "MALFORMED_REQUEST")

    def test_invalid_field_is_validation_error(self, owner):
        response = owner.client().post("/api/settings", {"key": "files.retention_days", "value": -1}, format="json")
        assert_error(response, 400, "VALIDATION_ERROR")

    def test_too_many_multipart_fields_is_400(self, owner):
        fields = {f"f{i}": "x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
        response = owner.client().post("/api/settings", fields, format="multipart")
        body = assert_error(response, 400, "MALFORMED_REQUEST")
        assert "Traceback" not in body["details"]["message"]

    def test_too_many_urlencoded_fields_is_400(self, owner):
        body = "&".join(f"f{i}=x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
        response = owner.client().post("/api/settings", body, content_type="application/x-www-form-urlencoded")
        assert_error(response, 400, "MALFORMED_REQUEST")

    def test_multipart_under_the_limit_is_parsed(self, owner):
        response = owner.client().post("/api/settings", {"key": "files.default_visibility", "value": '"org"'}, format="multipart")
        # The form value is JSON text; a 201 proves the body was parsed, not rejected.
        assert data_of(response, 201)["value"] == "org"


@pytest.mark.urls("tests.fileconvert.crash_urls")
class TestUnhandledErrors:
    def test_runtime_error_in_drf_view_is_500_json_without_traceback(self, anon):
        response = anon.get("/api/_test/crash")
        assert response["Content-Type"].startswith("application/json")
        body = assert_error(response, 500, "INTERNAL_ERROR")
        assert body["details"] == {"message": "An internal error occurred."}
        for leak in (b"Traceback", b"RuntimeError", SECRET_DETAIL.encode()):
            assert leak not in response.content

    def test_database_down_is_503_with_retry_after(self, anon):
        response = anon.get("/api/_test/db-down")
        assert_error(response, 503, "SERVICE_UNAVAILABLE")
        assert int(response["Retry-After"]) >= 1
        assert SECRET_DETAIL.encode() not in response.content

    def test_runtime_error_in_plain_django_view_is_500_json(self, anon):
        response = anon.get("/api/_test/plain-crash")
        assert_error(response, 500, "INTERNAL_ERROR")
        assert SECRET_DETAIL.encode() not in response.content
        assert b"Traceback" not in response.content

    def test_product_routes_still_served(self, anon):
        assert data_of(anon.get("/api/health")) == {"status": "ok"}


@pytest.mark.django_db
class TestRequestId:
    @pytest.mark.parametrize("path", ["/api/health", "/api/auth/me", "/api/nope", "/metrics", "/docs", "/openapi.json"])
    def test_every_response_has_one(self, anon, path):
        response = anon.get(path)
        assert GENERATED_ID.match(response["X-Request-ID"]), (path, response.status_code)

    def test_ids_are_unique_per_request(self, anon):
        ids = {anon.get("/api/health")["X-Request-ID"] for _ in range(5)}
        assert len(ids) == 5

    @pytest.mark.parametrize("incoming", ["abc-123_DEF.456:789", "0123456789abcdef0123456789abcdef", "x" * 128])
    def test_well_formed_incoming_id_is_echoed(self, anon, incoming):
        response = anon.get("/api/health", HTTP_X_REQUEST_ID=incoming)
        assert response["X-Request-ID"] == incoming
        assert response.json()["request_id"] == incoming

    def test_incoming_id_is_echoed_in_errors_too(self, anon):
        response = anon.get("/api/auth/me", HTTP_X_REQUEST_ID="trace-0001-abcd")
        assert assert_error(response, 401)["request_id"] == "trace-0001-abcd"

    @pytest.mark.parametrize(
        "hostile",
        [
            "has spaces in it",
            "line-one\nX-Injected: yes",
            "line-one\r\nline-two",
            "a" * 500,
            "x" * 129,
            "short",
            "<script>alert(1)</script>",
            "req_ok\x00nul",
            "ünïcode-request-id",
        ],
    )
    def test_hostile_incoming_id_is_replaced(self, anon, hostile):
        response = anon.get("/api/health", HTTP_X_REQUEST_ID=hostile)
        assert GENERATED_ID.match(response["X-Request-ID"]), response["X-Request-ID"]
        assert response.json()["request_id"] == response["X-Request-ID"]
        assert "X-Injected" not in response
