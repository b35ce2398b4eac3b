"""Audio and video through ffmpeg, inside the sandboxed child (its limits and process
group apply to ffmpeg too). The input demuxer is pinned from the sniffed type, only the
file and pipe protocols are allowed, stdin is closed, progress comes from ``-progress``."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from conversions.converters.base import Context, ConversionFailed, Converter, Option
from fileconvert.sandbox import die_with_parent

AUDIO_FORMATS = ("mp3", "ogg", "wav", "flac", "m4a")
VIDEO_FORMATS = ("mp4", "webm")
DEMUXERS = {
    "mp3": "mp3",
    "ogg": "ogg",
    "wav": "wav",
    "flac": "flac",
    "m4a": "mov",
    "mp4": "mov",
    "webm": "matroska",
    "gif": "gif",
}
AUDIO_CODECS = {
    "mp3": ["-c:a", "libmp3lame"],
    "ogg": ["-c:a", "libvorbis"],
    "wav": ["-c:a", "pcm_s16le"],
    "flac": ["-c:a", "flac"],
    "m4a": ["-c:a", "aac"],
}
MUXERS = {"mp3": "mp3", "ogg": "ogg", "wav": "wav", "flac": "flac", "m4a": "ipod", "mp4": "mp4", "webm": "webm", "gif": "gif"}
LOSSLESS = {"wav", "flac"}

START = Option("start", "float", 0.0, 0, 86400, help="Start at this second.")
DURATION = Option("duration", "float", None, 0.1, 86400, help="Keep this many seconds (default: to the end).")
AUDIO_BITRATE = Option("audio_bitrate", "int", 192, 32, 320, help="Audio bitrate in kbit/s (lossy targets).")
SAMPLE_RATE = Option(
    "sample_rate", "choice", None, choices=("8000", "16000", "22050", "32000", "44100", "48000"), help="Output sample rate in Hz."
)
CHANNELS = Option("channels", "int", None, 1, 2, help="1 = mono, 2 = stereo.")
WIDTH = Option("width", "int", None, 16, 7680, help="Output width (height follows the aspect ratio unless given).")
HEIGHT = Option("height", "int", None, 16, 4320, help="Output height.")
FPS = Option("fps", "int", None, 1, 60, help="Frames per second (GIF default 10).")
VIDEO_BITRATE = Option("video_bitrate", "int", None, 100, 50000, help="Video bitrate in kbit/s (default: quality-based).")


def base_command(src: Path, source: str) -> list[str]:
    return [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        "file,pipe",
        "-f",
        DEMUXERS[source],
    ]


def probe_duration(src: Path, source: str, timeout: float) -> float:
    cmd = [
        "ffprobe",
        "-v",
        "error",
        "-protocol_whitelist",
        "file,pipe",
        "-f",
        DEMUXERS[source],
        "-show_entries",
        "format=duration:stream=codec_type,width,height",
        "-of",
        "json",
        f"file:{src}",
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=min(timeout, 60), stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise ConversionFailed("The media could not be probed in time.", "UNREADABLE_CONTENT") from None
    if done.returncode != 0:
        raise ConversionFailed(f"The media could not be read as {source}: {_tail(done.stderr)}", "UNREADABLE_CONTENT")
    try:
        info = json.loads(done.stdout or b"{}")
        return float(info.get("format", {}).get("duration") or 0)
    except (ValueError, TypeError):
        return 0.0


def _tail(stderr: bytes) -> str:
    text = stderr.decode(errors="replace").strip().splitlines()
    return (text[-1] if text else "unknown error")[:300]


def run_ffmpeg(cmd: list[str], total_seconds: float, ctx: Context) -> None:
    """Run ffmpeg, turning ``out_time_us`` progress lines into percentages."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, preexec_fn=die_with_parent
    )
    assert proc.stdout is not None and proc.stderr is not None
    for raw in proc.stdout:
        line = raw.decode(errors="replace").strip()
        if line.startswith("out_time_us=") and total_seconds > 0:
            with contextlib.suppress(ValueError):
                ctx.progress(int(line.split("=", 1)[1]) / 1e6, total_seconds)
    stderr = proc.stderr.read()
    if proc.wait() != 0:
        raise ConversionFailed(f"ffmpeg could not convert the media: {_tail(stderr)}", "CONVERSION_FAILED")


def _trim(options: dict[str, Any], duration: float) -> tuple[list[str], list[str], float]:
    before: list[str] = []
    after: list[str] = []
    start = float(options.get("start") or 0)
    if start:
        if duration and start >= duration:
            raise ConversionFailed(f"start ({start:g}s) is past the end ({duration:.2f}s).", "INVALID_TRIM")
        before = ["-ss", f"{start:.3f}"]
    remaining = max(duration - start, 0) if duration else 0
    if options.get("duration"):
        after = ["-t", f"{float(options['duration']):.3f}"]
        remaining = min(remaining, float(options["duration"])) if remaining else float(options["duration"])
    return before, after, remaining


class AudioConverter(Converter):
    name = "ffmpeg-audio"
    sources = AUDIO_FORMATS + VIDEO_FORMATS  # video -> audio extracts the sound track
    targets = AUDIO_FORMATS
    binaries = ("ffmpeg", "ffprobe")
    memory_bytes = 2 * 1024**3
    same_format = True

    def options_for(self, source: str, target: str) -> tuple[Option, ...]:
        out = [START, DURATION, SAMPLE_RATE, CHANNELS]
        if target not in LOSSLESS:
            out.insert(2, AUDIO_BITRATE)
        return tuple(out)

    def convert(self, src: Path, source: str, dst: Path, target: str, options: dict[str, Any], ctx: Context) -> dict[str, Any]:
        duration = probe_duration(src, source, ctx.timeout)
        before, after, expected = _trim(options, duration)
        cmd = [*base_command(src, source), *before, "-i", f"file:{src}", *after, "-vn", "-map_metadata", "0"]
        cmd += AUDIO_CODECS[target]
        if target not in LOSSLESS:
            cmd += ["-b:a", f"{int(options.get('audio_bitrate') or 192)}k"]
        if options.get("sample_rate"):
            cmd += ["-ar", str(options["sample_rate"])]
        if options.get("channels"):
            cmd += ["-ac", str(int(options["channels"]))]
        cmd += ["-progress", "pipe:1", "-f", MUXERS[target], "-y", f"file:{dst}"]
        run_ffmpeg(cmd, expected, ctx)
        return {"duration": round(probe_duration(dst, target, ctx.timeout), 3)}


class VideoConverter(Converter):
    """MP4 and WebM among themselves and to GIF; an (animated) GIF to MP4 or WebM."""

    name = "ffmpeg-video"
    sources = (*VIDEO_FORMATS, "gif")
    targets = (*VIDEO_FORMATS, "gif")
    binaries = ("ffmpeg", "ffprobe")
    memory_bytes = 3 * 1024**3
    same_format = True

    def handles(self, source: str, target: str) -> bool:
        return super().handles(source, target) and not (source == target == "gif")  # GIF to GIF: the image converter

    def options_for(self, source: str, target: str) -> tuple[Option, ...]:
        out = [START, DURATION, WIDTH, HEIGHT, FPS]
        if target != "gif":
            out += [VIDEO_BITRATE, AUDIO_BITRATE]
        return tuple(out)

    def convert(self, src: Path, source: str, dst: Path, target: str, options: dict[str, Any], ctx: Context) -> dict[str, Any]:
        duration = probe_duration(src, source, ctx.timeout)
        before, after, expected = _trim(options, duration)
        width, height = options.get("width"), options.get("height")
        filters = []
        if target == "gif":
            filters.append(f"fps={int(options.get('fps') or 10)}")
        elif options.get("fps"):
            filters.append(f"fps={int(options['fps'])}")
        if width or height:
            # Even sizes: most encoders need them.
            w = f"{int(width) // 2 * 2}" if width else "-2"
            h = f"{int(height) // 2 * 2}" if height else "-2"
            filters.append(f"scale={w}:{h}")
        elif target != "gif":
            filters.append("scale=trunc(iw/2)*2:trunc(ih/2)*2")  # a GIF may have odd sides; the encoders need even ones
        cmd = [*base_command(src, source), *before, "-i", f"file:{src}", *after, "-map_metadata", "0"]
        if filters:
            cmd += ["-vf", ",".join(filters)]
        if target == "gif":
            cmd += ["-an", "-loop", "0"]
        else:
            if target == "mp4":
                cmd += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart"]
            else:
                # yuv420p: a GIF's frames carry alpha, which libvpx cannot encode with its defaults
                cmd += ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p", "-c:a", "libopus"]
            if options.get("video_bitrate"):
                cmd += ["-b:v", f"{int(options['video_bitrate'])}k"]
            elif target == "webm":
                cmd += ["-b:v", "1M", "-crf", "10"]
            cmd += ["-b:a", f"{int(options.get('audio_bitrate') or 128)}k"]
        cmd += ["-progress", "pipe:1", "-f", MUXERS[target], "-y", f"file:{dst}"]
        run_ffmpeg(cmd, expected, ctx)
        facts: dict[str, Any] = {}
        if target != "gif":
            facts["duration"] = round(probe_duration(dst, target, ctx.timeout), 3)
        return facts
