"""Operations surface: health, readiness, metrics, the OpenAPI document and its checks."""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import assert_error, data_of

pytestmark = pytest.mark.django_db


def request_count(client, **labels: str) -> float:
    text = client.get("/metrics").content.decode()
    for family in text_string_to_metric_families(text):
        if family.name != "fileconvert_http_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


class TestHealth:
    def test_liveness_needs_no_credentials(self, anon):
        assert data_of(anon.get("/api/health")) == {"status": "ok"}

    def test_liveness_ignores_bad_credentials(self, anon):
        assert data_of(anon.get("/api/health", HTTP_X_API_KEY="fck_bogus", HTTP_AUTHORIZATION="Bearer nope")) == {"status": "ok"}

    def test_readiness_checks_database_broker_and_storage(self, anon):
        ready = data_of(anon.get("/api/health/ready"))
        assert ready["status"] == "ready"
        assert set(ready["checks"]) == {"database", "broker", "storage"}
        for name, check in ready["checks"].items():
            assert check["ok"] is True, (name, check)
            assert isinstance(check["ms"], (int, float)) and check["ms"] >= 0

    def test_readiness_is_503_when_storage_is_unreachable(self, anon, tmp_path):
        missing = tmp_path / "not-there"
        storages = {
            **settings.STORAGES,
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(missing)}},
        }
        with override_settings(STORAGES=storages):
            body = assert_error(anon.get("/api/health/ready"), 503, "SERVICE_UNAVAILABLE")
        checks = body["details"]["checks"]
        assert checks["storage"]["ok"] is False and checks["storage"]["error"]
        assert checks["database"]["ok"] is True and checks["broker"]["ok"] is True
        assert str(missing) not in json.dumps(body)  # names the failure, not the internals


class TestMetrics:
    def test_prometheus_text_with_route_label(self, owner, anon):
        client = owner.client()
        before = request_count(anon, method="GET", route="api/auth/me", status="200")
        data_of(client.get("/api/auth/me"))
        data_of(client.get("/api/auth/me"))
        response = anon.get("/metrics")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        assert "# TYPE fileconvert_http_requests_total counter" in response.content.decode()
        assert request_count(anon, method="GET", route="api/auth/me", status="200") == before + 2

    def test_route_label_is_the_pattern_not_the_path(self, owner, anon):
        owner.client().get(f"/api/settings/{owner.org.id}/set_nothere")
        text = anon.get("/metrics").content.decode()
        assert owner.org.id not in text  # ids would explode label cardinality
        assert "set_nothere" not in text

    def test_unmatched_paths_share_one_label(self, anon):
        before = request_count(anon, route="unmatched", status="404")
        anon.get("/api/definitely-not-a-route-1")
        anon.get("/api/definitely-not-a-route-2")
        assert request_count(anon, route="unmatched", status="404") == before + 2
        assert "definitely-not-a-route" not in anon.get("/metrics").content.decode()

    def test_latency_histogram_is_exported(self, anon):
        anon.get("/api/health")
        names = {family.name for family in text_string_to_metric_families(anon.get("/metrics").content.decode())}
        assert "fileconvert_http_request_duration_seconds" in names


@pytest.fixture(scope="module")
def spec(django_db_blocker) -> dict:
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/openapi.json")
    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    return json.loads(response.content)


class TestOpenApi:
    WRAPPED = ["/api/auth/me", "/api/settings", "/api/settings/{org_id}/{id}", "/api/_meta"]

    def test_documented_paths(self, spec):
        assert spec["openapi"].startswith("3.")
        for path in [*self.WRAPPED, "/api/health", "/api/health/ready", "/api/anon/session", "/api/_meta/{resource}"]:
            assert path in spec["paths"], path
        assert "/metrics" not in spec["paths"] and "/openapi.json" not in spec["paths"]

    def test_detail_routes_take_org_and_id(self, spec):
        operation = spec["paths"]["/api/settings/{org_id}/{id}"]
        assert set(operation) >= {"get", "patch", "delete"}
        names = {p["name"] for p in operation["get"].get("parameters", []) + operation.get("parameters", [])}
        assert {"org_id", "id"} <= names

    def test_success_bodies_are_in_the_envelope(self, spec):
        checked = 0
        for path in self.WRAPPED:
            for method, operation in spec["paths"][path].items():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                for code, response in operation["responses"].items():
                    schema = response.get("content", {}).get("application/json", {}).get("schema")
                    if not code.startswith("2") or schema is None:
                        continue
                    assert schema["type"] == "object", (path, method, code)
                    assert set(schema["required"]) == {"data", "request_id", "timestamp"}
                    assert set(schema["properties"]) == {"data", "request_id", "timestamp"}
                    assert schema["properties"]["timestamp"]["format"] == "date-time"
                    checked += 1
        assert checked >= 6

    def test_list_data_is_the_keyset_page(self, spec):
        schema = spec["paths"]["/api/settings"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        page = schema["properties"]["data"]
        if "$ref" in page:
            page = spec["components"]["schemas"][page["$ref"].rsplit("/", 1)[1]]
        assert set(page["properties"]) >= {"items", "next_cursor", "has_more"}
        params = {p["name"] for p in spec["paths"]["/api/settings"]["get"]["parameters"]}
        assert {"limit", "cursor"} <= params

    def test_error_schema_is_shared(self, spec):
        error = spec["components"]["schemas"]["Error"]
        assert set(error["required"]) == {"status", "request_id", "error", "details"}
        response_401 = spec["paths"]["/api/auth/me"]["get"]["responses"]["401"]
        assert response_401["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}

    def test_no_internal_extension_leaks(self, spec):
        assert "x-fileconvert-raw" not in json.dumps(spec)

    def test_security_schemes(self, spec):
        schemes = spec["components"]["securitySchemes"]
        assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
        assert schemes["Bearer"]["scheme"] == "bearer"
        assert spec["paths"]["/api/health"]["get"].get("security") in (None, [], [{}])

    def test_swagger_ui(self, anon):
        response = anon.get("/docs")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")
        html = response.content.decode()
        assert "swagger-ui" in html and "/openapi.json" in html

    def test_spectacular_validates_without_warnings(self, tmp_path):
        out = tmp_path / "openapi.yaml"
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), stdout=io.StringIO())
        assert "openapi:" in out.read_text()


def test_migrations_are_complete():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=io.StringIO())
    assert "No changes detected" in out.getvalue()
