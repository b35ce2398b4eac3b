"""Maps every exception raised under DRF to the documented error shape."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.transaction import TransactionManagementError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from fileconvert.context import current_request_id
from fileconvert.errors import AppError

logger = logging.getLogger("fileconvert.api")


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "request_id": current_request_id(),
        "error": code,
        "details": {"message": message, **details},
    }


def _flatten_validation(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {k: _flatten_validation(v) for k, v in detail.items()}
    if isinstance(detail, list):
        flat = [_flatten_validation(v) for v in detail]
        return flat if any(isinstance(v, (dict, list)) for v in flat) else [str(v) for v in flat]  # type: ignore[return-value]
    return str(detail)  # type: ignore[return-value]


def _validation_message(fields: Any) -> str:
    if isinstance(fields, dict) and fields:
        name, errors = next(iter(fields.items()))
        first = errors[0] if isinstance(errors, list) and errors else errors
        text = first if isinstance(first, str) else "is invalid"
        return text if name == "non_field_errors" else f"{name}: {text}"
    if isinstance(fields, list) and fields:
        return str(fields[0])
    return "Some fields are invalid."


def classify(exc: Exception) -> tuple[int, str, str, dict[str, Any], dict[str, str]]:
    """(http status, code, message, extra details, headers) for any exception."""
    if isinstance(exc, AppError):
        return exc.status_code, exc.code, exc.message, exc.details, {}
    if isinstance(exc, drf.ValidationError):
        fields = _flatten_validation(exc.detail)
        extra = {"fields": fields} if isinstance(fields, dict) else {"errors": fields}
        return 400, "VALIDATION_ERROR", _validation_message(fields), extra, {}
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        return 401, "UNAUTHORIZED", str(exc.detail), {}, {}
    if isinstance(exc, (drf.PermissionDenied, DjangoPermissionDenied)):
        detail = getattr(exc, "detail", None) or "You do not have permission to perform this action."
        return 403, "FORBIDDEN", str(detail), {}, {}
    if isinstance(exc, (drf.NotFound, Http404)):
        return 404, "NOT_FOUND", "Not found.", {}, {}
    if isinstance(exc, drf.MethodNotAllowed):
        return 405, "METHOD_NOT_ALLOWED", str(exc.detail), {}, {}
    if isinstance(exc, drf.NotAcceptable):
        return 406, "NOT_ACCEPTABLE", str(exc.detail), {}, {}
    if isinstance(exc, drf.UnsupportedMediaType):
        return 415, "UNSUPPORTED_MEDIA_TYPE", str(exc.detail), {}, {}
    if isinstance(exc, drf.Throttled):
        wait = int(exc.wait or 1) if exc.wait is not None else 1
        return 429, "RATE_LIMITED", "Too many requests; slow down.", {"retry_after": wait}, {"Retry-After": str(max(wait, 1))}
    if isinstance(exc, RequestDataTooBig):
        return 413, "PAYLOAD_TOO_LARGE", "The request body is too large.", {}, {}
    if isinstance(exc, drf.ParseError):
        return 400, "MALFORMED_REQUEST", str(exc.detail), {}, {}
    if isinstance(exc, SuspiciousOperation):
        # Too many form fields or files, malformed multipart boundaries, bad hosts.
        return 400, "MALFORMED_REQUEST", str(exc) or "The request was malformed.", {}, {}
    if isinstance(exc, drf.APIException):
        return exc.status_code, str(exc.default_code).upper(), str(exc.detail), {}, {}
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable: %s", exc)
        return 503, "SERVICE_UNAVAILABLE", "The database is unavailable; retry shortly.", {}, {"Retry-After": "5"}
    if isinstance(exc, DatabaseError):
        logger.exception("database error")
        return 500, "INTERNAL_ERROR", "An internal error occurred.", {}, {}
    logger.exception("unhandled error", exc_info=exc)
    return 500, "INTERNAL_ERROR", "An internal error occurred.", {}, {}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    status, code, message, extra, headers = classify(exc)
    response = Response(error_body(code, message, **extra), status=status, headers=headers)
    if status >= 500:
        # Nothing half-written: the request's transaction (if any) must not commit.
        with contextlib.suppress(TransactionManagementError, DatabaseError):
            transaction.set_rollback(True)
    return response


def json_error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    response = JsonResponse(error_body(code, message), status=status)
    for key, value in (headers or {}).items():
        response[key] = value
    return response
