from django.urls import path

from uploads.api import views

api_urlpatterns = [
    path("uploads/init", views.UploadInitView.as_view(), name="upload-init"),
    path("uploads/<str:file_id>/data", views.UploadDataView.as_view(), name="upload-data"),
    path("uploads/<str:file_id>/abort", views.UploadAbortView.as_view(), name="upload-abort"),
    path("uploads/<str:file_id>/complete", views.UploadCompleteView.as_view(), name="upload-complete"),
    path("uploads/<str:file_id>/form", views.PresignedFormView.as_view(), name="upload-presigned-form"),
]

# Seed 002 serves these at the root, not under /api.
root_urlpatterns = [
    path("upload", views.BatchUploadView.as_view(), name="batch-upload"),
    path("upload/<str:upload_id>", views.UploadDetailView.as_view(), name="batch-upload-detail"),
    path("upload/<str:upload_id>/move", views.UploadMoveView.as_view(), name="batch-upload-move"),
    path("task/<str:task_id>", views.TaskDetailView.as_view(), name="task-detail"),
    path("task/<str:task_id>/complete", views.TaskCompleteView.as_view(), name="task-complete"),
    path("task/<str:task_id>/discard", views.TaskDiscardView.as_view(), name="task-discard"),
    path("upload-api", views.UploadApiView.as_view(), name="seed000-upload-api"),
    path("list-uploads-api", views.ListUploadsApiView.as_view(), name="seed003-list-uploads"),
    path("delete-upload-api", views.DeleteUploadApiView.as_view(), name="seed000-delete-upload"),
]
