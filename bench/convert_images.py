"""Image conversions through the real job pipeline against a plain Pillow loop, in one run.

    .venv/bin/python bench/convert_images.py [--files 200] [--width 3000] [--height 2000] [--kinds webp,thumb] [--rounds 1]

N JPEGs of WxH become WebP and 1024-wide JPEG thumbnails twice: once in a plain Pillow
loop (multiprocessing, 2 processes = the same cores), once as conversion jobs (rows,
claim, sandboxed fork, storage, audit) run by a real Celery worker with 2 prefork
processes on a Redis broker (DB index 11; cache on 12) and PostgreSQL. Prints the wall
times and the pipeline/plain ratio per conversion (target <= 1.25), and checks that
every job succeeded with the same output size as the baseline. Thumbnails use Pillow's
JPEG draft mode (decode at 1/2, 1/4, 1/8 scale) in both. ``--rounds R`` repeats each
conversion's A-B-B-A R times on the same files (R x 200 jobs) and prints every round's
ratio, their median, and the ratio of the summed times: on a machine whose speed drifts by
tens of percent within minutes, one round's ratio moves by about 0.1.
"""

from __future__ import annotations

import argparse
import io
import itertools
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._conversions_env import BenchEnv, cpu_delta, cpu_seconds_by_group, load

THUMB_WIDTH = 1024


def make_jpeg(index: int, width: int, height: int) -> bytes:
    from PIL import Image, ImageFilter

    small = Image.merge("RGB", [Image.effect_noise((width // 8, height // 8), 60 + index % 7 * 5) for _ in range(3)])
    photo = small.resize((width, height), Image.Resampling.BICUBIC).filter(ImageFilter.SMOOTH)
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=90)
    return out.getvalue()


def plain_convert(args: tuple[str, str, str]) -> tuple[int, int]:
    """What a hand-written Pillow script would do, with the same settings as the converters."""
    from PIL import Image, ImageOps

    src, kind, out_dir = args
    with Image.open(src) as image:
        if kind == "thumb":
            box = (THUMB_WIDTH, round(image.height * THUMB_WIDTH / image.width))
            image.draft("RGB", box)
            frame = ImageOps.exif_transpose(image)
            frame = frame.resize(box, Image.Resampling.LANCZOS)
            frame.save(Path(out_dir) / (Path(src).stem + ".jpg"), "JPEG", quality=85)
        else:
            frame = ImageOps.exif_transpose(image)
            frame.save(Path(out_dir) / (Path(src).stem + ".webp"), "WEBP", quality=85, method=4)
        return frame.size


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--width", type=int, default=3000)
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--kinds", default="webp,thumb", help="which conversions to time: webp, thumb or both")
    parser.add_argument("--rounds", type=int, default=1, help="A-B-B-A rounds per conversion (ratios printed per round)")
    args = parser.parse_args()

    env = BenchEnv(name="convert", redis_db=11)
    print(f"load average at start: {load()}  (cpus: {os.cpu_count()})")
    env.prepare()
    env.apply()

    import bench._conversions_app  # noqa: F401  routes uploads processing away (see its docstring)
    from bench._conversions_env import file_with_bytes, identity
    from conversions import services
    from conversions.models import ConversionJob, JobStatus
    from fileconvert import storage
    from uploads.models import FileStatus, StoredFile

    actor = identity()
    print(f"making {args.files} JPEGs of {args.width}x{args.height} …", flush=True)
    started = time.perf_counter()
    files: list[StoredFile] = []
    for index in range(args.files):
        data = make_jpeg(index, args.width, args.height)
        files.append(
            file_with_bytes(
                actor, f"photo-{index:04d}.jpg", data, kind="jpeg", content_type="image/jpeg", status=FileStatus.ACTIVE
            )
        )
    StoredFile.objects.bulk_create(files)
    total_mib = sum(f.size or 0 for f in files) / 1024**2
    print(f"  {time.perf_counter() - started:.1f}s, {total_mib:.0f} MiB in storage")

    worker = env.start_worker(concurrency=2)
    results: dict[str, dict[str, float]] = {}
    try:
        # Warm the worker processes (imports, connections) with one job each way.
        warm = [
            services.job_create(actor=actor, source=files[0], target_format=t, options=o)
            for t, o in (("webp", {}), ("jpeg", {"width": 64}))
        ]
        _wait_jobs([j.pk for j in warm], ConversionJob, JobStatus)

        def run_plain(batch: list[StoredFile], kind: str) -> tuple[float, set]:
            with tempfile.TemporaryDirectory(dir=env.data_dir) as out_dir:
                started = time.perf_counter()
                with multiprocessing.get_context("fork").Pool(2) as pool:
                    work = [(str(storage.local_path(f.storage_key)), kind, out_dir) for f in batch]
                    sizes = pool.map(plain_convert, work, chunksize=1)
                return time.perf_counter() - started, set(sizes)

        cpu: dict[str, dict[str, float]] = {}

        def run_jobs(batch: list[StoredFile], target: str, options: dict) -> tuple[float, float, list]:
            before = cpu_seconds_by_group()
            started, cpu_started, wall_started = time.perf_counter(), time.process_time(), time.time()
            ids = [services.job_create(actor=actor, source=f, target_format=target, options=options).pk for f in batch]
            submitted, cpu_submit = time.perf_counter() - started, time.process_time() - cpu_started
            _wait_jobs(ids, ConversionJob, JobStatus)
            print(
                f"        bench CPU ms per job: submit {cpu_submit * 1000 / len(ids):.2f}, waiting "
                f"{(time.process_time() - cpu_started - cpu_submit) * 1000 / len(ids):.2f}"
            )
            # Until the last job finished (its finished_at, stamped by the worker a commit before
            # it is visible), not until a poll noticed: polling every 50 ms would add 25 ms a batch
            # on average (1 % of a batch) and cost the cores the workers use.
            jobs = list(ConversionJob.objects.filter(pk__in=ids))
            elapsed = max(j.finished_at for j in jobs).timestamp() - wall_started
            used = cpu.setdefault(target, dict.fromkeys(before, 0.0))
            for group, seconds in cpu_delta(before, cpu_seconds_by_group()).items():
                used[group] += seconds
            failed = [j for j in jobs if j.status != JobStatus.SUCCEEDED]
            assert not failed, [(j.pk, j.error_code, j.error_message) for j in failed[:3]]
            return elapsed, submitted, jobs

        half = len(files) // 2
        kinds = [k for k in (("webp", "webp", {}), ("thumb", "jpeg", {"width": THUMB_WIDTH})) if k[0] in args.kinds.split(",")]
        for kind, target, options in kinds:
            plain = piped = submitted = 0.0
            jobs: list = []
            rounds: list[float] = []
            for _ in range(args.rounds):
                # A B B A over two halves: a load that drifts during the run weighs on both sides alike.
                plain_a, sizes = run_plain(files[:half], kind)
                piped_a, submit_a, jobs_a = run_jobs(files[:half], target, options)
                piped_b, submit_b, jobs_b = run_jobs(files[half:], target, options)
                plain_b, sizes_b = run_plain(files[half:], kind)
                got = {(j.facts["width"], j.facts["height"]) for j in jobs_a + jobs_b}
                assert got == sizes | sizes_b, (got, sizes | sizes_b)
                rounds.append((piped_a + piped_b) / (plain_a + plain_b))
                plain, piped, submitted = plain + plain_a + plain_b, piped + piped_a + piped_b, submitted + submit_a + submit_b
                jobs += jobs_a + jobs_b
                gaps = _gaps(jobs_a, jobs_b)
                if args.rounds > 1:
                    print(
                        f"        round {len(rounds)}: ratio {rounds[-1]:.2f}x   halves: {piped_a / plain_a:.2f}x, "
                        f"{piped_b / plain_b:.2f}x",
                        flush=True,
                    )
            busy = sum((j.finished_at - j.started_at).total_seconds() for j in jobs)
            results[kind] = {"plain": plain, "pipeline": piped, "submit": submitted}
            spent = " ".join(f"{g} {v * 1000 / len(jobs):.1f}" for g, v in cpu[target].items() if v > 0.0005 * len(jobs))
            print(f"        CPU ms per job while the jobs ran, by process: {spent}")
            print(f"        jobs: mean run {busy / len(jobs) * 1000:.0f} ms (claim -> finished), parallelism {busy / piped:.2f}")
            print(f"        between jobs in one worker process (finished -> next claimed, last round): {gaps}")
            per_round = (
                f"rounds: median {statistics.median(rounds):.2f}x, range {min(rounds):.2f}-{max(rounds):.2f}x"
                if args.rounds > 1
                else ""
            )
            count = len(jobs)
            print(
                f"{kind:>6}: plain Pillow {plain:7.2f}s ({count / plain:6.1f}/s)   jobs {piped:7.2f}s "
                f"({count / piped:6.1f}/s, submit {submitted:.2f}s)   ratio {piped / plain:.2f}x (target <= 1.25)   "
                + (per_round or f"halves: {piped_a / plain_a:.2f}x, {piped_b / plain_b:.2f}x"),
                flush=True,
            )
        plain_all = sum(r["plain"] for r in results.values())
        piped_all = sum(r["pipeline"] for r in results.values())
        print(f"  both: ratio {piped_all / plain_all:.2f}x (target <= 1.25)")
        print(f"load average at end: {load()}")
    finally:
        env.stop(keep=args.keep)
        del worker
    return 0


def _gaps(*batches: list) -> str:
    """Median and p90 of the time a worker process spends between finishing one job and
    claiming its next (Celery's dispatch, the task's set-up and tear-down), in ms."""
    runs: dict[tuple[int, str], list] = {}
    for index, batch in enumerate(batches):
        for job in batch:
            runs.setdefault((index, job.claimed_by), []).append(job)
    gaps = []
    for run in runs.values():
        run.sort(key=lambda j: j.started_at)
        gaps += [(b.started_at - a.finished_at).total_seconds() * 1000 for a, b in itertools.pairwise(run)]
    if not gaps:
        return "n/a"
    gaps.sort()
    return f"median {gaps[len(gaps) // 2]:.1f} ms, p90 {gaps[len(gaps) * 9 // 10]:.1f} ms over {len(gaps)}"


def _wait_jobs(ids: list[str], model, status, timeout: float = 3600) -> None:
    """Until none of the batch is queued or running. Every earlier batch has finished when a
    batch is submitted, so "no active job" is the partial index ``job_active_idx`` (one index
    probe), not a count over an IN list of the batch's ids compiled and run 5 times a
    second by this process and PostgreSQL on the cores the workers need."""
    deadline = time.monotonic() + timeout
    active = [status.QUEUED, status.RUNNING]
    while time.monotonic() < deadline:
        if not model.objects.filter(status__in=active).exists():
            break
        time.sleep(0.2)  # the batch's time is its last finished_at: a poll only has to notice
    else:
        raise RuntimeError("jobs did not finish in time")
    final = [status.SUCCEEDED, status.FAILED, status.CANCELED]
    assert model.objects.filter(pk__in=ids, status__in=final).count() == len(ids), "jobs of the batch are missing"


if __name__ == "__main__":
    sys.exit(main())
