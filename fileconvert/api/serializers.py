"""Shared serializer plumbing: a cheaper read path for output serializers.

``ReadFastMixin`` gives the same output as DRF's ``Serializer.to_representation`` with
less work per row and per response (``bench/list_depth.py`` measures it against a plain
dict + ``json.dumps`` floor):

- per response: a ``ModelSerializer`` introspects its model and builds every field each
  time it is instantiated; the mixin builds them once per class and deep-copies the
  template (DRF fields deep-copy cheaply from their constructor arguments);
- per row: fields that read one plain attribute (``source`` without dots, DRF's own
  ``get_attribute``) are read with ``getattr`` in a precomputed plan instead of DRF's
  generic attribute walk; everything else (method fields, related fields, dotted sources,
  dict instances, callables, missing attributes) takes DRF's path unchanged;
- per value: ISO-8601 ``DateTimeField``s, when the active time zone is UTC (always, in
  this product), format with ``astimezone(UTC).isoformat()`` instead of DRF's generic
  time-zone enforcement, with the same ``Z`` suffix.

Put it first in the bases of output serializers: ``class FooSerializer(ReadFastMixin,
serializers.ModelSerializer)``.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework.fields import DateTimeField, Field, SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

_PLAIN_GET_ATTRIBUTE = Field.get_attribute


def _iso_utc(value: Any) -> Any:
    if not isinstance(value, datetime.datetime) or value.tzinfo is None:
        raise TypeError  # not the common case: let DRF format it
    text = value.astimezone(datetime.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _converter(field: Field) -> Callable[[Any], Any]:
    """The per-value formatter for a field: a UTC fast path for ISO datetimes, else DRF's."""
    iso = str(getattr(field, "format", api_settings.DATETIME_FORMAT)).lower() == "iso-8601"
    utc = settings.USE_TZ and timezone.get_current_timezone_name() in ("UTC", "Etc/UTC")
    if not (type(field) is DateTimeField and iso and utc and not hasattr(field, "timezone")):
        return field.to_representation
    generic = field.to_representation

    def convert(value: Any) -> Any:
        try:
            return _iso_utc(value)
        except TypeError:
            return generic(value)

    return convert


class ReadFastMixin:
    _fields_template: dict[str, Any]

    def get_fields(self) -> dict[str, Any]:
        cls = type(self)
        template = cls.__dict__.get("_fields_template")
        if template is None:
            template = super().get_fields()  # type: ignore[misc]
            cls._fields_template = template
        return copy.deepcopy(template)

    def _read_plan(self) -> list[tuple[str, str | None, Field, Callable[[Any], Any]]]:
        plan = self.__dict__.get("_plan")
        if plan is None:
            plan = []
            for field in self._readable_fields:  # type: ignore[attr-defined]
                simple = type(field).get_attribute is _PLAIN_GET_ATTRIBUTE and len(field.source_attrs) == 1
                plan.append((field.field_name, field.source_attrs[0] if simple else None, field, _converter(field)))
            self.__dict__["_plan"] = plan
        return plan

    def to_representation(self, instance: Any) -> dict[str, Any]:
        if isinstance(instance, Mapping):
            return super().to_representation(instance)  # type: ignore[misc]
        out: dict[str, Any] = {}
        for name, attr, field, convert in self._read_plan():
            if attr is not None:
                value = getattr(instance, attr, _MISSING)
                if value is _MISSING or callable(value):
                    attr = None  # DRF decides: defaults, SkipField, calling simple callables
            if attr is None:
                try:
                    value = field.get_attribute(instance)
                except SkipField:
                    continue
                if isinstance(value, PKOnlyObject):
                    out[name] = None if value.pk is None else field.to_representation(value)
                    continue
            out[name] = None if value is None else convert(value)
        return out


_MISSING = object()
