"""``GET /api/_meta`` and ``GET /api/_meta/{resource}``: the discovery layer forms are built from."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.identity import Identity
from fileconvert.api.permissions import identity_of
from fileconvert.api.registry import REGISTRY, Resource, ResourceViewSet, find_resource
from fileconvert.errors import NotFound

_TYPES: list[tuple[type[serializers.Field], str]] = [
    (serializers.BooleanField, "boolean"),
    (serializers.EmailField, "email"),
    (serializers.URLField, "url"),
    (serializers.ChoiceField, "choice"),
    (serializers.DateTimeField, "datetime"),
    (serializers.DateField, "date"),
    (serializers.IntegerField, "integer"),
    (serializers.FloatField, "number"),
    (serializers.DecimalField, "number"),
    (serializers.JSONField, "json"),
    (serializers.DictField, "object"),
    (serializers.ListField, "list"),
    (serializers.ListSerializer, "list"),
    (serializers.FileField, "file"),
    (serializers.CharField, "string"),
    (serializers.Serializer, "object"),
]


def field_type(f: serializers.Field) -> str:
    if isinstance(f, serializers.MultipleChoiceField):
        return "multichoice"
    for cls, name in _TYPES:
        if isinstance(f, cls):
            return name
    return "string"


def describe_field(name: str, f: serializers.Field, *, writable: bool, on_create_only: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "type": field_type(f),
        "label": str(f.label or name.replace("_", " ").capitalize()),
        "required": bool(f.required) and writable,
        "read_only": bool(f.read_only) or not writable,
        "help_text": str(f.help_text or ""),
    }
    if on_create_only:
        entry["create_only"] = True
    if f.write_only:
        entry["write_only"] = True
    choices = getattr(f, "choices", None)
    if choices:
        entry["choices"] = [{"value": k, "label": str(v)} for k, v in choices.items()]
    child = getattr(f, "child", None)
    if child is not None and getattr(child, "choices", None):
        entry["choices"] = [{"value": k, "label": str(v)} for k, v in child.choices.items()]
    for attr in ("max_length", "min_value", "max_value"):
        value = getattr(f, attr, None)
        if value is not None:
            entry[attr] = value
    return entry


def _can(identity: Identity, scope: str | None) -> bool:
    return scope is None or identity.has_scope(scope)


def resource_actions(resource: Resource, identity: Identity) -> list[dict[str, Any]]:
    vs = resource.viewset
    base = resource.path
    detail = f"{base}/{{org_id}}/{{id}}"
    actions = [
        {"name": "list", "method": "GET", "path": base, "scope": vs.read_scope},
        {"name": "create", "method": "POST", "path": base, "scope": vs.create_scope or vs.write_scope},
        {"name": "retrieve", "method": "GET", "path": detail, "scope": vs.read_scope},
        {"name": "update", "method": "PATCH", "path": detail, "scope": vs.write_scope},
        {"name": "delete", "method": "DELETE", "path": detail, "scope": vs.write_scope},
    ]
    for extra in vs.get_extra_actions():
        methods = sorted(m.upper() for m in extra.mapping if m not in ("head", "options"))
        url_path = extra.url_path
        path = f"{detail}/{url_path}" if extra.detail else f"{base}/{url_path}"
        actions.append(
            {
                "name": extra.__name__,
                "method": methods[0] if methods else "POST",
                "path": path,
                "scope": vs.extra_action_scopes.get(extra.__name__),
            }
        )
    allowed = set(vs.http_method_names)
    return [
        {**a, "allowed": _can(identity, a["scope"])}
        for a in actions
        if a["method"].lower() in allowed or a["name"] not in ("list", "create", "retrieve", "update", "delete")
    ]


def resource_schema(resource: Resource, identity: Identity) -> dict[str, Any]:
    vs: type[ResourceViewSet] = resource.viewset
    can_write = _can(identity, vs.write_scope)
    assert vs.serializer_class is not None
    output = vs.serializer_class()
    create = vs.create_serializer_class() if vs.create_serializer_class else output
    update = vs.update_serializer_class() if vs.update_serializer_class else create
    update_fields = {n for n, f in update.fields.items() if not f.read_only}
    create_fields = {n for n, f in create.fields.items() if not f.read_only}
    fields = []
    for name, f in output.fields.items():
        writable = can_write and (name in update_fields or name in create_fields)
        fields.append(
            describe_field(
                name,
                create.fields.get(name, f) if writable else f,
                writable=writable,
                on_create_only=writable and name not in update_fields,
            )
        )
    for name, f in create.fields.items():
        if name not in output.fields:
            fields.append(describe_field(name, f, writable=can_write, on_create_only=name not in update_fields))
    return {
        "name": resource.name,
        "path": resource.path,
        "title": vs.resource_title or resource.name,
        "description": vs.resource_description,
        "role": identity.role,
        "fields": fields,
        "list_columns": vs.list_columns,
        "filters": list(getattr(vs, "filterset_fields", []) or []),
        "actions": resource_actions(resource, identity),
    }


class MetaIndexView(APIView):
    @extend_schema(
        tags=["meta"],
        summary="List every resource and its base path",
        operation_id="meta_index",
        responses=inline_serializer("MetaIndex", {"resources": serializers.ListField(child=serializers.DictField())}),
    )
    def get(self, request: Request) -> Response:
        identity = identity_of(request)
        return Response(
            {
                "resources": [
                    {
                        "name": r.name,
                        "path": r.path,
                        "title": r.viewset.resource_title or r.name,
                        "kind": "CRUD",
                        "readable": _can(identity, r.viewset.read_scope),
                        "writable": _can(identity, r.viewset.write_scope),
                    }
                    for r in REGISTRY.values()
                ]
            }
        )


class MetaResourceView(APIView):
    @extend_schema(
        tags=["meta"],
        operation_id="meta_resource",
        summary="Role-aware field schema, list_columns and actions for one resource",
        responses=inline_serializer(
            "MetaResource", {"name": serializers.CharField(), "fields": serializers.ListField(child=serializers.DictField())}
        ),
    )
    def get(self, request: Request, resource: str) -> Response:
        found = find_resource(resource)
        if found is None:
            raise NotFound(f"No resource named {resource}.")
        return Response(resource_schema(found, identity_of(request)))
