"""Child-process entry point: ``python -m search.extract_worker KIND PATH LIMITS_JSON``.

Prints one JSON line: ``{"extracted": {...}}`` or ``{"error": {"code", "message"}}``.
Runs under fileconvert.sandbox limits (wall time, address space); imports nothing from Django.
"""

from __future__ import annotations

import json
import sys
import warnings

from search.extract import ExtractionFailed, Limits, extract_file


def main() -> int:
    kind, path, limits = sys.argv[1], sys.argv[2], Limits(**json.loads(sys.argv[3]))
    warnings.simplefilter("ignore")  # parsers warn on odd input; the result is what counts
    try:
        payload = {"extracted": extract_file(path, kind, limits).as_dict()}
    except ExtractionFailed as exc:
        payload = {"error": {"code": exc.code, "message": exc.message[:300]}}
    except MemoryError:
        payload = {"error": {"code": "TOO_LARGE", "message": "extraction ran out of memory"}}
    except Exception as exc:  # noqa: BLE001 - reported to the parent as data, never a crash loop
        payload = {"error": {"code": "UNREADABLE_CONTENT", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}}
    sys.stdout.write(json.dumps(payload, ensure_ascii=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
