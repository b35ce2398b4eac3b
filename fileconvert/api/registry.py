"""The resource registry behind auto-CRUD and ``/api/_meta``.

Declaring a resource once (a ``ResourceViewSet`` subclass passed to ``register``)
yields ``GET|POST P``, ``GET|PATCH|DELETE P/{org_id}/{id}``, its suffix actions and
its role-aware schema in ``/api/_meta/{resource}``. Every queryset is filtered to
the caller's organization here, so a resource cannot forget to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.db.models import Model, QuerySet
from django.urls import URLPattern
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from accounts.identity import Identity
from fileconvert.api.pagination import KeysetPagination
from fileconvert.api.permissions import identity_of
from fileconvert.errors import NotFound

ORG_PARAM = OpenApiParameter("org_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="Organization id.")
ID_PARAM = OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH, description="Resource id.")


class ResourceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Base of every registered resource. Subclasses set the class attributes and
    implement ``perform_create_service`` / ``perform_update_service`` /
    ``perform_destroy_service`` by calling their app's services."""

    resource_name: ClassVar[str]
    resource_path: ClassVar[str]
    resource_title: ClassVar[str] = ""
    resource_description: ClassVar[str] = ""
    list_columns: ClassVar[list[str]] = []
    read_scope: ClassVar[str | None] = None
    write_scope: ClassVar[str | None] = None
    create_scope: ClassVar[str | None] = None  # when creating needs another scope than editing
    org_field: ClassVar[str] = "organization"
    list_ordering: ClassVar[str] = "-pk"
    lookup_field = "pk"
    create_serializer_class: ClassVar[type[serializers.Serializer] | None] = None
    update_serializer_class: ClassVar[type[serializers.Serializer] | None] = None
    pagination_class = KeysetPagination
    filter_backends = [DjangoFilterBackend]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    # Suffix actions declared with @action; listed in _meta with the scope each needs.
    extra_action_scopes: ClassVar[dict[str, str]] = {}

    @property
    def required_scopes(self) -> dict[str, str]:
        scopes: dict[str, str] = {}
        if self.read_scope:
            scopes.update({"list": self.read_scope, "retrieve": self.read_scope})
        if self.write_scope:
            scopes.update({"partial_update": self.write_scope, "destroy": self.write_scope})
        if self.create_scope or self.write_scope:
            scopes["create"] = self.create_scope or self.write_scope  # type: ignore[assignment]
        scopes.update(self.extra_action_scopes)
        return scopes

    @property
    def identity(self) -> Identity:
        return identity_of(self.request)

    # --- querysets: tenant-scoped at the root ---
    def get_base_queryset(self) -> QuerySet[Any]:
        assert self.queryset is not None
        return self.queryset.all()

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):
            return self.get_base_queryset().none()
        return self.get_base_queryset().filter(**{self.org_field: self.identity.org})

    def get_object(self) -> Any:
        # Another organization's id in the path is indistinguishable from a missing one.
        if self.kwargs.get("org_id") != self.identity.org.pk:
            raise NotFound()
        obj = self.get_queryset().filter(**{self.lookup_field: self.kwargs["pk"]}).first()
        if obj is None:
            raise NotFound()
        self.check_object_permissions(self.request, obj)
        return obj

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        if self.action == "create" and self.create_serializer_class:
            return self.create_serializer_class
        if self.action == "partial_update" and self.update_serializer_class:
            return self.update_serializer_class
        assert self.serializer_class is not None
        return self.serializer_class

    def output(self, instance: Any, status_code: int = status.HTTP_200_OK) -> Response:
        assert self.serializer_class is not None
        return Response(self.serializer_class(instance, context=self.get_serializer_context()).data, status=status_code)

    # --- writes: input serializer -> service -> output serializer ---
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self.perform_create_service(serializer.validated_data)
        return self.output(instance, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        return self.output(self.perform_update_service(instance, serializer.validated_data))

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.partial_update(request, *args, **kwargs)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.perform_destroy_service(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def perform_create_service(self, data: dict[str, Any]) -> Model:
        raise NotImplementedError

    def perform_update_service(self, instance: Any, data: dict[str, Any]) -> Model:
        raise NotImplementedError

    def perform_destroy_service(self, instance: Any) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Resource:
    name: str
    path: str
    viewset: type[ResourceViewSet]
    actions: list[dict[str, Any]] = field(default_factory=list)


REGISTRY: dict[str, Resource] = {}


def register(viewset: type[ResourceViewSet]) -> type[ResourceViewSet]:
    """Class decorator: publish a ResourceViewSet under ``/api/<resource_path>``."""
    name = viewset.resource_name
    assert name not in REGISTRY, f"resource {name} registered twice"
    tag = viewset.resource_path
    extend_schema_view(
        list=extend_schema(tags=[tag], summary=f"List {viewset.resource_title or name}s"),
        create=extend_schema(tags=[tag], summary=f"Create a {name}"),
        retrieve=extend_schema(tags=[tag], summary=f"Fetch one {name}", parameters=[ORG_PARAM, ID_PARAM]),
        partial_update=extend_schema(tags=[tag], summary=f"Update a {name}", parameters=[ORG_PARAM, ID_PARAM]),
        destroy=extend_schema(tags=[tag], summary=f"Delete a {name}", parameters=[ORG_PARAM, ID_PARAM]),
    )(viewset)
    REGISTRY[name] = Resource(name=name, path=f"/api/{viewset.resource_path}", viewset=viewset)
    return viewset


def contribute_action(resource_name: str, *, scope: str | None = None) -> Any:
    """Decorator: attach a DRF ``@action`` written in another app to a registered resource.

    Keeps dependencies one-way: ``conversions`` adds ``files/{org_id}/{id}/conversions``
    without ``uploads`` importing it. The function is a normal viewset method (``self``
    is the resource's viewset, so ``self.get_object()`` applies the tenant scoping), and
    it shows up in ``/api/_meta`` and the OpenAPI schema like a declared action. Call it
    at import time of the app's views module (imported by ``fileconvert.urls`` before the
    router is built).
    """

    def attach(func: Any) -> Any:
        viewset = REGISTRY[resource_name].viewset
        assert not hasattr(viewset, func.__name__), f"{resource_name} already has {func.__name__}"
        setattr(viewset, func.__name__, func)
        if scope:
            viewset.extra_action_scopes = {**viewset.extra_action_scopes, func.__name__: scope}
        return func

    return attach


def find_resource(name: str) -> Resource | None:
    if name in REGISTRY:
        return REGISTRY[name]
    for resource in REGISTRY.values():  # also by path segment: "settings" as well as "setting"
        if resource.viewset.resource_path == name:
            return resource
    return None


class OrgScopedRouter(SimpleRouter):
    """Detail routes are ``P/{org_id}/{id}``, as the auto-CRUD convention documents."""

    def __init__(self) -> None:
        super().__init__(trailing_slash=False)

    def get_lookup_regex(self, viewset: Any, lookup_prefix: str = "") -> str:
        return r"(?P<org_id>[^/.]+)/(?P<pk>[^/.]+)"


def resource_urls() -> list[URLPattern]:
    router = OrgScopedRouter()
    for resource in REGISTRY.values():
        router.register(resource.viewset.resource_path, resource.viewset, basename=resource.name)
    return router.urls  # type: ignore[return-value]
