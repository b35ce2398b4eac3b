"""fileconvert.sandbox.worker_environ: workers start with glibc's huge-page tunable, and it
really changes how a child process's heap is backed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fileconvert.sandbox import WORKER_GLIBC_TUNABLES, worker_environ

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")

# Allocate and touch 64 MiB through malloc (bytearray), then report the process's huge pages.
PROBE = """
import re
b = bytearray(64 << 20)
for i in range(0, len(b), 4096):
    b[i] = 1
text = open('/proc/self/smaps_rollup').read()
print(int(re.search(r'AnonHugePages:\\s+(\\d+) kB', text).group(1)))
"""


def test_tunable_is_added_and_others_are_kept():
    assert worker_environ({})["GLIBC_TUNABLES"] == WORKER_GLIBC_TUNABLES
    merged = worker_environ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "X": "1"})
    assert merged["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:" + WORKER_GLIBC_TUNABLES
    assert merged["X"] == "1"
    # An operator's own choice of the same tunable wins.
    assert worker_environ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0"


def _huge_kib(env: dict[str, str]) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(
    not THP.exists() or "[madvise]" not in THP.read_text(), reason="transparent huge pages are not in madvise mode here"
)
def test_a_process_started_with_it_gets_huge_pages_for_large_allocations():
    base = {k: v for k, v in worker_environ().items() if k != "GLIBC_TUNABLES"}
    assert _huge_kib(base) == 0  # madvise mode: nothing unless asked for
    assert _huge_kib(worker_environ(base)) >= 32 * 1024
