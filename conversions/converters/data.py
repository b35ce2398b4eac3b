"""Tabular and structured data among CSV, TSV, JSON, NDJSON, XLSX, XML and YAML.

Everything becomes a list of records (dicts) in between. XML goes through defusedxml,
YAML through ``safe_load``, XLSX through openpyxl after its ZIP directory is checked
for bombs (sizes and entry counts counted before anything is inflated).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from conversions.converters.base import Context, ConversionFailed, Converter, Option

DATA_FORMATS = ("csv", "tsv", "json", "ndjson", "xlsx", "xml", "yaml")
MAX_XLSX_UNCOMPRESSED = 512 * 1024**2
MAX_XLSX_ENTRIES = 5000
MAX_XLSX_RATIO = 200
_XML_TAG = re.compile(r"[^A-Za-z0-9_.-]")

DELIMITER = Option(
    "delimiter",
    "char",
    None,
    help='Field separator of CSV input/output: one character, "\\t" for a tab (default , for CSV, tab for TSV).',
)
ENCODING = Option(
    "encoding",
    "choice",
    "utf-8",
    choices=("utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252", "ascii"),
    help="Text encoding of the input (CSV, TSV, NDJSON, JSON, XML, YAML).",
)
SHEET = Option("sheet", "string", None, help="Worksheet to read (name or 1-based number; default: the first).")
PRETTY = Option("pretty", "bool", True, help="Indent JSON / YAML output.")
FLATTEN = Option("flatten", "bool", True, help='Nested objects become "a.b" columns in tabular output.')
INFER = Option("infer_types", "bool", True, help="Read numbers and booleans in CSV/TSV/XLSX text cells as such.")
ROOT = Option("root", "string", "records", help="Root element name of XML output.")


def _text(path: Path, encoding: str) -> io.TextIOWrapper:
    return open(path, encoding=encoding, newline="")


def _infer(value: str) -> Any:
    text = value.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if re.fullmatch(r"-?(0|[1-9]\d{0,17})", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+([eE][-+]?\d+)?", text):
        return float(text)
    return value


def flatten(record: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(record, dict):
        return {prefix or "value": record}
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _records(data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        # {"items": [...]} style documents: the single list inside, else the object itself.
        lists = [v for v in data.values() if isinstance(v, list)]
        return lists[0] if len(data) == 1 and lists else [data]
    return [data]


# --- readers -----------------------------------------------------------------------------


# Progress is reported every this many rows (a report is cheap, but not free).
EVERY = 1000
Progress = Callable[[float], None] | None


def _read_so_far(fh: io.TextIOWrapper) -> float:
    """How far into its file a text handle has read (0..1), from the binary position."""
    size = os.fstat(fh.fileno()).st_size or 1
    return min(fh.buffer.tell() / size, 1.0)


def _delimiter(options: dict[str, Any], fmt: str) -> str:
    """One character, checked at submit (``Option`` type ``char``); ``\\t`` as jobs queued
    before that check stored it."""
    delimiter = options.get("delimiter") or ("\t" if fmt == "tsv" else ",")
    return "\t" if delimiter == "\\t" else delimiter


def read_delimited(path: Path, fmt: str, options: dict[str, Any], progress: Progress = None) -> list[dict[str, Any]]:
    delimiter = _delimiter(options, fmt)
    infer = options.get("infer_types", True)
    with _text(path, options.get("encoding") or "utf-8") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        rows = []
        for done, row in enumerate(reader, start=1):
            rows.append({str(k): (_infer(v) if infer and isinstance(v, str) else v) for k, v in row.items() if k is not None})
            if progress and done % EVERY == 0:
                progress(_read_so_far(fh))
    return rows


def read_xlsx(path: Path, options: dict[str, Any], progress: Progress = None) -> list[dict[str, Any]]:
    check_zip(path)
    # A file object: given a path, openpyxl would judge the file by its extension.
    with open(path, "rb") as handle:
        from openpyxl import load_workbook

        try:
            book = load_workbook(handle, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
            raise ConversionFailed(f"The workbook could not be read: {exc}", "UNREADABLE_CONTENT") from None
        try:
            return _sheet_records(book, options.get("sheet"), progress)
        finally:
            book.close()


def _sheet_records(book: Any, wanted: str | None, progress: Progress = None) -> list[dict[str, Any]]:
    if wanted:
        if wanted.isdigit() and 1 <= int(wanted) <= len(book.sheetnames):
            sheet = book.worksheets[int(wanted) - 1]
        elif wanted in book.sheetnames:
            sheet = book[wanted]
        else:
            raise ConversionFailed(f"There is no sheet {wanted!r} (sheets: {', '.join(book.sheetnames)}).", "INVALID_SHEET")
    else:
        sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        return []
    names = [str(h) if h is not None else f"column_{i + 1}" for i, h in enumerate(header)]
    total = sheet.max_row or 0  # from the sheet's dimension record, when it has one
    out = []
    for done, row in enumerate(rows, start=2):
        if progress and total and done % EVERY == 0:
            progress(min(done / total, 1.0))
        if row is None or all(v is None for v in row):
            continue
        out.append({names[i]: (v.isoformat() if hasattr(v, "isoformat") else v) for i, v in enumerate(row) if i < len(names)})
    return out


def check_zip(path: Path) -> None:
    """Refuse ZIP bombs before inflating anything: entries, total size and ratio."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ConversionFailed(f"The file is not a valid ZIP container: {exc}", "UNREADABLE_CONTENT") from None
    if len(infos) > MAX_XLSX_ENTRIES:
        raise ConversionFailed("The workbook has too many parts.", "ARCHIVE_TOO_LARGE")
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos) or 1
    if total > MAX_XLSX_UNCOMPRESSED or (total > 10 * 1024**2 and total / packed > MAX_XLSX_RATIO):
        raise ConversionFailed("The workbook inflates to too much data.", "ARCHIVE_TOO_LARGE")


def read_xml(path: Path) -> list[dict[str, Any]]:
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        root = ElementTree.parse(path).getroot()
    except (DefusedXmlException, ElementTree.ParseError, ValueError) as exc:
        raise ConversionFailed(f"The XML was refused: {exc}", "UNREADABLE_CONTENT") from None

    def value(element: Any) -> Any:
        children = list(element)
        if not children and not element.attrib:
            return (element.text or "").strip()
        out: dict[str, Any] = {f"@{k}": v for k, v in element.attrib.items()}
        for child in children:
            item = value(child)
            if child.tag in out:
                if not isinstance(out[child.tag], list) or child.tag not in _lists:
                    out[child.tag] = [out[child.tag]]
                    _lists.add(child.tag)
                out[child.tag].append(item)
            else:
                out[child.tag] = item
        if not children and (element.text or "").strip():
            out["#text"] = element.text.strip()
        return out

    _lists: set[str] = set()
    return [value(child) for child in root]


def read_records(path: Path, fmt: str, options: dict[str, Any], progress: Progress = None) -> list[Any]:
    """The records of a data file; ``progress(fraction)`` as it reads, for the formats read
    row by row (CSV, TSV, NDJSON, XLSX; a JSON, YAML or XML document is parsed at once)."""
    encoding = options.get("encoding") or "utf-8"
    try:
        if fmt in ("csv", "tsv"):
            return read_delimited(path, fmt, options, progress)
        if fmt == "xlsx":
            return read_xlsx(path, options, progress)
        if fmt == "xml":
            return read_xml(path)
        with _text(path, encoding) as fh:
            if fmt == "json":
                return _records(json.load(fh))
            if fmt == "ndjson":
                records = []
                for done, line in enumerate(fh, start=1):
                    if line.strip():
                        records.append(json.loads(line))
                    if progress and done % EVERY == 0:
                        progress(_read_so_far(fh))
                return records
            if fmt == "yaml":
                import yaml

                return _records(yaml.safe_load(fh))
    except UnicodeDecodeError as exc:
        raise ConversionFailed(f"The text is not valid {encoding}: {exc.reason}.", "BAD_ENCODING") from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise ConversionFailed(f"The {fmt.upper()} could not be parsed: {exc}", "UNREADABLE_CONTENT") from None
    except Exception as exc:
        if type(exc).__module__.startswith("yaml"):
            raise ConversionFailed(f"The YAML could not be parsed: {exc}", "UNREADABLE_CONTENT") from None
        raise
    raise ConversionFailed(f"Cannot read {fmt}.", "UNSUPPORTED_FORMAT")


# --- writers -----------------------------------------------------------------------------


def _columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _tabular(records: list[Any], do_flatten: bool) -> list[dict[str, Any]]:
    return [flatten(r) if do_flatten else (r if isinstance(r, dict) else {"value": r}) for r in records]


def _xml_name(name: str) -> str:
    cleaned = _XML_TAG.sub("_", str(name)) or "field"
    return cleaned if cleaned[0].isalpha() or cleaned[0] == "_" else f"_{cleaned}"


def write_records(records: list[Any], dst: Path, fmt: str, options: dict[str, Any], ctx: Context) -> None:
    total = max(len(records), 1)
    pretty = options.get("pretty", True)
    if fmt in ("csv", "tsv"):
        rows = _tabular(records, options.get("flatten", True))
        delimiter = _delimiter(options, fmt)
        with open(dst, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=_columns(rows), delimiter=delimiter, extrasaction="ignore")
            writer.writeheader()
            for done, row in enumerate(rows, start=1):
                writer.writerow({k: _cell(v) for k, v in row.items()})
                if done % EVERY == 0:
                    ctx.progress(done, total)
    elif fmt == "json":
        # Record by record (progress), the same text as json.dump of the list.
        with open(dst, "w", encoding="utf-8") as fh:
            if not records:
                fh.write("[]")
            for done, record in enumerate(records, start=1):
                text = json.dumps(record, ensure_ascii=False, indent=2 if pretty else None, default=str)
                if pretty:
                    fh.write(("[\n  " if done == 1 else ",\n  ") + text.replace("\n", "\n  "))
                else:
                    fh.write(("[" if done == 1 else ", ") + text)
                if done % EVERY == 0:
                    ctx.progress(done, total)
            if records:
                fh.write("\n]" if pretty else "]")
    elif fmt == "ndjson":
        with open(dst, "w", encoding="utf-8") as fh:
            for done, record in enumerate(records, start=1):
                fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
                if done % EVERY == 0:
                    ctx.progress(done, total)
    elif fmt == "yaml":
        import yaml

        # One item of the block sequence at a time, the same text as the whole list's, when
        # every record is an object or a list (a list of scalars alone is one flow sequence,
        # and so is everything without ``pretty``: those are written at once).
        by_record = pretty and bool(records) and all(isinstance(r, (dict, list)) for r in records)
        with open(dst, "w", encoding="utf-8") as fh:
            if not by_record:
                yaml.safe_dump(records, fh, allow_unicode=True, sort_keys=False, default_flow_style=None if pretty else True)
            for done, record in enumerate(records if by_record else [], start=1):
                yaml.safe_dump([record], fh, allow_unicode=True, sort_keys=False, default_flow_style=None)
                if done % EVERY == 0:
                    ctx.progress(done, total)
    elif fmt == "xlsx":
        from openpyxl import Workbook

        rows = _tabular(records, options.get("flatten", True))
        book = Workbook(write_only=True)
        sheet = book.create_sheet(title=(options.get("sheet") or "Sheet1")[:31])
        columns = _columns(rows)
        sheet.append(columns)
        for done, row in enumerate(rows, start=1):
            sheet.append([_cell(row.get(c)) for c in columns])
            if done % EVERY == 0:
                ctx.progress(done, total)
        book.save(dst)
    elif fmt == "xml":
        from xml.etree.ElementTree import Element, ElementTree, SubElement, indent

        root = Element(_xml_name(options.get("root") or "records"))

        def fill(parent: Any, value: Any) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(item, list):
                        for element in item:
                            fill(SubElement(parent, _xml_name(key)), element)
                    else:
                        fill(SubElement(parent, _xml_name(key)), item)
            elif value is not None:
                parent.text = str(value)

        for done, record in enumerate(records, start=1):
            fill(SubElement(root, "record"), record)
            if done % EVERY == 0:
                ctx.progress(done, total + total // 10)  # the document is written at the end
        tree = ElementTree(root)
        if pretty:
            indent(tree)
        tree.write(dst, encoding="utf-8", xml_declaration=True)
    else:
        raise ConversionFailed(f"Cannot write {fmt}.", "UNSUPPORTED_FORMAT")


class DataConverter(Converter):
    name = "data"
    sources = DATA_FORMATS
    targets = DATA_FORMATS
    modules = ("openpyxl", "defusedxml", "yaml")

    def options_for(self, source: str, target: str) -> tuple[Option, ...]:
        out: list[Option] = []
        if source in ("csv", "tsv") or target in ("csv", "tsv"):
            out.append(DELIMITER)
        if source != "xlsx":
            out.append(ENCODING)
        if source == "xlsx" or target == "xlsx":
            out.append(SHEET)
        if target in ("json", "yaml", "xml"):
            out.append(PRETTY)
        if target in ("csv", "tsv", "xlsx"):
            out.append(FLATTEN)
        if source in ("csv", "tsv"):
            out.append(INFER)
        if target == "xml":
            out.append(ROOT)
        return tuple(out)

    def convert(self, src: Path, source: str, dst: Path, target: str, options: dict[str, Any], ctx: Context) -> dict[str, Any]:
        # Progress: reading is the first half, writing the second (rows, or bytes read).
        records = read_records(src, source, options, lambda fraction: ctx.progress(fraction, 2))
        ctx.progress(1, 2)
        # One delimiter option: it describes the input when the input is delimited.
        out_options = {**options, "delimiter": None} if source in ("csv", "tsv") else options
        writing = dataclasses.replace(ctx, report=lambda pct: ctx.report(50 + pct // 2))
        write_records(records, dst, target, out_options, writing)
        ctx.progress(1, 1)
        return {"rows": len(records)}
