from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from fileconvert.context import client_ip_var, request_id_var
from fileconvert.ids import new_ulid
from fileconvert.metrics import HTTP_LATENCY, HTTP_REQUESTS
from fileconvert.net import client_address

logger = logging.getLogger("fileconvert.request")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
HTML_PREFIXES = ("/admin", "/dashboard", "/static")


def wants_json(request: HttpRequest) -> bool:
    return not request.path.startswith(HTML_PREFIXES)


class RequestIdMiddleware:
    """Gives every request an id (or keeps a well-formed incoming ``X-Request-ID``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else f"req_{new_ulid()}"
        request.request_id = request_id  # type: ignore[attr-defined]
        rid_token = request_id_var.set(request_id)
        ip_token = client_ip_var.set(client_address(request))
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(rid_token)
            client_ip_var.reset(ip_token)
        response["X-Request-ID"] = request_id
        return response


class MetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name) if match else "unmatched"
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, route).observe(elapsed)
        if response.status_code >= 500:
            logger.warning("request failed", extra={"path": request.path, "status": response.status_code})
        return response


class UnhandledErrorMiddleware:
    """Errors outside DRF views still answer in the documented shape on API paths."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not wants_json(request):
            return None
        from fileconvert.api.errors import classify, json_error_response

        status, code, message, _extra, headers = classify(exception)
        return json_error_response(status, code, message, headers)
