"""The converters and the capability graph built from those that can run here.

A route is one converter (``png -> webp``) or, where none goes directly, a chain of
two through an intermediate a converter declares as chainable (``docx -> pdf -> png``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conversions.converters.base import Context, ConversionFailed, Converter, Option, OptionInvalid
from conversions.converters.data import DataConverter
from conversions.converters.images import ImageConverter, ImageToPdf
from conversions.converters.media import AudioConverter, VideoConverter
from conversions.converters.office import HtmlToPdf, OfficeToPdf, TextToPdf
from conversions.converters.pdf import PdfPages, PdfToImage, PdfToText
from conversions.converters.text import HtmlToText, MarkdownToHtml

__all__ = ["Context", "ConversionFailed", "Converter", "Option", "OptionInvalid", "Route", "Step"]

ALL_CONVERTERS: tuple[Converter, ...] = (
    ImageConverter(),
    ImageToPdf(),
    PdfToImage(),
    PdfToText(),
    PdfPages(),
    DataConverter(),
    MarkdownToHtml(),
    HtmlToText(),
    AudioConverter(),
    VideoConverter(),
    OfficeToPdf(),
    TextToPdf(),
    HtmlToPdf(),
)

# Names clients may use for a format, and the canonical id (the sniffed ``kind``).
ALIASES = {"jpg": "jpeg", "tif": "tiff", "yml": "yaml", "md": "markdown", "txt": "text", "htm": "html", "jsonl": "ndjson"}


def canonical(fmt: str) -> str:
    name = (fmt or "").strip().lower().lstrip(".")
    return ALIASES.get(name, name)


@dataclass(frozen=True)
class Step:
    converter: Converter
    source: str
    target: str


@dataclass(frozen=True)
class Route:
    steps: tuple[Step, ...]

    @property
    def via(self) -> str | None:
        return self.steps[0].target if len(self.steps) > 1 else None

    @property
    def last(self) -> Step:
        return self.steps[-1]

    def options(self) -> tuple[Option, ...]:
        """The options a client sets: those of the step that makes the target."""
        return self.last.converter.options_for(self.last.source, self.last.target)

    def memory_bytes(self) -> int:
        return max(s.converter.memory_bytes for s in self.steps)


@functools.cache
def available_converters() -> tuple[Converter, ...]:
    return tuple(c for c in ALL_CONVERTERS if c.available())


@functools.cache
def preload() -> None:
    """Import what the converters use in the long-lived parent (the worker process), so each
    forked child starts with it in memory instead of importing it again."""
    import importlib

    for converter in available_converters():
        for module in converter.modules:
            importlib.import_module(module)
    from PIL import Image

    Image.init()  # registers every plugin: a child's first Image.open would do it otherwise
    if any(isinstance(c, OfficeToPdf) for c in available_converters()):
        from conversions.converters import office

        # Probed once here, not in every forked child (a probe is two short subprocesses).
        office.confinement_prefix() or office.network_isolation_prefix()
    for name in ("pypdf", "pypdfium2", "openpyxl", "defusedxml.ElementTree", "markdown_it", "nh3"):
        try:
            importlib.import_module(name)
        except ImportError:
            continue


def _direct(source: str, target: str) -> Step | None:
    for converter in available_converters():
        if converter.handles(source, target):
            return Step(converter, source, target)
    return None


@functools.cache
def graph() -> dict[str, dict[str, Route]]:
    """source -> target -> route, over the converters that can run on this machine."""
    formats = sorted({f for c in available_converters() for f in (*c.sources, *c.targets)})
    out: dict[str, dict[str, Route]] = {}
    for source in formats:
        targets: dict[str, Route] = {}
        for target in formats:
            step = _direct(source, target)
            if step:
                targets[target] = Route((step,))
        for middle, route in list(targets.items()):
            if middle not in route.last.converter.chain_outputs:
                continue
            for target in formats:
                if target in targets or target in (source, middle):
                    continue
                second = _direct(middle, target)
                if second and second.converter is not route.last.converter:
                    targets[target] = Route((route.last, second))
        if targets:
            out[source] = dict(sorted(targets.items()))
    return out


def route_for(source: str, target: str) -> Route | None:
    return graph().get(source, {}).get(target)


def targets_of(source: str) -> list[str]:
    return list(graph().get(source, {}))


def validate_options(route: Route, raw: dict[str, Any]) -> dict[str, Any]:
    """Coerced options with defaults filled; OptionInvalid names the first bad one."""
    if not isinstance(raw, dict):
        raise OptionInvalid("options", "must be an object")
    known = {o.name: o for o in route.options()}
    for name in raw:
        if name not in known:
            accepted = ", ".join(known) or "none"
            pair = f"{route.last.source} -> {route.last.target}"
            raise OptionInvalid(str(name), f"is not an option of {pair} (accepted: {accepted})")
    return {name: option.coerce(raw.get(name)) for name, option in known.items()}


def run_route(route: Route, src: Path, options: dict[str, Any], ctx: Context, out_dir: Path) -> dict[str, Any]:
    """Run every step; called inside the sandboxed child. Returns the output path and facts."""
    current, facts = src, {}
    count = len(route.steps)
    report = ctx.report
    for index, step in enumerate(route.steps):
        dst = out_dir / f"step{index + 1}.{step.target}"
        defaults = {o.name: o.default for o in step.converter.options_for(step.source, step.target)}
        step_options = options if index == count - 1 else defaults

        def scaled(pct: int, index: int = index) -> None:
            report((index * 100 + pct) // count)

        ctx.report = scaled
        facts = step.converter.convert(current, step.source, dst, step.target, step_options, ctx)
        scaled(100)
        if not dst.is_file() or dst.stat().st_size == 0:
            raise ConversionFailed("The converter produced no output.", "EMPTY_OUTPUT")
        current = dst
    ctx.report = report
    return {"path": str(current), "facts": facts}
