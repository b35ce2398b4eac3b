"""URLs of the metadata app: ``api_urlpatterns`` are mounted under /api/, ``root_urlpatterns`` at the root.

Importing the views contributes ``metadata`` (GET, POST) to the ``files`` resource."""

from django.urls import URLPattern

from metadata.api import views  # noqa: F401 - contributes the suffix actions

api_urlpatterns: list[URLPattern] = []
root_urlpatterns: list[URLPattern] = []
