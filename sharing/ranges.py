"""HTTP Range requests (RFC 9110 §14) over a representation of known size.

``parse_range`` turns a ``Range`` header into what to serve:

- ``None``: ignore the header and send the whole representation (200). That is the
  answer for a missing header, another unit, a syntactically invalid set (RFC 9110
  §14.2 lets a server ignore it) and for a pathological set: more than ``max_ranges``
  ranges before coalescing, so ``bytes=0-0,0-0,…`` ×1000 costs one plain 200, never
  an amplified multipart body.
- ``UNSATISFIABLE``: no range overlaps the representation (416 with ``bytes */size``).
- a list of ``(start, end)`` inclusive pairs, sorted, with overlapping and adjacent
  ranges coalesced: one pair is a single-part 206, several a multipart/byteranges 206
  whose parts never sum to more than the representation.
"""

from __future__ import annotations

import re
from typing import Final

UNSATISFIABLE: Final = "unsatisfiable"
_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")
_MAX_DIGITS = 19  # beyond int64: a hostile number, not a position


def parse_range(header: str | None, size: int, *, max_ranges: int) -> list[tuple[int, int]] | str | None:
    if not header:
        return None
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    parts = specs.split(",")
    if len(parts) > max_ranges:
        return None
    wanted: list[tuple[int, int]] = []
    for part in parts:
        match = _SPEC.match(part)
        if match is None:
            return None
        first, last = match.groups()
        if len(first) > _MAX_DIGITS or len(last) > _MAX_DIGITS:
            return None
        if first == "" and last == "":
            return None
        if first == "":  # suffix: the last N bytes
            length = int(last)
            if length == 0 or size == 0:
                continue  # unsatisfiable on its own
            wanted.append((max(size - length, 0), size - 1))
            continue
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            return None  # invalid range-spec: the whole header is ignored
        if start >= size:
            continue  # unsatisfiable on its own
        wanted.append((start, min(end, size - 1)))
    if not wanted:
        return UNSATISFIABLE
    return coalesce(wanted)


def coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
