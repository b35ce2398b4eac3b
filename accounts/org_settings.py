"""The catalogue of per-organization settings: type, default and help for each key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from accounts.models import Organization


@dataclass(frozen=True)
class SettingSpec:
    key: str
    kind: type
    help: str
    default: Callable[[Organization], Any]
    choices: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None

    def validate(self, value: Any) -> Any:
        # bool is an int subclass; keep the types apart.
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError("must be an integer")
        if self.kind is not int and not isinstance(value, self.kind):
            raise ValueError(f"must be a {self.kind.__name__}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"must be one of: {', '.join(self.choices)}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {self.maximum}")
        return value


SETTINGS: dict[str, SettingSpec] = {
    spec.key: spec
    for spec in (
        SettingSpec(
            key="review.required",
            kind=bool,
            help="Uploaded files wait for platform review before they become active and searchable.",
            default=lambda org: not org.is_anonymous,
        ),
        SettingSpec(
            key="files.default_visibility",
            kind=str,
            help="Visibility given to new files when the request does not say.",
            default=lambda org: "private",
            choices=("private", "org", "public", "restricted"),
        ),
        SettingSpec(
            key="files.retention_days",
            kind=int,
            help="Delete files this many days after upload; 0 keeps them until deleted.",
            default=lambda org: 0,
            minimum=0,
            maximum=3650,
        ),
    )
}
