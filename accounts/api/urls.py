from django.urls import path

from accounts.api import views

urlpatterns = [
    path("anon/session", views.AnonymousSessionView.as_view(), name="anon-session"),
    path("auth/token", views.TokenView.as_view(), name="auth-token"),
    path("auth/me", views.MeView.as_view(), name="auth-me"),
    path("api-keys", views.ApiKeyListView.as_view(), name="api-keys"),
    path("api-keys/<str:key_id>", views.ApiKeyDetailView.as_view(), name="api-key-detail"),
    path("usage", views.UsageView.as_view(), name="usage"),
    path("audit", views.AuditLogView.as_view(), name="audit"),
]
