"""Personas (as in healthchecks' alice/bob/charlie): organization A with an owner, an
admin, a member and a viewer; organization B with its owner (the outsider); and a
platform admin. Each has a real API key issued by the real service."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Membership, Organization, User
from tests.factories import MembershipFactory, OrganizationFactory

PASSWORD = "correct horse battery staple"


@dataclass
class Persona:
    user: User
    org: Organization
    role: str
    key: str

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=self.key)
        return client


def make_persona(org: Organization, role: str, *, platform_admin: bool = False) -> Persona:
    membership: Membership = MembershipFactory(organization=org, role=role, user__is_platform_admin=platform_admin)
    _key, raw = services.api_key_issue_for(org=org, user=membership.user, name=f"{role} key")
    return Persona(user=membership.user, org=org, role=role, key=raw)


@pytest.fixture
def org_a(db) -> Organization:
    return OrganizationFactory(name="Org A")


@pytest.fixture
def org_b(db) -> Organization:
    return OrganizationFactory(name="Org B")


@pytest.fixture
def owner(org_a) -> Persona:
    return make_persona(org_a, "owner")


@pytest.fixture
def admin(org_a) -> Persona:
    return make_persona(org_a, "admin")


@pytest.fixture
def member(org_a) -> Persona:
    return make_persona(org_a, "member")


@pytest.fixture
def viewer(org_a) -> Persona:
    return make_persona(org_a, "viewer")


@pytest.fixture
def outsider(org_b) -> Persona:
    return make_persona(org_b, "owner")


@pytest.fixture
def platform_admin(db) -> Persona:
    return make_persona(OrganizationFactory(name="Platform"), "owner", platform_admin=True)


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The documented error shape, with the request id echoed in the header."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == "error"
    assert body["request_id"] == response["X-Request-ID"]
    assert body["request_id"]
    assert isinstance(body["details"]["message"], str) and body["details"]["message"]
    if code:
        assert body["error"] == code, body
    return body


def data_of(response, status: int = 200):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"data", "request_id", "timestamp"}, body
    assert body["request_id"] == response["X-Request-ID"]
    assert body["timestamp"].endswith("Z")
    return body["data"]


def record_published(monkeypatch, task_name: str) -> list:
    """Messages for ``task_name`` are recorded (their first argument) instead of sent; the
    others go out as usual. The one place the product publishes is ``fileconvert.broker``."""
    from fileconvert import broker

    published: list = []
    real = broker.publish

    def publish(task, *args) -> None:
        if task.name == task_name:
            published.append(args[0])
        else:
            real(task, *args)

    monkeypatch.setattr(broker, "publish", publish)
    return published
