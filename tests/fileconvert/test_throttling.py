"""Rate limits: the documented 429, and buckets that X-Forwarded-For cannot multiply."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from tests.conftest import PASSWORD, assert_error, data_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clean_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@contextmanager
def rates(num_proxies: int = 0, **overrides: str) -> Iterator[None]:
    generous = {"identity": "100000/min", "anon": "100000/min", "credentials": "100000/min"}
    config = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**generous, **overrides},
        "NUM_PROXIES": num_proxies,
    }
    with override_settings(REST_FRAMEWORK=config):
        yield


def mint(client: APIClient, **extra):
    return client.post("/api/anon/session", **extra)


def assert_throttled(response) -> int:
    body = assert_error(response, 429, "RATE_LIMITED")
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    assert body["details"]["retry_after"] >= 1
    return retry_after


class TestCredentialThrottle:
    def test_fourth_session_in_a_minute_is_429(self, anon):
        with rates(credentials="3/min"):
            for _ in range(3):
                data_of(mint(anon), 201)
            assert_throttled(mint(anon))
            assert_throttled(mint(anon))

    def test_sign_in_shares_the_credentials_bucket(self, owner, anon):
        with rates(credentials="3/min"):
            for _ in range(2):
                data_of(mint(anon), 201)
            data_of(anon.post("/api/auth/token", {"email": owner.user.email, "password": PASSWORD}, format="json"), 201)
            response = anon.post("/api/auth/token", {"email": owner.user.email, "password": PASSWORD}, format="json")
            assert_throttled(response)

    def test_wrong_passwords_count_too(self, owner, anon):
        with rates(credentials="3/min"):
            for _ in range(3):
                assert_error(anon.post("/api/auth/token", {"email": owner.user.email, "password": "x"}, format="json"), 401)
            response = anon.post("/api/auth/token", {"email": owner.user.email, "password": PASSWORD}, format="json")
            assert_throttled(response)

    def test_limit_is_per_client_address(self, anon):
        with rates(credentials="2/min"):
            for _ in range(2):
                data_of(mint(anon, REMOTE_ADDR="10.0.0.1"), 201)
            assert_throttled(mint(anon, REMOTE_ADDR="10.0.0.1"))
            data_of(mint(anon, REMOTE_ADDR="10.0.0.2"), 201)

    def test_generous_default_rates_do_not_throttle(self, anon):
        for _ in range(5):
            data_of(mint(anon), 201)


class TestForwardedFor:
    def test_rotating_xff_does_not_dodge_without_trusted_proxies(self, anon):
        with rates(num_proxies=0, credentials="3/min"):
            for i in range(3):
                data_of(mint(anon, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}"), 201)
            assert_throttled(mint(anon, HTTP_X_FORWARDED_FOR="203.0.113.99"))
            assert_throttled(mint(anon, HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.100"))
            assert_throttled(mint(anon))

    def test_one_trusted_proxy_keys_on_the_last_hop(self, anon):
        # Behind one proxy every request comes from the proxy's address; the proxy appends
        # the real client as the last hop, anything before it is client-supplied.
        proxy = {"REMOTE_ADDR": "10.0.0.254"}
        with rates(num_proxies=1, credentials="3/min"):
            for i in range(3):
                data_of(mint(anon, HTTP_X_FORWARDED_FOR=f"1.2.3.{i}, 198.51.100.7", **proxy), 201)
            # A spoofed first hop changes nothing: same real client.
            assert_throttled(mint(anon, HTTP_X_FORWARDED_FOR="9.9.9.9, 198.51.100.7", **proxy))
            assert_throttled(mint(anon, HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy))
            # Another real client behind the same proxy has its own bucket.
            data_of(mint(anon, HTTP_X_FORWARDED_FOR="1.2.3.0, 198.51.100.8", **proxy), 201)

    def test_audit_records_the_trusted_client_address(self, owner):
        from accounts.models import AuditEvent

        client = owner.client()
        with rates(num_proxies=1):
            response = client.post(
                "/api/settings",
                {"key": "files.retention_days", "value": 7},
                format="json",
                HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.9",
                REMOTE_ADDR="10.0.0.254",
            )
            data_of(response, 201)
        with rates(num_proxies=0):
            data_of(
                client.patch(
                    f"/api/settings/{owner.org.id}/{response.json()['data']['id']}",
                    {"value": 8},
                    format="json",
                    HTTP_X_FORWARDED_FOR="6.6.6.6",
                    REMOTE_ADDR="10.0.0.254",
                )
            )
        ips = list(
            AuditEvent.objects.filter(organization=owner.org, action__startswith="setting.")
            .order_by("pk")
            .values_list("ip", flat=True)
        )
        assert ips == ["198.51.100.9", "10.0.0.254"]


class TestAnonymousAndIdentityThrottles:
    def test_anonymous_callers_are_limited(self, anon):
        # DELETE /api/auth/token is open to anonymous callers (it answers 401 after throttling).
        with rates(anon="3/min"):
            for _ in range(3):
                assert_error(anon.delete("/api/auth/token"), 401)
            assert_throttled(anon.delete("/api/auth/token"))
            assert_throttled(anon.delete("/api/auth/token", HTTP_X_FORWARDED_FOR="203.0.113.5"))

    def test_identity_bucket_is_per_credential(self, owner, member):
        with rates(identity="3/min"):
            client = owner.client()
            for _ in range(3):
                data_of(client.get("/api/auth/me"))
            assert_throttled(client.get("/api/auth/me"))
            assert_throttled(client.get("/api/settings", HTTP_X_FORWARDED_FOR="203.0.113.5", REMOTE_ADDR="10.9.9.9"))
            data_of(member.client().get("/api/auth/me"))

    def test_authenticated_callers_skip_the_anonymous_bucket(self, owner):
        with rates(anon="1/min"):
            client = owner.client()
            for _ in range(4):
                data_of(client.get("/api/auth/me"))

    def test_health_is_never_throttled(self, anon):
        with rates(anon="1/min", identity="1/min", credentials="1/min"):
            for _ in range(4):
                assert anon.get("/api/health").status_code == 200
