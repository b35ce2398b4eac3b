"""What a converter is: formats in and out, option descriptors, what it needs installed.

Converters are plain classes with no Django in them: they run in a forked, limited
child process (``fileconvert.sandbox.run_forked``) and see only paths and options.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

GIB = 1024**3


class ConversionFailed(Exception):
    """The input cannot be converted (bad or hostile content): the job fails, no retry."""

    def __init__(self, message: str, code: str = "CONVERSION_FAILED") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class OptionInvalid(ValueError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_PAGES = re.compile(r"^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One option a converter accepts; ``describe()`` is what the API shows."""

    name: str
    type: str  # int | float | bool | string | char | choice | color | pages | file_ids
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    help: str = ""
    max_length: int = 200

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "default": self.default, "help": self.help}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out

    def coerce(self, value: Any) -> Any:
        if value is None:
            return self.default
        kind = self.type
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise OptionInvalid(self.name, "must be true or false")
        if kind in ("int", "float"):
            if isinstance(value, bool):
                raise OptionInvalid(self.name, f"must be a{'n integer' if kind == 'int' else ' number'}")
            try:
                number: float = int(str(value).strip()) if kind == "int" else float(str(value).strip())
            except ValueError:
                raise OptionInvalid(self.name, f"must be a{'n integer' if kind == 'int' else ' number'}") from None
            if number != number or number in (float("inf"), float("-inf")):
                raise OptionInvalid(self.name, "must be a finite number")
            if self.min is not None and number < self.min:
                raise OptionInvalid(self.name, f"must be at least {self.min:g}")
            if self.max is not None and number > self.max:
                raise OptionInvalid(self.name, f"must be at most {self.max:g}")
            return number
        if not isinstance(value, (str, int, float)) and kind != "file_ids":
            raise OptionInvalid(self.name, "must be a string")
        if kind == "file_ids":
            items = value if isinstance(value, list) else str(value).split(",")
            ids = [str(v).strip() for v in items if str(v).strip()]
            if not ids or len(ids) > 20 or any(len(i) > 40 for i in ids):
                raise OptionInvalid(self.name, "must name 1 to 20 file ids")
            return ids
        if kind == "char":  # not stripped: a space or a tab is a fine separator
            char = "\t" if str(value) == "\\t" else str(value)
            if len(char) != 1 or char in '\r\n"':
                raise OptionInvalid(self.name, 'must be one character (not a quote or a line break; "\\t" for a tab)')
            return char
        text = str(value).strip()
        if len(text) > self.max_length:
            raise OptionInvalid(self.name, f"must be at most {self.max_length} characters")
        if kind == "choice":
            assert self.choices is not None
            if text.lower() not in self.choices:
                raise OptionInvalid(self.name, f"must be one of {', '.join(self.choices)}")
            return text.lower()
        if kind == "color":
            if not _COLOR.match(text):
                raise OptionInvalid(self.name, "must be a #rgb or #rrggbb colour")
            return text
        if kind == "pages":
            spec = text.replace(" ", "")
            if not _PAGES.match(text) or not all(_page_range(part) for part in spec.split(",")):
                raise OptionInvalid(self.name, 'must be page numbers from 1 and ascending ranges such as "1-3,5"')
            return spec
        return text


def _page_range(part: str) -> tuple[int, int] | None:
    """``"2-4"`` -> (2, 4), ``"3"`` -> (3, 3); None unless 1 <= start <= end."""
    first, _, last = part.partition("-")
    start, end = int(first), int(last or first)
    return (start, end) if 1 <= start <= end else None


def parse_pages(spec: str | None, count: int) -> list[int]:
    """'1-3,5' -> [0, 1, 2, 4] (0-based) within ``count`` pages; None -> every page."""
    if not spec:
        return list(range(count))
    pages: list[int] = []
    for part in spec.split(","):
        bounds = _page_range(part)
        if bounds is None:
            raise ConversionFailed(f"Page range {part!r} is invalid.", "INVALID_PAGES")
        start, end = bounds
        if end > count:
            raise ConversionFailed(f"Page {end} does not exist (the document has {count}).", "INVALID_PAGES")
        pages.extend(range(start - 1, end))
    return pages


@dataclass
class Context:
    """What a converter may use besides its input: a work directory, limits, progress."""

    workdir: Path
    max_image_pixels: int = 80_000_000
    timeout: float = 600
    extra_inputs: list[tuple[Path, str]] = field(default_factory=list)  # (path, format) e.g. PDFs to merge
    report: Callable[[int], None] = lambda _pct: None
    source_name: str = ""  # the user's name of the source file (the input path is a storage or temporary name)
    # Directories a converter that lays documents out (LibreOffice) must not see: stored files,
    # other jobs' work, uploads in flight. Covered where the machine allows (office.isolation).
    private_dirs: tuple[str, ...] = ()

    def title_for(self, src: Path) -> str:
        """A document title for the output: the source's own name without its extension."""
        name = self.source_name or src.name
        return name.rsplit(".", 1)[0] if "." in name else name

    def progress(self, done: float, total: float) -> None:
        if total > 0:
            self.report(max(0, min(100, int(done * 100 / total))))


class Converter:
    name: ClassVar[str]
    sources: ClassVar[tuple[str, ...]]
    targets: ClassVar[tuple[str, ...]]
    options: ClassVar[tuple[Option, ...]] = ()
    binaries: ClassVar[tuple[str, ...]] = ()
    modules: ClassVar[tuple[str, ...]] = ()
    memory_bytes: ClassVar[int] = GIB
    # Formats this converter's output may feed into a second step (DOCX -> PDF -> PNG).
    chain_outputs: ClassVar[tuple[str, ...]] = ()
    same_format: ClassVar[bool] = False  # PNG -> PNG (resize) makes sense for images

    def handles(self, source: str, target: str) -> bool:
        return source in self.sources and target in self.targets and (source != target or self.same_format)

    def options_for(self, source: str, target: str) -> tuple[Option, ...]:
        return self.options

    def requirements(self) -> dict[str, dict[str, bool]]:
        return {
            "binaries": {b: shutil.which(b) is not None for b in self.binaries},
            "modules": {m: importlib.util.find_spec(m) is not None for m in self.modules},
        }

    def available(self) -> bool:
        needs = self.requirements()
        return all(needs["binaries"].values()) and all(needs["modules"].values())

    def convert(self, src: Path, source: str, dst: Path, target: str, options: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """Write ``dst``; return facts about the output (pages, width, rows, duration…)."""
        raise NotImplementedError
