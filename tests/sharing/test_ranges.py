"""``sharing.ranges.parse_range`` against RFC 9110 §14 and SECURITY.md #22."""

from __future__ import annotations

import pytest

from sharing.ranges import UNSATISFIABLE, parse_range

SIZE = 1000


def parse(header: str | None, size: int = SIZE, max_ranges: int = 16):
    return parse_range(header, size, max_ranges=max_ranges)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", [(0, 0)]),
        ("bytes=999-999", [(999, 999)]),
        ("bytes=-500", [(500, 999)]),
        ("bytes=500-", [(500, 999)]),
        ("bytes=0-", [(0, 999)]),
        ("bytes=-5000", [(0, 999)]),  # a suffix longer than the file is the whole file
        ("bytes=900-5000", [(900, 999)]),  # the last position is clipped
        ("BYTES = 1-2", [(1, 2)]),  # the unit is case-insensitive; whitespace is tolerated
        ("bytes=0-1, 2-3", [(0, 3)]),  # adjacent ranges coalesce
        ("bytes=0-10,5-20", [(0, 20)]),  # overlapping ranges coalesce
        ("bytes=500-600,0-10", [(0, 10), (500, 600)]),  # sorted
        ("bytes=0-0,0-0,0-0", [(0, 0)]),
        ("bytes=1000-,0-0", [(0, 0)]),  # one unsatisfiable range among satisfiable ones is dropped
    ],
)
def test_satisfiable(header, expected):
    assert parse(header) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=-0", "bytes=5000-6000,-0"])
def test_unsatisfiable(header):
    assert parse(header) == UNSATISFIABLE


def test_any_range_of_an_empty_file_is_unsatisfiable():
    assert parse("bytes=0-", size=0) == UNSATISFIABLE
    assert parse("bytes=-10", size=0) == UNSATISFIABLE


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "items=0-1",  # another unit: ignored
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=a-b",
        "bytes=5-1",  # last < first: invalid, the whole header is ignored
        "bytes=0-1,,2-3",
        "bytes=0--1",
        "bytes=1-2;3-4",
        "bytes=99999999999999999999-",  # more than 19 digits: hostile, not a position
    ],
)
def test_ignored_means_the_full_representation(header):
    assert parse(header) is None


def test_a_pathological_set_is_ignored_not_amplified():
    assert parse(",".join(["0-0"] * 1000).join(["bytes=", ""])) is None
    assert parse("bytes=" + ",".join(f"{i}-{i}" for i in range(17))) is None
    assert parse("bytes=" + ",".join(f"{i}-{i}" for i in range(16))) == [(0, 15)]


def test_coalesced_parts_never_sum_past_the_file():
    spans = parse("bytes=0-999,0-999,-1000,500-")
    assert spans == [(0, 999)]
