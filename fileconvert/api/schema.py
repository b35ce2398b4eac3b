"""OpenAPI post-processing: successful JSON bodies are wrapped in the envelope the
renderer adds, and every operation documents the shared error shape."""

from __future__ import annotations

from typing import Any

RAW_EXTENSION = "x-fileconvert-raw"

ERROR_SCHEMA = {
    "type": "object",
    "required": ["status", "request_id", "error", "details"],
    "properties": {
        "status": {"type": "string", "enum": ["error"]},
        "request_id": {"type": "string", "example": "req_01hzy3k9v6a1b2c3d4e5f6g7h8"},
        "error": {"type": "string", "example": "NOT_FOUND"},
        "details": {
            "type": "object",
            "required": ["message"],
            "properties": {"message": {"type": "string"}},
            "additionalProperties": True,
        },
    },
}
ERROR_STATUSES = {
    "400": "Invalid input (VALIDATION_ERROR, MALFORMED_REQUEST).",
    "401": "Missing or invalid credentials (UNAUTHORIZED).",
    "403": "Authenticated but not allowed (FORBIDDEN, INSUFFICIENT_SCOPE).",
    "404": "Not found, including another organization's resources (NOT_FOUND).",
    "429": "Rate limited (RATE_LIMITED); see Retry-After.",
}


def envelope_hook(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            raw = operation.pop(RAW_EXTENSION, False)
            for code, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json")
                if raw or not code.startswith("2") or not content or "schema" not in content:
                    continue
                content["schema"] = {
                    "type": "object",
                    "required": ["data", "request_id", "timestamp"],
                    "properties": {
                        "data": content["schema"],
                        "request_id": {"type": "string"},
                        "timestamp": {"type": "string", "format": "date-time"},
                    },
                }
            if not raw:
                for code, text in ERROR_STATUSES.items():
                    operation["responses"].setdefault(
                        code,
                        {
                            "description": text,
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                        },
                    )
    return result


def _register_auth_extensions() -> None:
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class ApiKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
        target_class = "fileconvert.api.auth.ApiKeyAuthentication"
        name = "ApiKey"

        def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
            return {"type": "apiKey", "in": "header", "name": "X-API-Key"}

    class BearerScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
        target_class = "fileconvert.api.auth.BearerTokenAuthentication"
        name = "Bearer"

        def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
            return {
                "type": "http",
                "scheme": "bearer",
                "description": "Anonymous session (POST /api/anon/session) or user token (POST /api/auth/token).",
            }

    class GatewayScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
        target_class = "fileconvert.api.auth.GatewayAuthentication"
        name = "GatewayKey"

        def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
            return {
                "type": "apiKey",
                "in": "header",
                "name": "X-Gateway-Key",
                "description": "Trusted gateway; send X-Auth-Org-Id, X-Auth-User-Id and X-Auth-Role with it.",
            }


_register_auth_extensions()
