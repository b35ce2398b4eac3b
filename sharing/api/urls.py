"""URLs of the sharing app: ``api_urlpatterns`` are mounted under /api/, ``root_urlpatterns`` at the root.

Importing the views contributes ``download``, ``download-link`` and ``share`` to the
``files`` resource and registers ``share-links``."""

from django.urls import URLPattern, path

from sharing.api import views

api_urlpatterns: list[URLPattern] = [
    path("s/<str:token>", views.ShareAccessView.as_view(), name="share-access"),
]
root_urlpatterns: list[URLPattern] = []
