from __future__ import annotations

from typing import Any

from rest_framework import serializers

from uploads.api.serializers import FileSerializer

MAX_SECTIONS = 20
MAX_KEYS = 100
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 2000


def _check_mapping(value: Any, *, values_are_lists: bool) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise serializers.ValidationError("Expected an object of sections.")
    if len(value) > MAX_SECTIONS:
        raise serializers.ValidationError(f"At most {MAX_SECTIONS} sections.")
    checked: dict[str, Any] = {}
    for section, inner in value.items():
        if not isinstance(section, str) or not section or len(section) > 64:
            raise serializers.ValidationError("Section names are 1-64 characters.")
        if values_are_lists:
            if not isinstance(inner, list) or not all(isinstance(k, str) and 0 < len(k) <= MAX_KEY_CHARS for k in inner):
                raise serializers.ValidationError(f"{section}: expected a list of key names (1-{MAX_KEY_CHARS} characters).")
            if len(inner) > MAX_KEYS:
                raise serializers.ValidationError(f"{section}: at most {MAX_KEYS} keys.")
            checked[section] = list(dict.fromkeys(inner))
            continue
        if not isinstance(inner, dict) or len(inner) > MAX_KEYS:
            raise serializers.ValidationError(f"{section}: expected an object of at most {MAX_KEYS} keys.")
        values: dict[str, str] = {}
        for key, val in inner.items():
            if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS:
                raise serializers.ValidationError(f"{section}: key names are 1-{MAX_KEY_CHARS} characters.")
            if isinstance(val, bool) or not isinstance(val, (str, int, float)):
                raise serializers.ValidationError(f"{section}.{key}: values are strings or numbers.")
            text = str(val)
            if len(text) > MAX_VALUE_CHARS or "\x00" in text:
                raise serializers.ValidationError(f"{section}.{key}: at most {MAX_VALUE_CHARS} characters, no NUL.")
            values[key] = text
        checked[section] = values
    return checked


class SetField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> Any:
        return _check_mapping(super().to_internal_value(data), values_are_lists=False)


class RemoveField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> Any:
        return _check_mapping(super().to_internal_value(data), values_are_lists=True)


class MetadataEditSerializer(serializers.Serializer):
    anonymize = serializers.BooleanField(
        default=False, help_text="Remove GPS, author/creator, serials, software, comments, history."
    )
    strip_all = serializers.BooleanField(
        default=False, help_text="Remove every metadata container (the ICC colour profile stays)."
    )
    set = SetField(required=False, default=dict, help_text='{section: {key: value}}, e.g. {"exif": {"Artist": "Ann"}}.')
    remove = RemoveField(required=False, default=dict, help_text='{section: [key, …]}; "*" removes the whole section.')
    as_copy = serializers.BooleanField(default=False, help_text="Write a new file (parent = this one) instead of a new version.")


class ContainerSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=["ok", "error"])
    error = serializers.DictField(required=False, help_text="{code, message} when status is error.")


class MetadataSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="Format family detected from the bytes.")
    containers = ContainerSerializer(many=True)
    common = serializers.DictField(
        help_text="title, author, created, modified, camera_make, camera_model, software, gps {lat, lon}, "
        "width, height, duration, pages."
    )
    sections = serializers.DictField(
        help_text="Every container's values, by section (exif, gps, xmp, iptc, icc, png_text, id3…)."
    )
    editable = serializers.DictField(help_text="{sections: {section: {set, remove}}, strip_all, anonymize}.")


class ChangeSerializer(serializers.Serializer):
    section = serializers.CharField()
    key = serializers.CharField()
    action = serializers.ChoiceField(choices=["set", "removed"])
    value = serializers.CharField(required=False)
    reason = serializers.CharField(required=False)


class SkipSerializer(serializers.Serializer):
    section = serializers.CharField()
    key = serializers.CharField()
    reason = serializers.CharField()


class MetadataEditResultSerializer(serializers.Serializer):
    file = FileSerializer()
    as_copy = serializers.BooleanField()
    version = serializers.IntegerField(allow_null=True, help_text="The new version number; null when nothing changed.")
    edit_id = serializers.CharField(allow_null=True)
    changed = ChangeSerializer(many=True)
    skipped = SkipSerializer(many=True, help_text="What could not be changed, key by key, and why.")
