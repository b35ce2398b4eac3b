"""The one error hierarchy. Services raise these; the API handler maps them to
``{"status": "error", "request_id", "error": CODE, "details": {"message", ...}}``."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status_code = 400
    code = "BAD_REQUEST"
    default_message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        if code:
            self.code = code
        self.details = details
        super().__init__(self.message)


class BadRequest(AppError):
    pass


class ValidationFailed(AppError):
    code = "VALIDATION_ERROR"
    default_message = "Some fields are invalid."


class Unauthorized(AppError):
    status_code = 401
    code = "UNAUTHORIZED"
    default_message = "Authentication credentials were missing or invalid."


class Forbidden(AppError):
    status_code = 403
    code = "FORBIDDEN"
    default_message = "You do not have permission to perform this action."


class NotFound(AppError):
    status_code = 404
    code = "NOT_FOUND"
    default_message = "Not found."


class Conflict(AppError):
    status_code = 409
    code = "CONFLICT"
    default_message = "The resource is not in a state that allows this."


class PayloadTooLarge(AppError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"
    default_message = "The request body is too large."


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    default_message = "This media type is not supported."


class Unprocessable(AppError):
    status_code = 422
    code = "UNPROCESSABLE"
    default_message = "The content could not be processed."


class ServiceUnavailable(AppError):
    status_code = 503
    code = "SERVICE_UNAVAILABLE"
    default_message = "A backing service is unavailable; retry shortly."
