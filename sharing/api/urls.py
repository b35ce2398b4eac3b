"""URLs of the sharing app: ``api_urlpatterns`` are mounted under /api/, ``root_urlpatterns`` at the root."""

from django.urls import URLPattern

api_urlpatterns: list[URLPattern] = []
root_urlpatterns: list[URLPattern] = []
