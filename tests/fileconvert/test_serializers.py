"""ReadFastMixin must produce exactly what DRF's own read path produces, for every output
serializer that uses it, on real rows (None values, method fields, renamed sources)."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from accounts import services
from accounts.api.serializers import (
    ApiKeySerializer,
    AuditEventSerializer,
    FeatureFlagSerializer,
    MemberSerializer,
    SettingSerializer,
)
from accounts.models import ApiKey, AuditEvent, FeatureFlag, Membership, OrgSetting
from fileconvert.api.serializers import ReadFastMixin
from tests.uploads.filebytes import png_bytes, upload_file
from uploads.api.serializers import FileSerializer, TaskSerializer, UploadSerializer
from uploads.models import StoredFile, Task, Upload


def drf_output(serializer_class, instance):
    """The same serializer class, read through DRF's Serializer.to_representation."""
    plain = serializer_class()
    return serializers.Serializer.to_representation(plain, instance)


def fast_output(serializer_class, instance):
    return serializer_class().to_representation(instance)


@pytest.mark.django_db
class TestSameOutputAsDrf:
    @pytest.fixture
    def rows(self, owner, member):
        client = owner.client()
        client.post("/api/settings", {"key": "review.required", "value": False}, format="json")
        client.post("/api/feature-flags", {"name": "beta", "enabled": True}, format="json")
        client.post("/api/api-keys", {"name": "ci", "scopes": ["upload.read"]}, format="json")
        upload_file(client, png_bytes(), "pic.png")
        upload_file(client, b"plain text body", "notes.txt")
        client.post("/upload", {"name": "batch", "files": [self._named(b"a,b\n1,2\n", "t.csv")]}, format="multipart")
        return owner.org

    @staticmethod
    def _named(data: bytes, name: str):
        from django.core.files.uploadedfile import SimpleUploadedFile

        return SimpleUploadedFile(name, data, content_type="application/octet-stream")

    @pytest.mark.parametrize(
        ("serializer_class", "model"),
        [
            (AuditEventSerializer, AuditEvent),
            (SettingSerializer, OrgSetting),
            (FeatureFlagSerializer, FeatureFlag),
            (MemberSerializer, Membership),
            (ApiKeySerializer, ApiKey),
            (FileSerializer, StoredFile),
            (TaskSerializer, Task),
            (UploadSerializer, Upload),
        ],
    )
    def test_every_row_matches(self, rows, serializer_class, model):
        assert issubclass(serializer_class, ReadFastMixin)
        instances = list(model.objects.filter(organization=rows))
        assert instances, f"no {model.__name__} rows to compare"
        for instance in instances:
            assert fast_output(serializer_class, instance) == drf_output(serializer_class, instance)

    def test_nullable_and_method_fields(self, rows):
        stored = StoredFile.objects.filter(organization=rows).first()
        stored.dataset = None
        stored.error_code, stored.error_message = "BROKEN", "it broke"
        assert fast_output(FileSerializer, stored) == drf_output(FileSerializer, stored)
        assert fast_output(FileSerializer, stored)["error"] == {"code": "BROKEN", "message": "it broke"}
        assert fast_output(FileSerializer, stored)["dataset_id"] is None

    def test_audit_event_without_actor(self, org_a):
        services.audit_record(org=org_a, actor=None, action="system.thing", target_type="x", target_id="1")
        event = AuditEvent.objects.get(action="system.thing")
        assert fast_output(AuditEventSerializer, event) == drf_output(AuditEventSerializer, event)

    def test_field_templates_are_not_shared_between_instances(self):
        first, second = AuditEventSerializer(), AuditEventSerializer()
        assert first.fields["action"] is not second.fields["action"]
        assert first.fields["action"].parent is first

    def test_mapping_instances_take_drf_path(self):
        class Echo(ReadFastMixin, serializers.Serializer):
            name = serializers.CharField()
            size = serializers.IntegerField(source="bytes")

        assert Echo().to_representation({"name": "x", "bytes": 3}) == {"name": "x", "size": 3}

    def test_callables_and_missing_attributes_follow_drf(self):
        class Thing:
            def label(self):
                return "called"

        class S(ReadFastMixin, serializers.Serializer):
            label = serializers.CharField()
            absent = serializers.CharField(default="fallback")

        assert S().to_representation(Thing()) == serializers.Serializer.to_representation(S(), Thing())
        assert S().to_representation(Thing())["label"] == "called"

    def test_datetimes_under_another_active_time_zone_match_drf(self, rows):
        from django.utils import timezone

        event = AuditEvent.objects.filter(organization=rows).first()
        with timezone.override("Europe/Paris"):
            fast = fast_output(AuditEventSerializer, event)
            assert fast == drf_output(AuditEventSerializer, event)
            assert fast["created_at"].endswith("+01:00") or fast["created_at"].endswith("+02:00")
        assert fast_output(AuditEventSerializer, event)["created_at"].endswith("Z")
