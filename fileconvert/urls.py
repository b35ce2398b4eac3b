import importlib

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from fileconvert.api import meta, ops
from fileconvert.api.errors import json_error_response
from fileconvert.api.registry import resource_urls
from fileconvert.middleware import wants_json

# Apps register their resources when their views are imported.
import accounts.api.views  # noqa: F401  isort: skip
import uploads.api.views  # noqa: F401  isort: skip
from uploads.api.urls import api_urlpatterns as upload_api_urls
from uploads.api.urls import root_urlpatterns as upload_root_urls

# Apps that build on uploads: each app's ``api/urls.py`` imports its views (which may
# contribute suffix actions to the ``files`` resource) before ``resource_urls()`` runs.
_APPS = ("review", "search", "conversions", "sharing", "metadata")
_app_urls = [importlib.import_module(f"{app}.api.urls") for app in _APPS]


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


api_patterns = [
    path("", include("accounts.api.urls")),
    *upload_api_urls,
    *(pattern for module in _app_urls for pattern in module.api_urlpatterns),
    path("_meta", meta.MetaIndexView.as_view(), name="meta-index"),
    path("_meta/<str:resource>", meta.MetaResourceView.as_view(), name="meta-resource"),
    path("health", ops.HealthView.as_view(), name="health"),
    path("health/ready", ops.ReadinessView.as_view(), name="ready"),
    *resource_urls(),
]

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    *upload_root_urls,
    *(pattern for module in _app_urls for pattern in module.root_urlpatterns),
    path("api/", include(api_patterns)),
    path("metrics", ops.metrics_view, name="metrics"),
    path("openapi.json", SpectacularAPIView.as_view(), {"format": "json"}, name="openapi"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
]


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return json_error_response(404, "NOT_FOUND", "Not found.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Exception())


def handler500(request: HttpRequest) -> HttpResponse:
    if wants_json(request):
        return json_error_response(500, "INTERNAL_ERROR", "An internal error occurred.")
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error_response(400, "MALFORMED_REQUEST", "The request was malformed.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return json_error_response(403, "FORBIDDEN", "Forbidden.")
    from django.views.defaults import permission_denied

    return permission_denied(request, exception or Exception())
