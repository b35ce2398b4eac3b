"""The processing of small images: inspected in the worker against the sandboxed child, in one run.

    .venv/bin/python bench/inspect_images.py [--files 40]

``uploads.processing.file_process`` (claim, local copy with SHA-256, sniff, summary,
thumbnail, finish) on real files: 1024x683 JPEGs (the thumbnails ``bench/convert_images.py``
makes, each of which the product processes as an upload) and 600x400 PNGs. Each file once
with the inspection in this process (``fileconvert.imagebounds.small_raster``, decision
0013) and once in the sandboxed child (``python -m uploads.inspect_worker``, forced by
turning the bound off), interleaved file by file. Prints CPU per file (this process and
its children, which is where the child's interpreter start-up shows) and wall time per
file, and the ratio. The PostgreSQL database is a throw-away one beside ``DATABASE_URL``'s.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._conversions_env import BenchEnv, load


def cpu() -> tuple[float, float]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=40, help="files of each kind and each way")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    env = BenchEnv(name="inspect", redis_db=13)
    print(f"load average at start: {load()}  (cpus: {os.cpu_count()})")
    env.prepare()
    env.apply()
    from PIL import Image

    from bench._conversions_env import file_with_bytes, identity
    from bench.convert_images import make_jpeg
    from fileconvert import imagebounds
    from uploads import processing
    from uploads.models import FileStatus, StoredFile

    actor = identity()

    def thumbnail_jpeg(index: int) -> bytes:
        image = Image.open(io.BytesIO(make_jpeg(index, 3000, 2000)))
        image.draft("RGB", (1024, 683))
        out = io.BytesIO()
        image.resize((1024, 683), Image.Resampling.LANCZOS).save(out, "JPEG", quality=85)
        return out.getvalue()

    def png(index: int) -> bytes:
        out = io.BytesIO()
        Image.effect_noise((600, 400), 20 + index % 5).convert("RGB").save(out, "PNG")
        return out.getvalue()

    def stored(name: str, data: bytes) -> StoredFile:
        file = file_with_bytes(actor, name, data, status=FileStatus.PROCESSING)
        file.save()
        return file

    real_bound = imagebounds.small_raster
    try:
        for kind, make in (("1024x683 JPEG", thumbnail_jpeg), ("600x400 PNG", png)):
            bodies = [make(i) for i in range(args.files)]
            ext = "jpg" if "JPEG" in kind else "png"
            files = {way: [stored(f"{way}-{i}.{ext}", body) for i, body in enumerate(bodies)] for way in ("here", "child")}
            processing.file_process(file_id=stored(f"warm.{ext}", bodies[0]).pk)  # imports, connections
            spent = {way: {"own": 0.0, "children": 0.0, "wall": []} for way in files}
            for index in range(args.files):  # interleaved: a drifting load weighs on both ways
                for way in ("here", "child"):
                    imagebounds.small_raster = real_bound if way == "here" else (lambda *a, **k: False)
                    (own0, kids0), started = cpu(), time.perf_counter()
                    outcome = processing.file_process(file_id=files[way][index].pk)
                    wall, (own1, kids1) = time.perf_counter() - started, cpu()
                    assert outcome in ("staged", "active"), outcome
                    spent[way]["own"] += own1 - own0
                    spent[way]["children"] += kids1 - kids0
                    spent[way]["wall"].append(wall)
            here, child = (StoredFile.objects.get(pk=files[w][0].pk) for w in ("here", "child"))
            assert here.metadata == child.metadata and here.thumbnail_key and child.thumbnail_key
            per = {w: (s["own"] + s["children"]) * 1000 / args.files for w, s in spent.items()}
            for way, label in (("here", "in the worker"), ("child", "sandboxed child")):
                s = spent[way]
                print(
                    f"{kind:>14}, {label:<15}: CPU {per[way]:6.1f} ms per file "
                    f"(this process {s['own'] * 1000 / args.files:5.1f}, children {s['children'] * 1000 / args.files:5.1f}), "
                    f"wall median {statistics.median(s['wall']) * 1000:5.1f} ms"
                )
            print(f"{kind:>14}: CPU child/worker {per['child'] / per['here']:.1f}x")
    finally:
        imagebounds.small_raster = real_bound
        env.stop(keep=args.keep)
    print(f"load average at end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
