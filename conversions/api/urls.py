"""URLs of the conversions app: ``api_urlpatterns`` are mounted under /api/, ``root_urlpatterns`` at the root."""

from django.urls import URLPattern, path

from conversions.api import views

api_urlpatterns: list[URLPattern] = [
    path("convert", views.ConvertView.as_view(), name="convert"),
    path("convert/formats", views.FormatsGraphView.as_view(), name="convert-formats"),
    path("formats", views.FormatListView.as_view(), name="format-list"),
    path("formats/<str:fmt>", views.FormatDetailView.as_view(), name="format-detail"),
    path("formats/<str:fmt>/template", views.FormatTemplateView.as_view(), name="format-template"),
    path("help/metadata", views.MetadataHelpView.as_view(), name="help-metadata"),
]
# Seed 000 serves the status API at the root.
root_urlpatterns: list[URLPattern] = [
    path("status-api/<str:job_id>", views.StatusApiView.as_view(), name="seed000-status"),
]
