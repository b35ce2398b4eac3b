"""URLs of the review app: ``api_urlpatterns`` are mounted under /api/, ``root_urlpatterns`` at the root."""

from django.urls import URLPattern, path

from review.api import views

api_urlpatterns: list[URLPattern] = []

# Seed 001 documents these at /v1/admin/review/…, outside /api.
_OBJECT = "v1/admin/review/objects/<str:tenant_id>/<str:object_id>"
root_urlpatterns: list[URLPattern] = [
    path("v1/admin/review/objects", views.ReviewQueueView.as_view(), name="review-queue"),
    path(_OBJECT, views.ReviewObjectView.as_view(), name="review-object"),
    path(f"{_OBJECT}/approve", views.ReviewApproveView.as_view(), name="review-approve"),
    path(f"{_OBJECT}/reject", views.ReviewRejectView.as_view(), name="review-reject"),
    path(f"{_OBJECT}/preview", views.ReviewPreviewView.as_view(), name="review-preview"),
    path("v1/admin/review/previews/<str:token>", views.ReviewPreviewContentView.as_view(), name="review-preview-content"),
]
