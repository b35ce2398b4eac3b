"""URLs of the search app: ``api_urlpatterns`` are mounted under /api/, ``root_urlpatterns`` at the root."""

from django.urls import URLPattern, path

from search.api import views

api_urlpatterns: list[URLPattern] = [path("search", views.SearchView.as_view(), name="search")]
root_urlpatterns: list[URLPattern] = []
