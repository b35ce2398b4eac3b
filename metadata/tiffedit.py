"""Metadata write-back for TIFF without touching the image data.

The file is copied and edited in place: the first image directory (IFD0) and the Exif/GPS
sub-directories are rebuilt at the end of the file with the kept, removed and new tags;
the old directories and the values of removed tags are overwritten with zeros (so a
removed serial or GPS position is gone from the bytes, not just unreferenced); strips and
tiles are never read or rewritten. An EXIF-style thumbnail directory after IFD0 is dropped
when scrubbing; further pages of a multi-page TIFF keep their own directories.
"""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from typing import IO, Any

from metadata import containers as c
from metadata.capabilities import ANY, EXIF_SETTABLE

_UNIT = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
XMP_TAG, IPTC_TAG, PHOTOSHOP_TAG, ICC_TAG = 700, 33723, 34377, 34675
NEW_SUBFILE_TYPE = 0x00FE
THUMB_OFFSET, THUMB_LENGTH = 0x0201, 0x0202
# IFD0 tags that describe rather than lay out the image (the editable ones).
DESCRIPTIVE = {0x010D, 0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x013C, 0x8298, 0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F}


@dataclass
class Entry:
    tag: int
    typ: int
    count: int
    field: bytes  # the 4-byte value/offset field as stored
    at: int | None  # where the value lives when it does not fit in the field
    length: int


class TiffFile:
    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        fh.seek(0, 2)
        self.size = fh.tell()
        fh.seek(0)
        header = fh.read(8)
        if header[:4] == b"II*\x00":
            self.e = "<"
        elif header[:4] == b"MM\x00*":
            self.e = ">"
        elif header[:4] in (b"II+\x00", b"MM\x00+"):
            raise c.ContainerError("UNSUPPORTED", "BigTIFF metadata cannot be edited.")
        else:
            raise c.ContainerError("MALFORMED_TIFF", "Not a TIFF file.")
        self.ifd0 = struct.unpack(self.e + "I", header[4:8])[0]

    def read_ifd(self, offset: int) -> tuple[list[Entry], int]:
        if offset < 8 or offset + 2 > self.size:
            raise c.ContainerError("MALFORMED_TIFF", "A TIFF directory points outside the file.")
        self.fh.seek(offset)
        (count,) = struct.unpack(self.e + "H", self.fh.read(2))
        if count > c.MAX_IFD_ENTRIES or offset + 2 + 12 * count + 4 > self.size:
            raise c.ContainerError("MALFORMED_TIFF", "A TIFF directory is truncated.")
        raw = self.fh.read(12 * count + 4)
        entries = []
        for i in range(count):
            tag, typ, n = struct.unpack_from(self.e + "HHI", raw, 12 * i)
            field = raw[12 * i + 8 : 12 * i + 12]
            length = _UNIT.get(typ, 1) * n
            at = struct.unpack(self.e + "I", field)[0] if length > 4 else None
            if at is not None and at + length > self.size:
                raise c.ContainerError("MALFORMED_TIFF", "A TIFF tag points outside the file.")
            entries.append(Entry(tag, typ, n, field, at, length))
        return entries, struct.unpack_from(self.e + "I", raw, 12 * count)[0]

    def value(self, entry: Entry) -> bytes:
        if entry.at is None:
            return entry.field[: entry.length]
        self.fh.seek(entry.at)
        return self.fh.read(entry.length)

    def pointer(self, entry: Entry) -> int:
        return (
            struct.unpack(self.e + "I", entry.field)[0]
            if entry.typ in (4, 13)
            else struct.unpack(self.e + "H", entry.field[:2])[0]
        )

    def numbers(self, entry: Entry) -> list[int]:
        fmt = {3: "H", 4: "I", 13: "I"}.get(entry.typ)
        if fmt is None or entry.count > 1_000_000:
            return []
        return list(struct.unpack(self.e + fmt * entry.count, self.value(entry)))

    def zero(self, at: int, length: int) -> None:
        if length > 0 and at + length <= self.size:
            self.fh.seek(at)
            self.fh.write(b"\x00" * length)

    def zero_entry_value(self, entry: Entry) -> None:
        if entry.at is not None:
            self.zero(entry.at, entry.length)

    def zero_ifd(self, offset: int, entries: list[Entry]) -> None:
        self.zero(offset, 2 + 12 * len(entries) + 4)

    def append_ifd(self, entries: list[Entry], next_ifd: int, new_values: dict[int, bytes]) -> int:
        """Write a directory (and the values of new tags) at the end of the file; its offset."""
        self.fh.seek(0, 2)
        if self.fh.tell() % 2:
            self.fh.write(b"\x00")
        values_at = self.fh.tell()
        fields: dict[int, bytes] = {}
        for tag, data in sorted(new_values.items()):
            if len(data) <= 4:
                fields[tag] = data.ljust(4, b"\x00")
                continue
            fields[tag] = struct.pack(self.e + "I", self.fh.tell())
            self.fh.write(data + (b"\x00" if len(data) % 2 else b""))
        del values_at
        offset = self.fh.tell()
        ordered = sorted(entries, key=lambda en: en.tag)
        out = struct.pack(self.e + "H", len(ordered))
        for en in ordered:
            out += struct.pack(self.e + "HHI", en.tag, en.typ, en.count) + fields.get(en.tag, en.field)
        self.fh.write(out + struct.pack(self.e + "I", next_ifd))
        self.size = self.fh.tell()
        return offset


def _ascii(tag: int, text: str) -> tuple[Entry, bytes]:
    data = text.encode("utf-8") + b"\x00"
    return Entry(tag, 2, len(data), b"", None, len(data)), data


class _Once:
    """The report, with each (section, key, action) said once for all pages."""

    def __init__(self, report: Any) -> None:
        self.report, self.seen = report, set()
        self.changes = 0

    def removed(self, section: str, key: str, reason: str) -> None:
        self.changes += 1
        if (section, key, "removed") not in self.seen:
            self.seen.add((section, key, "removed"))
            self.report.removed(section, key, reason)

    def set(self, section: str, key: str, value: str) -> None:
        self.changes += 1
        self.report.set(section, key, value)


MAX_PAGES = 10_000


def edit(src: str, dst: str, plan: Any, report: Any) -> None:
    shutil.copyfile(src, dst)
    once = _Once(report)
    with open(dst, "r+b") as fh:
        tiff = TiffFile(fh)
        pages: list[int] = []
        thumbnails: list[tuple[int, list[Entry]]] = []
        offset, seen = tiff.ifd0, set()
        while offset and len(pages) < MAX_PAGES:
            if offset in seen:
                raise c.ContainerError("MALFORMED_TIFF", "The TIFF directory chain loops.")
            seen.add(offset)
            entries, following = tiff.read_ifd(offset)
            tags = {en.tag: en for en in entries}
            is_thumbnail = pages and (
                THUMB_OFFSET in tags or (NEW_SUBFILE_TYPE in tags and tiff.pointer(tags[NEW_SUBFILE_TYPE]) & 1)
            )
            if is_thumbnail and (plan.strip_all or plan.anonymize):
                thumbnails.append((offset, entries))
                once.removed("exif", "<thumbnail>", "strip_all" if plan.strip_all else "anonymize")
            else:
                pages.append(offset)
            offset = following
        plans = [_plan_page(tiff, page, plan, once, first=i == 0) for i, page in enumerate(pages)]
        for name in plan.values.get("exif", {}):
            if name not in EXIF_SETTABLE:
                report.skip("exif", name, f"{name} cannot be set in exif of a tiff file")
        if not once.changes:
            return  # nothing to do: the copy stays byte for byte
        next_offset = 0
        for page_plan in reversed(plans):
            next_offset = page_plan.write(tiff, next_offset)
        fh.seek(4)
        fh.write(struct.pack(tiff.e + "I", next_offset))
        old_ifd0, tiff.ifd0 = tiff.ifd0, next_offset
        del old_ifd0
        for page_plan in plans:
            page_plan.scrub(tiff)
        if (plan.strip_all or plan.anonymize) and not scrub_unreferenced(tiff):
            report.skip(
                "tiff",
                "<unreferenced bytes>",
                "the file has SubIFDs or private pointers; bytes outside its directories were not cleared",
            )
        for offset, entries in thumbnails:
            tags = {en.tag: en for en in entries}
            if THUMB_OFFSET in tags and THUMB_LENGTH in tags:
                tiff.zero(tiff.pointer(tags[THUMB_OFFSET]), tiff.pointer(tags[THUMB_LENGTH]))
            if 273 in tags and 279 in tags:  # a reduced-resolution image stored in strips
                for at, length in zip(tiff.numbers(tags[273]), tiff.numbers(tags[279]), strict=False):
                    tiff.zero(at, length)
            for en in entries:
                tiff.zero_entry_value(en)
            tiff.zero_ifd(offset, entries)


@dataclass
class _PagePlan:
    offset: int
    entries: list[Entry]
    kept: list[Entry]
    new_values: dict[int, bytes]
    subs: dict[int, tuple[int, list[Entry], list[Entry], dict[int, bytes]]]  # tag → (old offset, old, kept, new)
    dropped: list[Entry]

    def write(self, tiff: TiffFile, next_offset: int) -> int:
        kept = [en for en in self.kept if en.tag not in self.subs]
        for tag, (_old, _entries, sub_kept, sub_new) in self.subs.items():
            if sub_kept:
                sub_offset = tiff.append_ifd(sub_kept, 0, sub_new)
                kept.append(Entry(tag, 4, 1, struct.pack(tiff.e + "I", sub_offset), None, 4))
        return tiff.append_ifd(kept, next_offset, self.new_values)

    def scrub(self, tiff: TiffFile) -> None:
        tiff.zero_ifd(self.offset, self.entries)
        for old_offset, sub_entries, _kept, _new in self.subs.values():
            if old_offset:
                tiff.zero_ifd(old_offset, sub_entries)
        for entry in self.dropped:
            tiff.zero_entry_value(entry)


def _plan_page(tiff: TiffFile, offset: int, plan: Any, report: _Once, *, first: bool) -> _PagePlan:
    """What one page's directory becomes; sets apply to the first page only."""
    from PIL.ExifTags import GPSTAGS, TAGS

    from metadata.writers import ANON_EXIF  # one list of what anonymize removes

    entries, _ = tiff.read_ifd(offset)
    sets = dict(plan.values.get("exif", {})) if first else {}
    page = _PagePlan(offset, entries, [], {}, {}, [])

    def drop(entry: Entry, section: str, name: str, reason: str) -> None:
        page.dropped.append(entry)
        report.removed(section, name, reason)

    for entry in entries:
        name = TAGS.get(entry.tag, f"0x{entry.tag:04x}")
        if entry.tag in (c.IFD_EXIF, c.IFD_GPS):
            sub_entries, sub_kept, sub_new, replaced = _plan_sub(tiff, entry, plan, report, sets, drop, TAGS, GPSTAGS, ANON_EXIF)
            page.subs[entry.tag] = (tiff.pointer(entry), sub_entries, sub_kept, sub_new)
            page.dropped += replaced
            page.kept.append(entry)
            continue
        if entry.tag in DESCRIPTIVE:
            reason = plan.removal_reason("exif", name, anonymous=name in ANON_EXIF)
            if reason:
                drop(entry, "exif", name, reason)
                continue
            if name in sets and EXIF_SETTABLE.get(name, (None,))[0] == 0:
                page.dropped.append(entry)  # replaced below
                continue
        elif entry.tag == XMP_TAG:
            reason = plan.removal_reason("xmp", ANY, anonymous=True)
            if reason:
                drop(entry, "xmp", ANY, reason)
                continue
        elif entry.tag in (IPTC_TAG, PHOTOSHOP_TAG):
            reason = plan.removal_reason("iptc", ANY, anonymous=True)
            if reason:
                drop(entry, "iptc", "IPTC" if entry.tag == IPTC_TAG else "Photoshop", reason)
                continue
        elif entry.tag == ICC_TAG and plan.named("icc", ANY):
            drop(entry, "icc", ANY, "remove")
            continue
        page.kept.append(entry)
    if first and c.IFD_EXIF not in page.subs and any(EXIF_SETTABLE.get(n, (0,))[0] == c.IFD_EXIF for n in sets):
        page.subs[c.IFD_EXIF] = (0, [], *_new_sub(sets, report))
    for name, value in sets.items():
        where = EXIF_SETTABLE.get(name)
        if where is not None and where[0] == 0:
            entry, data = _ascii(where[1], value)
            page.kept.append(entry)
            page.new_values[entry.tag] = data
            report.set("exif", name, value)
    return page


def _new_sub(sets: dict[str, str], report: _Once) -> tuple[list[Entry], dict[int, bytes]]:
    kept: list[Entry] = []
    new: dict[int, bytes] = {}
    for name, value in sets.items():
        if EXIF_SETTABLE.get(name, (0,))[0] == c.IFD_EXIF:
            entry, data = _ascii(EXIF_SETTABLE[name][1], value)
            kept.append(entry)
            new[entry.tag] = data
            report.set("exif", name, value)
    return kept, new


def _plan_sub(
    tiff: TiffFile, pointer: Entry, plan: Any, report: _Once, sets: dict[str, str], drop: Any, tags: Any, gps_tags: Any, anon: Any
) -> tuple[list[Entry], list[Entry], dict[int, bytes], list[Entry]]:
    section, names = ("exif", tags) if pointer.tag == c.IFD_EXIF else ("gps", gps_tags)
    sub_entries, _ = tiff.read_ifd(tiff.pointer(pointer))
    kept: list[Entry] = []
    replaced: list[Entry] = []
    for entry in sub_entries:
        name = names.get(entry.tag, f"0x{entry.tag:04x}")
        if entry.tag == c.IFD_INTEROP:
            continue
        reason = plan.removal_reason(section, name, anonymous=section == "gps" or name in anon)
        if reason:
            drop(entry, section, name, reason)
        elif section == "exif" and name in sets and EXIF_SETTABLE.get(name, (0,))[0] == c.IFD_EXIF:
            replaced.append(entry)  # its old value is zeroed; the new one is written below
        else:
            kept.append(entry)
    new: dict[int, bytes] = {}
    if section == "exif":
        more, new = _new_sub(sets, report)
        kept += more
    return sub_entries, kept, new, replaced


_POINTERS = {c.IFD_EXIF, c.IFD_GPS, c.IFD_INTEROP}
_DATA_PAIRS = ((273, 279), (324, 325), (THUMB_OFFSET, THUMB_LENGTH))


def scrub_unreferenced(tiff: TiffFile) -> bool:
    """Zero every byte no directory references (what other writers left behind: stale
    directories, orphaned values). False, and nothing touched, when the file has
    structures this walker does not know (SubIFDs, IFD-typed private tags)."""
    ranges: list[tuple[int, int]] = [(0, 8)]
    offsets = [(tiff.ifd0, True)]
    seen: set[int] = set()
    while offsets:
        offset, chained = offsets.pop()
        if not offset or offset in seen or len(seen) > MAX_PAGES:
            continue
        seen.add(offset)
        entries, following = tiff.read_ifd(offset)
        ranges.append((offset, offset + 2 + 12 * len(entries) + 4))
        tags = {en.tag: en for en in entries}
        for entry in entries:
            if entry.tag == 330 or (entry.typ == 13 and entry.tag not in _POINTERS):
                return False
            if entry.at is not None:
                ranges.append((entry.at, entry.at + entry.length))
            if entry.tag in _POINTERS:
                offsets.append((tiff.pointer(entry), False))
        for start_tag, length_tag in _DATA_PAIRS:
            if start_tag in tags and length_tag in tags:
                for at, length in zip(tiff.numbers(tags[start_tag]), tiff.numbers(tags[length_tag]), strict=False):
                    ranges.append((at, at + length))
        if chained:
            offsets.append((following, True))
    position = 0
    for start, end in sorted(ranges):
        if start > position:
            tiff.zero(position, start - position)
        position = max(position, end)
    if position < tiff.size:
        tiff.zero(position, tiff.size - position)
    return True
