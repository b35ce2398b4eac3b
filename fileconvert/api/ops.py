"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fileconvert.metrics import render_latest

logger = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    from fileconvert.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def check_storage() -> None:
    from fileconvert import storage

    storage.check_reachable()


CHECKS = {"database": check_database, "broker": check_broker, "storage": check_storage}


class HealthView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(
        tags=["ops"],
        summary="Liveness check",
        auth=[],
        responses=inline_serializer("Health", {"status": serializers.CharField()}),
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadinessView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(
        tags=["ops"],
        summary="Readiness: database, broker and storage",
        auth=[],
        responses=inline_serializer("Readiness", {"status": serializers.CharField(), "checks": serializers.DictField()}),
    )
    def get(self, request: Request) -> Response:
        results: dict[str, dict[str, Any]] = {}
        for name, check in CHECKS.items():
            started = time.perf_counter()
            try:
                check()
                results[name] = {"ok": True}
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                logger.warning("readiness check failed", extra={"check": name, "error": str(exc)})
                results[name] = {"ok": False, "error": type(exc).__name__}
            results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
        ready = all(r["ok"] for r in results.values())
        body = {"status": "ready" if ready else "unavailable", "checks": results}
        if ready:
            return Response(body)
        from fileconvert.api.errors import error_body

        return Response(error_body("SERVICE_UNAVAILABLE", "Not ready.", checks=results), status=503)


def metrics_view(request: HttpRequest) -> HttpResponse:
    payload, content_type = render_latest()
    return HttpResponse(payload, content_type=content_type)
