"""Public identifiers: a type prefix plus a time-ordered 26-character ULID.

Ids sort by creation time, so newest-first keyset pagination can order on the
primary key alone (see docs/decisions/0002-ids-and-pagination.md).
"""

from __future__ import annotations

import os
import time

from django.utils.deconstruct import deconstructible

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def new_ulid() -> str:
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    return f"{prefix}_{new_ulid()}"


@deconstructible
class IdFactory:
    """Serialisable model-field default: ``IdFactory("org")()`` -> ``org_…``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self) -> str:
        return new_id(self.prefix)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdFactory) and other.prefix == self.prefix

    def __hash__(self) -> int:
        return hash(self.prefix)


ID_MAX_LENGTH = 40
