"""Child-process entry point: ``python -m metadata.edit_worker KIND SRC DST OPS_JSON [FFMPEG]``.

Writes the edited file to DST and prints one JSON line: ``{"report": {changed, skipped}}``
or ``{"error": {code, message}}``. Runs under fileconvert.sandbox limits; no Django.
"""

from __future__ import annotations

import json
import sys
import warnings


def main() -> int:
    kind, src, dst, ops_path = sys.argv[1:5]
    ffmpeg = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] else None
    from metadata import writers
    from metadata.containers import ContainerError

    try:
        with open(ops_path, encoding="utf-8") as fh:
            ops = json.load(fh)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = writers.apply(kind, src, dst, ops, ffmpeg=ffmpeg)
    except ContainerError as exc:
        print(json.dumps({"error": {"code": exc.code, "message": exc.message}}))
        return 0
    except Exception as exc:  # noqa: BLE001 - reported to the parent as data
        name = type(exc).__name__
        print(json.dumps({"error": {"code": "UNREADABLE_CONTENT", "message": f"{name}: {str(exc)[:300]}"}}))
        return 0
    print(json.dumps({"report": report}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
