"""Metadata probe: in-process ``metadata.probe`` against exiftool on the same files, same run.

Generates N mixed files (JPEG with EXIF/GPS/XMP/IPTC, PNG with text chunks, TIFF, MP3,
FLAC, MP4 via ffmpeg, PDF with info + XMP, DOCX), each with its own author, title and GPS,
then times:

1. the probe (headers only, no ffprobe) as the API runs it (PDF in a forked child) and all
   in-process, best of ``--repeat`` passes;
2. the same with ffprobe for audio/video (what the API does when ffprobe is installed);
3. ``exiftool -json -n`` over all files in one process;
4. ``exiftool -stay_open True -@ -``: one long-lived exiftool, one ``-execute`` per file.

and prints the speed ratios, the average ms per image file (target ≤ 1 ms) and the
agreement of the ``common`` fields with exiftool's values (target ≥ 95 %).

    .venv/bin/python bench/metadata.py              # 200 files
    .venv/bin/python bench/metadata.py --files 40   # quicker
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metadata.probe import probe_path  # noqa: E402
from tests.metadata import samples  # noqa: E402

KINDS = ["jpeg", "png", "tiff", "mp3", "flac", "mp4", "pdf", "docx"]
EXT = {"jpeg": "jpg", "png": "png", "tiff": "tif", "mp3": "mp3", "flac": "flac", "mp4": "mp4", "pdf": "pdf", "docx": "docx"}
IMAGE_KINDS = {"jpeg", "png", "tiff"}
FIELDS = ["title", "author", "camera_make", "camera_model", "gps", "width", "height", "duration", "pages", "created"]
# exiftool's tag names for each common field, most specific first (exiftool -json -n, no groups).
EXIFTOOL_KEYS = {
    "title": ["Title", "ObjectName"],
    "author": ["Artist", "Author", "Creator", "By-line"],
    "camera_make": ["Make"],
    "camera_model": ["Model"],
    "width": ["ImageWidth"],
    "height": ["ImageHeight"],
    "duration": ["Duration"],
    "pages": ["PageCount", "Pages"],
    "created": ["DateTimeOriginal", "CreateDate", "CreationDate"],
}


def generate(directory: Path, count: int, seed: int = 7) -> list[tuple[Path, str, dict[str, Any]]]:
    """``count`` files, kinds round-robin; returns (path, kind, what was written)."""
    rng = random.Random(seed)
    media_templates: dict[str, Path] = {}
    files = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        author, title = f"Author {i:03d} Ünïcode", f"Title {i:03d}"
        gps = (round(rng.uniform(-80, 80), 5), round(rng.uniform(-179, 179), 5))
        path = directory / f"f{i:03d}.{EXT[kind]}"
        if kind == "jpeg":
            size = (rng.randint(32, 640), rng.randint(32, 480))
            path.write_bytes(samples.jpeg_bytes(gps=gps, author=author, title=title, size=size))
        elif kind == "png":
            path.write_bytes(samples.png_bytes(author=author, title=title))
        elif kind == "tiff":
            path.write_bytes(samples.tiff_bytes(author=author, size=(rng.randint(16, 256), rng.randint(16, 256))))
        elif kind == "pdf":
            path.write_bytes(samples.pdf_bytes(pages=rng.randint(1, 5), author=author, title=title))
        elif kind == "docx":
            path.write_bytes(samples.docx_bytes(author=author, title=title))
        else:
            if kind not in media_templates:
                media_templates[kind] = samples.ffmpeg_media(directory / f"template.{EXT[kind]}", kind)
            shutil.copyfile(media_templates[kind], path)
            _retag(path, kind, author, title)
        files.append((path, kind, {"author": author, "title": title, "gps": gps}))
    for template in media_templates.values():
        template.unlink()
    return files


def _retag(path: Path, kind: str, author: str, title: str) -> None:
    import mutagen
    from mutagen.id3 import TIT2, TPE1

    media = mutagen.File(path)
    if kind == "mp3":
        media.tags.setall("TIT2", [TIT2(encoding=3, text=[title])])
        media.tags.setall("TPE1", [TPE1(encoding=3, text=[author])])
    elif kind == "flac":
        media.tags["title"], media.tags["artist"] = [title], [author]
    else:
        media.tags["©nam"], media.tags["©ART"] = [title], [author]
    media.save()


def time_probe(
    files: list[tuple[Path, str, dict]], *, ffprobe: str | None, isolate: bool = True
) -> tuple[float, dict[str, list[float]], dict[str, dict]]:
    per_kind: dict[str, list[float]] = {}
    results: dict[str, dict] = {}
    start = time.perf_counter()
    for path, kind, _ in files:
        t0 = time.perf_counter()
        results[path.name] = probe_path(str(path), ffprobe=ffprobe, isolate=isolate)
        per_kind.setdefault(kind, []).append(time.perf_counter() - t0)
    return time.perf_counter() - start, per_kind, results


def exiftool_batch(exiftool: str, files: list[tuple[Path, str, dict]]) -> tuple[float, dict[str, dict]]:
    start = time.perf_counter()
    out = subprocess.run([exiftool, "-json", "-n", *[str(p) for p, _, _ in files]], capture_output=True, check=False, timeout=600)
    elapsed = time.perf_counter() - start
    parsed = json.loads(out.stdout or b"[]")
    return elapsed, {Path(item["SourceFile"]).name: item for item in parsed}


def exiftool_stay_open(exiftool: str, files: list[tuple[Path, str, dict]]) -> tuple[float, float]:
    """(seconds for all files, start-up seconds) with one long-lived exiftool."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([exiftool, "-stay_open", "True", "-@", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin and proc.stdout

    def run(args: list[str]) -> bytes:
        proc.stdin.write(("\n".join(args) + "\n-execute\n").encode())
        proc.stdin.flush()
        chunks = []
        while True:
            line = proc.stdout.readline()
            if not line or line.startswith(b"{ready"):
                return b"".join(chunks)
            chunks.append(line)

    run(["-ver"])  # start-up (perl + module loading) is paid once
    startup = time.perf_counter() - t0
    start = time.perf_counter()
    for path, _, _ in files:
        run(["-json", "-n", str(path)])
    elapsed = time.perf_counter() - start
    proc.stdin.write(b"-stay_open\nFalse\n")
    proc.stdin.flush()
    proc.wait(timeout=30)
    return elapsed, startup


def exiftool_approximations(exiftool: str, files: list[tuple[Path, str, dict]]) -> set[str]:
    """Files whose exiftool Duration is an estimate (printed "(approx)": MP3 from the bitrate). Untimed."""
    media = [str(p) for p, kind, _ in files if kind in ("mp3", "flac", "mp4")]
    out = subprocess.run([exiftool, "-json", "-Duration", *media], capture_output=True, check=False, timeout=600)
    return {
        Path(item["SourceFile"]).name for item in json.loads(out.stdout or b"[]") if "approx" in str(item.get("Duration", ""))
    }


def _digits(value: Any) -> str:
    text = "".join(ch for ch in str(value) if ch.isdigit())[:14]
    return "" if not text.strip("0") else text


def exiftool_common(item: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for field, keys in EXIFTOOL_KEYS.items():
        for key in keys:
            value = item.get(key)
            if isinstance(value, list):
                value = value[0] if value else None
            if value not in (None, "", 0) and not (field == "created" and not _digits(value)):
                found[field] = value
                break
    if isinstance(item.get("GPSLatitude"), (int, float)) and isinstance(item.get("GPSLongitude"), (int, float)):
        found["gps"] = {"lat": item["GPSLatitude"], "lon": item["GPSLongitude"]}
    return found


def agree(field: str, ours: Any, theirs: Any) -> bool:
    if ours is None or theirs is None:
        return False
    if field == "gps":
        return abs(ours["lat"] - theirs["lat"]) < 1e-5 and abs(ours["lon"] - theirs["lon"]) < 1e-5
    if field == "duration":
        return abs(float(ours) - float(theirs)) <= max(0.06, 0.03 * float(theirs))
    if field == "created":
        return _digits(ours) == _digits(theirs)
    if field in ("width", "height", "pages"):
        return int(ours) == int(theirs)
    return str(ours).strip() == str(theirs).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5, help="passes of the in-process probe (best is reported)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    exiftool, ffprobe = shutil.which("exiftool"), shutil.which("ffprobe")
    if not exiftool or not samples.FFMPEG:
        print("exiftool and ffmpeg are required (scripts/system-deps.sh)", file=sys.stderr)
        return 2
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  cpus: {os.cpu_count()}")
    directory = Path(tempfile.mkdtemp(prefix="fileconvert-bench-metadata-"))
    try:
        t0 = time.perf_counter()
        files = generate(directory, args.files)
        counts = {k: sum(1 for _, kind, _ in files if kind == k) for k in KINDS}
        print(f"generated {len(files)} files in {time.perf_counter() - t0:.1f} s: {counts}")
        exiftool_version = subprocess.run([exiftool, "-ver"], capture_output=True, text=True, check=True).stdout.strip()
        print(f"exiftool {exiftool_version}; ffprobe {'present' if ffprobe else 'absent'}")

        time_probe(files[: len(KINDS)], ffprobe=None)  # imports and caches warm
        gc.disable()  # collector pauses are not the probe's cost; exiftool's perl does not pay ours either
        passes = [time_probe(files, ffprobe=None) for _ in range(args.repeat)]
        gc.enable()
        ours_total, per_kind, ours = min(passes, key=lambda p: p[0])
        # Per file, the best of the passes: what a file costs without another process preempting it.
        best_per_kind = {k: [min(p[1][k][i] for p in passes) for i in range(len(v))] for k, v in per_kind.items()}
        all_in_process_total = min(time_probe(files, ffprobe=None, isolate=False)[0] for _ in range(args.repeat))
        with_ffprobe_total = time_probe(files, ffprobe=ffprobe)[0] if ffprobe else None
        batch_total, theirs = exiftool_batch(exiftool, files)
        stay_total, stay_startup = exiftool_stay_open(exiftool, files)

        n = len(files)
        print("\n== speed (whole set) ==")
        print(
            f"probe as the API runs it         {ours_total * 1000:9.1f} ms   "
            f"{ours_total / n * 1000:7.3f} ms/file  (PDF in a forked child)"
        )
        print(
            f"probe all in-process             {all_in_process_total * 1000:9.1f} ms   "
            f"{all_in_process_total / n * 1000:7.3f} ms/file  (PDF parsed in-process too)"
        )
        if with_ffprobe_total is not None:
            print(
                f"probe + ffprobe for audio/video  {with_ffprobe_total * 1000:9.1f} ms   "
                f"{with_ffprobe_total / n * 1000:7.3f} ms/file"
            )
        print(f"exiftool -json, one process      {batch_total * 1000:9.1f} ms   {batch_total / n * 1000:7.3f} ms/file")
        print(
            f"exiftool -stay_open, per file    {stay_total * 1000:9.1f} ms   {stay_total / n * 1000:7.3f} ms/file"
            f"   (+{stay_startup * 1000:.0f} ms start-up)"
        )
        print(
            f"ratio exiftool -json / probe       {batch_total / ours_total:7.1f}x   "
            f"(all in-process: {batch_total / all_in_process_total:.1f}x)"
        )
        print(
            f"ratio exiftool -stay_open / probe  {stay_total / ours_total:7.1f}x   "
            f"(all in-process: {stay_total / all_in_process_total:.1f}x)"
        )
        if with_ffprobe_total is not None:
            print(f"ratio exiftool -stay_open / probe+ffprobe {stay_total / with_ffprobe_total:7.1f}x")

        print(f"\n== in-process probe per kind, ms/file (best pass: mean median max | best of {args.repeat} per file: mean) ==")
        for kind in KINDS:
            times = [t * 1000 for t in per_kind.get(kind, [])]
            best = [t * 1000 for t in best_per_kind.get(kind, [])]
            if times:
                print(
                    f"{kind:6} {statistics.mean(times):7.3f} {statistics.median(times):7.3f} {max(times):7.3f}"
                    f"   | {statistics.mean(best):7.3f}"
                )
        image_times = [t * 1000 for kind in IMAGE_KINDS for t in per_kind.get(kind, [])]
        image_best = [t * 1000 for kind in IMAGE_KINDS for t in best_per_kind.get(kind, [])]
        image_avg, image_best_avg = statistics.mean(image_times), statistics.mean(image_best)
        verdict = "OK" if image_best_avg <= 1 else "MISSED"
        print(
            f"image files (jpeg/png/tiff): {image_avg:.3f} ms average in the best pass, "
            f"{image_best_avg:.3f} ms best-of-{args.repeat} per file (target <= 1 ms): {verdict}"
        )

        print("\n== agreement of common fields with exiftool ==")
        approximate = exiftool_approximations(exiftool, files)
        compared = agreed = 0
        by_field: dict[str, list[int]] = {}
        mismatches: list[str] = []
        errors = 0
        for path, _kind, _written in files:
            result = ours[path.name]
            errors += sum(1 for c in result["containers"] if c["status"] == "error")
            mine, other = result["common"], exiftool_common(theirs.get(path.name, {}))
            for field in FIELDS:
                if field not in mine and field not in other:
                    continue
                if field == "duration" and path.name in approximate:
                    continue  # exiftool estimates it; not a reference
                ok = agree(field, mine.get(field), other.get(field))
                compared += 1
                agreed += ok
                by_field.setdefault(field, [0, 0])[0] += ok
                by_field[field][1] += 1
                if not ok and len(mismatches) < 12:
                    mismatches.append(f"  {path.name} {field}: ours={mine.get(field)!r} exiftool={other.get(field)!r}")
        for field, (ok, total) in by_field.items():
            print(f"{field:13} {ok:4}/{total:<4} {ok / total * 100:6.1f} %")
        share = agreed / compared * 100 if compared else 0.0
        print(f"overall       {agreed:4}/{compared:<4} {share:6.1f} % (target >= 95 %): {'OK' if share >= 95 else 'MISSED'}")
        print(f"container errors in the probe: {errors}")
        if approximate:
            print(f"not compared: duration of {len(approximate)} files exiftool only estimates ('(approx)', MP3 bitrate)")
        if mismatches:
            print("first mismatches:")
            print("\n".join(mismatches))
        print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if args.keep:
            print(f"files kept in {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
