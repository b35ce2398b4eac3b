"""Keyset pagination (fileconvert.api.pagination.keyset_page) on real rows."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent, FeatureFlag
from fileconvert.api.pagination import decode_cursor, encode_cursor, keyset_page
from fileconvert.errors import ValidationFailed
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

BASE = timezone.now().replace(microsecond=123456) - timedelta(days=1)


def make_events(org, count: int, *, buckets: int = 4, start: int = 0) -> list[AuditEvent]:
    """Events whose ``created_at`` repeats across ``buckets`` values, so ordering needs the pk tie-break."""
    return [
        AuditEvent.objects.create(
            organization=org,
            actor_label="system",
            action=f"test.{i}",
            created_at=BASE + timedelta(minutes=(i % buckets)),
        )
        for i in range(start, start + count)
    ]


def future_events(org, count: int, tag: str) -> list[AuditEvent]:
    """Rows created "later": ids above every ULID minted today, whatever the clock resolution."""
    return [
        AuditEvent.objects.create(id=f"aud_zzzz{tag}{i:04d}", organization=org, actor_label="system", action=f"late.{i}")
        for i in range(count)
    ]


def walk(queryset, *, ordering: str, limit: int) -> list[list]:
    pages, cursor = [], None
    for _ in range(1000):
        rows, cursor = keyset_page(queryset, ordering=ordering, limit=limit, cursor=cursor)
        pages.append(rows)
        if cursor is None:
            return pages
    raise AssertionError("pagination did not terminate")


def expected_order(rows, field: str, descending: bool) -> list[str]:
    key = (lambda r: r.pk) if field == "pk" else (lambda r: (getattr(r, field), r.pk))
    return [r.pk for r in sorted(rows, key=key, reverse=descending)]


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def other_org():
    return OrganizationFactory()


class TestWalk:
    @pytest.mark.parametrize("ordering", ["-pk", "pk", "-id", "created_at", "-created_at"])
    @pytest.mark.parametrize("limit", [1, 3, 7, 23, 100])
    def test_every_row_once_in_order(self, org, other_org, ordering, limit):
        rows = make_events(org, 23)
        make_events(other_org, 5)  # filtered out by the queryset, never leak in
        queryset = AuditEvent.objects.filter(organization=org)

        pages = walk(queryset, ordering=ordering, limit=limit)

        flat = [r.pk for page in pages for r in page]
        field = ordering.lstrip("-").replace("id", "pk")
        assert flat == expected_order(rows, field, ordering.startswith("-"))
        assert len(set(flat)) == len(flat) == 23
        assert all(len(page) == limit for page in pages[:-1])
        assert 1 <= len(pages[-1]) <= limit
        assert len(pages) == -(-23 // limit)

    def test_exact_multiple_has_no_empty_trailing_page(self, org):
        make_events(org, 6)
        pages = walk(AuditEvent.objects.filter(organization=org), ordering="-pk", limit=3)
        assert [len(p) for p in pages] == [3, 3]

    def test_empty_queryset(self, org):
        assert keyset_page(AuditEvent.objects.filter(organization=org), limit=5, cursor=None) == ([], None)

    def test_queryset_ordering_is_replaced(self, org):
        rows = make_events(org, 5)
        page, _ = keyset_page(
            AuditEvent.objects.filter(organization=org).order_by("action"), ordering="-pk", limit=5, cursor=None
        )
        assert [r.pk for r in page] == expected_order(rows, "pk", True)

    def test_values_querysets_paginate_too(self, org):
        rows = make_events(org, 7)
        queryset = AuditEvent.objects.filter(organization=org).values("id", "created_at")
        seen, cursor = [], None
        while True:
            page, cursor = keyset_page(queryset, ordering="-created_at", limit=2, cursor=cursor)
            seen += [r["id"] for r in page]
            if cursor is None:
                break
        assert seen == expected_order(rows, "created_at", True)

    @pytest.mark.parametrize("ordering", ["name", "-name", "enabled", "-enabled"])
    def test_feature_flags_by_name_and_by_boolean(self, org, ordering):
        flags = [FeatureFlag.objects.create(organization=org, name=f"flag-{i:02d}", enabled=bool(i % 3 == 0)) for i in range(11)]
        pages = walk(FeatureFlag.objects.filter(organization=org), ordering=ordering, limit=4)
        flat = [r.pk for page in pages for r in page]
        assert flat == expected_order(flags, ordering.lstrip("-"), ordering.startswith("-"))


class TestConcurrentInserts:
    def test_newer_rows_do_not_shift_a_newest_first_walk(self, org):
        rows = make_events(org, 10)
        queryset = AuditEvent.objects.filter(organization=org)
        order = expected_order(rows, "pk", True)

        first, cursor = keyset_page(queryset, ordering="-pk", limit=4, cursor=None)
        future_events(org, 5, "a")  # newer ids sort before the cursor: not in later pages
        second, cursor = keyset_page(queryset, ordering="-pk", limit=4, cursor=cursor)
        future_events(org, 5, "b")
        third, cursor = keyset_page(queryset, ordering="-pk", limit=4, cursor=cursor)

        assert [r.pk for r in first + second + third] == order
        assert cursor is None

    def test_rows_inserted_ahead_appear_once_in_ascending_walk(self, org):
        rows = make_events(org, 6)
        queryset = AuditEvent.objects.filter(organization=org)
        first, cursor = keyset_page(queryset, ordering="pk", limit=4, cursor=None)
        later = future_events(org, 3, "a")  # ids are time-ordered: after everything seen
        seen = [r.pk for r in first]
        while cursor:
            page, cursor = keyset_page(queryset, ordering="pk", limit=4, cursor=cursor)
            seen += [r.pk for r in page]
        assert seen == expected_order(rows + later, "pk", False)

    def test_rows_inserted_behind_the_cursor_by_time_show_up_later(self, org):
        rows = make_events(org, 8, buckets=8)
        queryset = AuditEvent.objects.filter(organization=org)
        first, cursor = keyset_page(queryset, ordering="-created_at", limit=3, cursor=None)
        # One row older than everything (belongs to a later page), one newer (already passed).
        old = AuditEvent.objects.create(organization=org, actor_label="s", action="old", created_at=BASE - timedelta(hours=1))
        AuditEvent.objects.create(organization=org, actor_label="s", action="new", created_at=BASE + timedelta(hours=1))
        # Two tied with the cursor row's timestamp: the pk tie-break decides, never twice.
        boundary = first[-1]
        tied_above = AuditEvent.objects.create(
            id=boundary.pk + "z", organization=org, actor_label="s", action="tied", created_at=boundary.created_at
        )
        tied_below = AuditEvent.objects.create(
            id="aud_" + "0" * 26, organization=org, actor_label="s", action="tied", created_at=boundary.created_at
        )
        seen = [r.pk for r in first]
        while cursor:
            page, cursor = keyset_page(queryset, ordering="-created_at", limit=3, cursor=cursor)
            seen += [r.pk for r in page]
        assert len(seen) == len(set(seen))
        assert seen[-1] == old.pk
        assert set(seen) >= {r.pk for r in rows}
        # Descending (created_at, pk): the larger pk sorts before the cursor row (already
        # passed), the smaller right after it.
        assert tied_above.pk not in seen
        assert seen[3] == tied_below.pk
        assert len(seen) == len(rows) + 2


class TestTies:
    @pytest.mark.parametrize("descending", [False, True])
    def test_all_rows_share_the_ordering_value(self, org, descending):
        rows = make_events(org, 9, buckets=1)
        ordering = "-created_at" if descending else "created_at"
        pages = walk(AuditEvent.objects.filter(organization=org), ordering=ordering, limit=2)
        flat = [r.pk for page in pages for r in page]
        assert flat == sorted((r.pk for r in rows), reverse=descending)

    @pytest.mark.parametrize("descending", [False, True])
    def test_page_boundary_inside_a_tie_group(self, org, descending):
        rows = make_events(org, 12, buckets=2)  # two groups of six; pages of five split each group
        ordering = "-created_at" if descending else "created_at"
        pages = walk(AuditEvent.objects.filter(organization=org), ordering=ordering, limit=5)
        assert [len(p) for p in pages] == [5, 5, 2]
        assert [r.pk for page in pages for r in page] == expected_order(rows, "created_at", descending)


class TestCursors:
    def test_round_trip(self):
        assert decode_cursor(encode_cursor(["2024-01-01T00:00:00+00:00", "aud_x"]), 2) == ["2024-01-01T00:00:00+00:00", "aud_x"]

    def test_cursor_is_url_safe_and_unpadded(self, org):
        make_events(org, 3)
        _, cursor = keyset_page(AuditEvent.objects.filter(organization=org), ordering="-created_at", limit=1, cursor=None)
        assert cursor and "=" not in cursor and "+" not in cursor and "/" not in cursor

    @pytest.mark.parametrize(
        "cursor",
        [
            "not a cursor!",
            "%%%",
            base64.urlsafe_b64encode(b"not json").decode(),
            base64.urlsafe_b64encode(b'{"a": 1}').decode(),
            base64.urlsafe_b64encode(b'"aud_x"').decode(),
            base64.urlsafe_b64encode(b"[]").decode(),
            base64.urlsafe_b64encode(b'["a", "b", "c"]').decode(),
            base64.urlsafe_b64encode(b'[{"id": 1}]').decode(),
            base64.urlsafe_b64encode(b"[null]").decode(),
            base64.urlsafe_b64encode(b"[[1]]").decode(),
            base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        ],
    )
    def test_bad_cursor_for_single_field_ordering(self, org, cursor):
        with pytest.raises(ValidationFailed) as info:
            keyset_page(AuditEvent.objects.filter(organization=org), ordering="-pk", limit=5, cursor=cursor)
        assert info.value.code == "VALIDATION_ERROR"
        assert "cursor" in info.value.details["fields"]

    def test_cursor_of_the_wrong_shape_for_this_ordering(self, org):
        make_events(org, 3)
        queryset = AuditEvent.objects.filter(organization=org)
        _, pk_cursor = keyset_page(queryset, ordering="-pk", limit=1, cursor=None)
        _, time_cursor = keyset_page(queryset, ordering="-created_at", limit=1, cursor=None)
        with pytest.raises(ValidationFailed):
            keyset_page(queryset, ordering="-created_at", limit=1, cursor=pk_cursor)
        with pytest.raises(ValidationFailed):
            keyset_page(queryset, ordering="-pk", limit=1, cursor=time_cursor)

    def test_bad_cursor_over_http_is_400(self, owner):
        client = owner.client()
        for path in ("/api/settings", "/api/audit", "/api/api-keys"):
            response = client.get(path, {"cursor": base64.urlsafe_b64encode(json.dumps({"x": 1}).encode()).decode()})
            assert response.status_code == 400, (path, response.content)
            assert response.json()["error"] == "VALIDATION_ERROR"

    @pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5"])
    def test_bad_limit_over_http_is_400(self, owner, limit):
        response = owner.client().get("/api/settings", {"limit": limit})
        assert response.status_code == 400
        assert response.json()["error"] == "VALIDATION_ERROR"

    def test_http_walk_over_the_audit_log(self, owner):
        make_events(owner.org, 7)
        client = owner.client()
        seen, cursor = [], None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            body = client.get("/api/audit", params).json()["data"]
            seen += [item["id"] for item in body["items"]]
            assert body["has_more"] is (body["next_cursor"] is not None)
            cursor = body["next_cursor"]
            if not cursor:
                break
        expected = list(AuditEvent.objects.filter(organization=owner.org).order_by("-pk").values_list("pk", flat=True))
        assert seen == expected
