"""A URLconf for tests: the product's routes plus views that fail on purpose."""

from __future__ import annotations

from typing import Any

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fileconvert.urls import handler400, handler403, handler404, handler500
from fileconvert.urls import urlpatterns as product_urlpatterns

SECRET_DETAIL = "s3cr3t-internal-detail-do-not-leak"


class _OpenView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []


class RuntimeErrorView(_OpenView):
    def get(self, request: Request) -> Response:
        raise RuntimeError(SECRET_DETAIL)


class DatabaseDownView(_OpenView):
    def get(self, request: Request) -> Response:
        raise OperationalError(f"could not connect to server: {SECRET_DETAIL}")


def plain_django_crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(SECRET_DETAIL)


urlpatterns = [
    path("api/_test/crash", RuntimeErrorView.as_view()),
    path("api/_test/db-down", DatabaseDownView.as_view()),
    path("api/_test/plain-crash", plain_django_crash),
    *product_urlpatterns,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
