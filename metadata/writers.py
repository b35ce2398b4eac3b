"""Write-back of metadata: ``apply(kind, src, dst, ops)`` writes an edited copy and reports
what changed and what could not be changed (and why), key by key.

Pixels, audio frames and page content are never re-encoded: JPEG marker segments and PNG
chunks are rewritten around the untouched image data; tags go through mutagen; a PDF is
written whole as a new document (no incremental update, orphans dropped); an Office
package is re-zipped with new property parts. Django-free: runs in the sandboxed worker.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Any

from metadata import containers as c
from metadata.capabilities import ANY, EXIF_SETTABLE, MP4_SETTABLE

# Removed by ``anonymize`` (besides all GPS, XMP, IPTC, comments and thumbnails).
ANON_EXIF = {
    "Artist",
    "XPAuthor",
    "XPComment",
    "UserComment",
    "CameraOwnerName",
    "BodySerialNumber",
    "LensSerialNumber",
    "ImageUniqueID",
    "MakerNote",
    "Software",
    "ProcessingSoftware",
    "HostComputer",
    "ImageHistory",
    "OwnerName",
    "SerialNumber",
}
ANON_PNG_TEXT = {"author", "comment", "software", "source", "description", "disclaimer", "warning", "creation time", "copyright"}
ANON_ID3 = {
    "TPE1",
    "TPE2",
    "TPE3",
    "TPE4",
    "TOPE",
    "IPLS",
    "TIPL",
    "TMCL",
    "COMM",
    "TENC",
    "TSSE",
    "PRIV",
    "GEOB",
    "TXXX",
    "TOWN",
    "WXXX",
    "USLT",
    "TEXT",
    "TCOM",
    "TOLY",
    "TPUB",
}
ANON_VORBIS = {
    "artist",
    "albumartist",
    "album artist",
    "composer",
    "performer",
    "lyricist",
    "author",
    "comment",
    "description",
    "encoder",
    "encoded_by",
    "encodedby",
    "encoded-by",
    "contact",
    "location",
    "software",
}
ANON_MP4 = {"©ART", "aART", "©cmt", "©too", "©enc", "©wrt", "desc", "ldes", "©xyz", "ownr", "apID"}
ANON_OFFICE_CORE = {"creator", "lastModifiedBy", "revision", "lastPrinted", "identifier"}
ANON_OFFICE_APP = {"Company", "Manager", "Application", "AppVersion", "TotalTime", "Template", "HyperlinkBase"}
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
ANON_PDF_INFO = {"Author", "Creator", "Producer", "Company", "SourceModified", "Manager"}


@dataclass
class Plan:
    anonymize: bool = False
    strip_all: bool = False
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    removals: dict[str, list[str]] = field(default_factory=dict)
    matched: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def of(cls, ops: dict[str, Any]) -> Plan:
        return cls(
            anonymize=bool(ops.get("anonymize")),
            strip_all=bool(ops.get("strip_all")),
            values={s: {str(k): str(v) for k, v in (kv or {}).items()} for s, kv in (ops.get("set") or {}).items()},
            removals={s: [str(k) for k in (keys or [])] for s, keys in (ops.get("remove") or {}).items()},
        )

    def named(self, section: str, key: str) -> bool:
        """Removal asked for by name (or "*"), whatever strip_all or anonymize say."""
        keys = self.removals.get(section, [])
        for candidate in (key, ANY):
            if candidate in keys:
                self.matched.add((section, candidate))
                return True
        return False

    def removal_reason(self, section: str, key: str, *, anonymous: bool = False) -> str | None:
        """Why ``key`` of ``section`` goes, or None if it stays."""
        if self.strip_all:
            return "strip_all"
        if self.anonymize and anonymous:
            return "anonymize"
        keys = self.removals.get(section, [])
        if key in keys:
            self.matched.add((section, key))
            return "remove"
        if ANY in keys:
            self.matched.add((section, ANY))
            return "remove"
        return None


@dataclass
class Report:
    changed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def removed(self, section: str, key: str, reason: str) -> None:
        self.changed.append({"section": section, "key": key, "action": "removed", "reason": reason})

    def set(self, section: str, key: str, value: str) -> None:
        self.changed.append({"section": section, "key": key, "action": "set", "value": value})

    def skip(self, section: str, key: str, reason: str) -> None:
        self.skipped.append({"section": section, "key": key, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "skipped": self.skipped}


def apply(kind: str, src: str, dst: str, ops: dict[str, Any], *, ffmpeg: str | None = None) -> dict[str, Any]:
    plan, report = Plan.of(ops), Report()
    if kind == "jpeg":
        _jpeg(src, dst, plan, report)
    elif kind == "png":
        _png(src, dst, plan, report)
    elif kind == "webp":
        _webp(src, dst, plan, report)
    elif kind == "tiff":
        from metadata import tiffedit

        tiffedit.edit(src, dst, plan, report)
    elif kind in ("mp3", "flac", "ogg", "m4a", "mp4"):
        _media(kind, src, dst, plan, report, ffmpeg)
    elif kind == "pdf":
        _pdf(src, dst, plan, report)
    elif kind in ("docx", "xlsx", "pptx"):
        from metadata import officeedit

        officeedit.edit(src, dst, plan, report)
    else:
        raise c.ContainerError("UNSUPPORTED", f"Metadata of {kind} files cannot be edited.")
    for section, keys in plan.removals.items():
        for key in keys:
            if (section, key) not in plan.matched and not plan.strip_all:
                report.skip(section, key, "not present in the file")
    return report.as_dict()


def skip_not_settable(report: Report, section: str, key: str, kind: str) -> None:
    report.skip(section, key, f"{key} cannot be set in {section} of a {kind} file")


# --- EXIF (JPEG APP1 and PNG eXIf) --------------------------------------------------------------


def edit_exif(data: bytes | None, plan: Plan, report: Report, kind: str) -> tuple[bool, bytes | None]:
    """``(changed, new)``: new EXIF bytes (``Exif\\0\\0`` + TIFF), or None when nothing is left.
    Untouched EXIF is kept byte for byte; rewritten EXIF never carries IFD1 (the thumbnail)
    or the interoperability IFD over."""
    from PIL import Image
    from PIL.ExifTags import GPSTAGS, TAGS

    ifd0: dict[int, Any] = {}
    exif_ifd: dict[int, Any] = {}
    gps: dict[int, Any] = {}
    if data:
        old = c.load_exif(data)
        try:
            ifd0 = {t: v for t, v in old.items() if t not in (c.IFD_EXIF, c.IFD_GPS, c.IFD_INTEROP)}
            exif_ifd = {t: v for t, v in old.get_ifd(c.IFD_EXIF).items() if t != c.IFD_INTEROP}
            gps = dict(old.get_ifd(c.IFD_GPS))
            thumbnail = bool(old.get_ifd(-1))
        except Exception:  # noqa: BLE001
            raise c.ContainerError("MALFORMED_EXIF", "The EXIF block is unreadable.") from None
    else:
        thumbnail = False
    before = len(report.changed)
    for store, section, names in ((ifd0, "exif", TAGS), (exif_ifd, "exif", TAGS), (gps, "gps", GPSTAGS)):
        for tag in list(store):
            name = names.get(tag, f"0x{tag:04x}")
            reason = plan.removal_reason(section, name, anonymous=section == "gps" or name in ANON_EXIF)
            if reason:
                del store[tag]
                report.removed(section, name, reason)
    for name, value in plan.values.get("exif", {}).items():
        if name not in EXIF_SETTABLE:
            skip_not_settable(report, "exif", name, kind)
            continue
        ifd, tag = EXIF_SETTABLE[name]
        (ifd0 if ifd == 0 else exif_ifd)[tag] = value
        report.set("exif", name, value)
    if len(report.changed) == before and not (thumbnail and (plan.strip_all or plan.anonymize)):
        return False, None
    if thumbnail:
        report.removed("exif", "<thumbnail>", "thumbnails are never carried over")
    if not (ifd0 or exif_ifd or gps):
        return True, None
    new = Image.Exif()
    for tag, value in ifd0.items():
        new[tag] = value
    if exif_ifd:
        new[c.IFD_EXIF] = exif_ifd
    if gps:
        new[c.IFD_GPS] = gps
    return True, bytes(new.tobytes())


def _drop_section(plan: Plan, report: Report, section: str, *, anonymous: bool = True) -> bool:
    reason = plan.removal_reason(section, ANY, anonymous=anonymous)
    if reason:
        report.removed(section, ANY, reason)
        return True
    return False


# --- JPEG ----------------------------------------------------------------------------------------


def _jpeg(src: str, dst: str, plan: Plan, report: Report) -> None:
    with open(src, "rb") as fin:
        segments = c.jpeg_segments(fin)
        scan_start = fin.tell() - 2  # the SOS marker: everything from here is copied untouched
    out: list[tuple[int, bytes]] = []
    exif_done = False
    dropped: set[str] = set()
    for code, payload in segments:
        if code == 0xE1 and payload.startswith(c.JPEG_EXIF):
            if exif_done:
                report.removed("exif", "<second EXIF block>", "only one EXIF block is kept")
                continue
            exif_done = True
            changed, new = edit_exif(payload, plan, report, "jpeg")
            if not changed:
                out.append((code, payload))
            elif new:
                out.append((0xE1, new))
            continue
        section = None
        if code == 0xE1 and (payload.startswith(c.JPEG_XMP) or payload.startswith(c.JPEG_XMP_EXT)):
            section = "xmp"
        elif code == 0xED and payload.startswith(c.JPEG_PHOTOSHOP):
            section = "iptc"
        elif code == 0xE2 and payload.startswith(c.JPEG_ICC):
            if "icc" not in dropped and plan.named("icc", ANY):  # only when asked by name
                dropped.add("icc")
                report.removed("icc", ANY, "remove")
            if "icc" in dropped:
                continue
            if plan.strip_all and "icc-kept" not in dropped:
                dropped.add("icc-kept")
                report.skip("icc", ANY, "kept: the colour profile is needed to render the pixels (remove.icc ['*'] drops it)")
            out.append((code, payload))
            continue
        elif code == 0xFE:
            reason = plan.removal_reason("comment", "Comment", anonymous=True)
            if reason:
                report.removed("comment", "Comment", reason)
                continue
            if "Comment" in plan.values.get("comment", {}):
                continue  # replaced below
            out.append((code, payload))
            continue
        elif 0xE1 <= code <= 0xEF and code != 0xEE and (plan.strip_all or plan.anonymize):
            # Other application segments (MPF previews, maker data, Ducky, FPXR…): kept unless scrubbing.
            report.removed("app", f"APP{code - 0xE0}", "strip_all" if plan.strip_all else "anonymize")
            continue
        if section:
            if section in dropped:
                continue
            if _drop_section(plan, report, section):
                dropped.add(section)
                continue
        out.append((code, payload))
    if not exif_done and plan.values.get("exif"):
        _changed, new = edit_exif(None, plan, report, "jpeg")
        if new:
            out.insert(1 if out and out[0][0] == 0xE0 else 0, (0xE1, new))
    for key, value in plan.values.get("comment", {}).items():
        if key != "Comment":
            skip_not_settable(report, "comment", key, "jpeg")
            continue
        out.append((0xFE, value.encode("utf-8")))
        report.set("comment", "Comment", value)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(b"\xff\xd8")
        for code, payload in out:
            c.jpeg_write_segment(fout, code, payload)
        fin.seek(scan_start)
        if plan.strip_all or plan.anonymize:
            _copy_scans(fin, fout, report, "strip_all" if plan.strip_all else "anonymize")
        else:
            shutil.copyfileobj(fin, fout, 1024 * 1024)


def _copy_scans(fin: Any, fout: Any, report: Report, why: str) -> None:
    """Copy from the first SOS to EOI, walking the scans: entropy-coded data is copied as is;
    marker segments between scans (progressive tables) are kept, except application and
    comment segments, which are metadata; nothing after EOI (appended previews, trailers)."""
    data = fin.read()
    out = bytearray()
    pos, size = 0, len(data)
    while pos + 1 < size:
        if data[pos] != 0xFF:
            raise c.ContainerError("MALFORMED_JPEG", "A JPEG marker was expected after the scan data.")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            out += b"\xff\xd9"
            if data[pos + 2 :].strip(b"\x00"):
                report.removed("jpeg", "<data after the image>", why)
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += data[pos : pos + 2]
            pos += 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end > size:
            raise c.ContainerError("TRUNCATED", "The JPEG ends inside a marker segment.")
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            report.removed("comment" if marker == 0xFE else "app", "<between scans>", why)
        else:
            out += data[pos:end]
        pos = end
        if marker == 0xDA:  # entropy-coded data up to the next marker that is not a restart
            scan = pos
            while True:
                found = data.find(b"\xff", scan)
                if found == -1 or found + 1 >= size:
                    raise c.ContainerError("TRUNCATED", "The JPEG ends inside its scan data.")
                following = data[found + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    scan = found + 2
                    continue
                break
            out += data[pos:found]
            pos = found
    else:
        raise c.ContainerError("TRUNCATED", "The JPEG has no end-of-image marker.")
    fout.write(out)


# --- PNG -----------------------------------------------------------------------------------------


def _png(src: str, dst: str, plan: Plan, report: Report) -> None:
    wanted = dict(plan.values.get("png_text", {}))
    for key in list(wanted):
        if not (1 <= len(key) <= 79) or key != key.strip() or any(ord(ch) > 255 or ord(ch) < 32 for ch in key):
            report.skip("png_text", key, "PNG keywords are 1-79 Latin-1 characters without leading or trailing spaces")
            del wanted[key]
    exif_done = False
    dropped: set[str] = set()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(c.PNG_SIGNATURE)
        for ctype, data, _offset in c.png_chunks(fin):
            if ctype == b"IDAT" or ctype == b"IEND":
                if not exif_done and plan.values.get("exif"):
                    exif_done = True
                    _changed, new = edit_exif(None, plan, report, "png")
                    if new:
                        fout.write(c.png_chunk(b"eXIf", new[len(c.JPEG_EXIF) :]))
                for key, value in wanted.items():
                    fout.write(c.png_itxt(key, value))
                    report.set("png_text", key, value)
                wanted = {}
            elif ctype in (b"tEXt", b"zTXt", b"iTXt"):
                key, _text = c.png_text(ctype, data)
                if key == c.PNG_XMP_KEYWORD:
                    if "xmp" in dropped or _drop_section(plan, report, "xmp"):
                        dropped.add("xmp")
                        continue
                else:
                    reason = plan.removal_reason("png_text", key, anonymous=key.lower() in ANON_PNG_TEXT)
                    if reason:
                        report.removed("png_text", key, reason)
                        continue
                    if key in wanted:
                        continue  # replaced by the new value before the image data
            elif ctype == b"eXIf":
                if exif_done:
                    continue
                exif_done = True
                changed, new = edit_exif(data, plan, report, "png")
                if not changed:
                    fout.write(c.png_chunk(ctype, data))
                elif new:
                    fout.write(c.png_chunk(b"eXIf", new[len(c.JPEG_EXIF) :]))
                continue
            elif ctype == b"iCCP":
                if plan.named("icc", ANY):
                    report.removed("icc", ANY, "remove")
                    continue
                if plan.strip_all:
                    report.skip("icc", ANY, "kept: the colour profile is needed to render the pixels (remove.icc ['*'] drops it)")
            elif ctype == b"tIME":
                reason = plan.removal_reason("png_time", "tIME", anonymous=True)
                if reason:
                    report.removed("png_time", "tIME", reason)
                    continue
            fout.write(c.png_chunk(ctype, data))
    for key in plan.values.get("png_text", {}):
        if key == c.PNG_XMP_KEYWORD:
            report.skip("png_text", key, "the XMP packet is not edited as text")


# --- WebP (RIFF chunks) ---------------------------------------------------------------------------


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise c.ContainerError("MALFORMED_WEBP", "Not a WebP file.")
    chunks: list[tuple[bytes, bytes]] = []
    pos = 12
    while pos + 8 <= len(data):
        fourcc, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if pos + 8 + size > len(data):
            raise c.ContainerError("TRUNCATED", "The WebP ends inside a chunk.")
        chunks.append((fourcc, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size % 2)
    return chunks


def _webp(src: str, dst: str, plan: Plan, report: Report) -> None:
    with open(src, "rb") as fh:
        data = fh.read()
    chunks = _riff_chunks(data)
    out: list[tuple[bytes, bytes]] = []
    exif_done = False
    for fourcc, payload in chunks:
        if fourcc == b"EXIF":
            if exif_done:
                continue
            exif_done = True
            changed, new = edit_exif(payload, plan, report, "webp")
            if not changed:
                out.append((fourcc, payload))
            elif new:
                out.append((fourcc, new[len(c.JPEG_EXIF) :]))
            continue
        if fourcc == b"XMP " and _drop_section(plan, report, "xmp"):
            continue
        if fourcc == b"ICCP" and plan.named("icc", ANY):
            report.removed("icc", ANY, "remove")
            continue
        out.append((fourcc, payload))
    if not exif_done and plan.values.get("exif"):
        _changed, new = edit_exif(None, plan, report, "webp")
        if new:
            out.append((b"EXIF", new[len(c.JPEG_EXIF) :]))
    names = {fourcc for fourcc, _ in out}
    if names & {b"EXIF", b"XMP ", b"ICCP"} and b"VP8X" not in names:
        out.insert(0, (b"VP8X", _vp8x_for(src)))  # metadata chunks need the extended format
    if b"VP8X" in names or out[0][0] == b"VP8X":
        header = bytearray(out[0][1])
        flags = header[0] & ~0x2C
        flags |= 0x20 if b"ICCP" in names else 0
        flags |= 0x08 if any(f == b"EXIF" for f, _ in out) else 0
        flags |= 0x04 if b"XMP " in names else 0
        header[0] = flags
        out[0] = (b"VP8X", bytes(header))
    body = b"WEBP" + b"".join(f + len(p).to_bytes(4, "little") + p + (b"\x00" if len(p) % 2 else b"") for f, p in out)
    with open(dst, "wb") as fh:
        fh.write(b"RIFF" + len(body).to_bytes(4, "little") + body)


def _vp8x_for(src: str) -> bytes:
    from PIL import Image

    with Image.open(src, formats=["WEBP"]) as img:
        width, height = img.size
        alpha = 0x10 if "A" in img.mode else 0
    return bytes([alpha, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")


# --- audio and video tags (mutagen) --------------------------------------------------------------


def _remux_without_metadata(kind: str, src: str, dst: str, ffmpeg: str) -> None:
    """Copy the streams into a new MP4 with no container metadata at all (udta, location…)."""
    from fileconvert.sandbox import run_command

    muxer = "ipod" if kind == "m4a" else "mp4"
    cmd = [ffmpeg, "-v", "error", "-nostdin", "-protocol_whitelist", "file", "-f", "mov", "-i", f"file:{src}"]
    cmd += ["-map", "0", "-c", "copy", "-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact"]
    cmd += ["-flags:v", "+bitexact", "-flags:a", "+bitexact", "-f", muxer, "-y", f"file:{dst}"]
    result = run_command(cmd, timeout=120, memory_bytes=1024**3)
    if result.returncode != 0:
        raise c.ContainerError("REMUX_FAILED", (result.stderr.strip() or "ffmpeg failed")[-300:])


def _media(kind: str, src: str, dst: str, plan: Plan, report: Report, ffmpeg: str | None) -> None:
    import mutagen

    if kind in ("mp4", "m4a") and (plan.strip_all or plan.anonymize) and ffmpeg:
        _remux_without_metadata(kind, src, dst, ffmpeg)
        kept = _mp4_final_tags(src, plan, report)
        media = mutagen.File(dst)
        if media is None:
            raise c.ContainerError("UNRECOGNISED", "The remuxed file is not readable.")
        if media.tags is None:
            media.add_tags()
        media.tags.clear()
        media.tags.update(kept)
        media.save()
        return
    shutil.copyfile(src, dst)
    media = mutagen.File(dst)
    if media is None:
        raise c.ContainerError("UNRECOGNISED", "The audio stream is not recognised.")
    if kind == "mp3":
        _id3(media, plan, report)
    elif kind in ("flac", "ogg"):
        _vorbis(media, plan, report)
    else:
        if media.tags is None:
            media.add_tags()
        final = _mp4_final_tags(dst, plan, report, media=media)
        media.tags.clear()
        media.tags.update(final)
        media.save()
        if kind in ("mp4", "m4a") and (plan.strip_all or plan.anonymize):
            report.skip("mp4", "<udta>", "ffmpeg is not installed: container-level metadata outside the tag list is kept")


def _mp4_final_tags(path: str, plan: Plan, report: Report, media: Any = None) -> dict[str, Any]:
    import mutagen

    media = media or mutagen.File(path)
    tags = dict(media.tags or {})
    for key in list(tags):
        reason = plan.removal_reason("mp4", key, anonymous=key in ANON_MP4 or key.startswith("----"))
        if reason:
            del tags[key]
            report.removed("mp4", key, reason)
    for key, value in plan.values.get("mp4", {}).items():
        if key not in MP4_SETTABLE:
            skip_not_settable(report, "mp4", key, "mp4")
            continue
        tags[key] = [value]
        report.set("mp4", key, value)
    return tags


def _id3(media: Any, plan: Plan, report: Report) -> None:
    from mutagen.id3 import COMM, TXXX, Frames, TextFrame

    if media.tags is None:
        media.add_tags()
    tags = media.tags
    for key in list(tags.keys()):
        frame_id = key[:4]
        reason = plan.removal_reason("id3", key, anonymous=frame_id in ANON_ID3)
        if reason is None and frame_id != key:
            reason = plan.removal_reason("id3", frame_id)
        if reason:
            del tags[key]
            report.removed("id3", key, reason)
    for key, value in plan.values.get("id3", {}).items():
        frame_id, _, desc = key.partition(":")
        cls = Frames.get(frame_id)
        if frame_id == "COMM":
            tags.setall("COMM", [COMM(encoding=3, lang="eng", desc=desc, text=[value])])
        elif frame_id == "TXXX" and desc:
            tags.add(TXXX(encoding=3, desc=desc, text=[value]))
        elif cls is not None and issubclass(cls, TextFrame) and frame_id != "TXXX" and not desc:
            tags.setall(frame_id, [cls(encoding=3, text=[value])])
        else:
            report.skip("id3", key, "only text frames (T***, TXXX:desc) and COMM can be set")
            continue
        report.set("id3", key, value)
    scrub = plan.strip_all or plan.anonymize
    if not tags.keys():
        media.delete()  # no frames left: no ID3 header either (and no ID3v1 tag)
        return
    media.save(v1=0 if scrub else 1)


def _vorbis(media: Any, plan: Plan, report: Report) -> None:
    if media.tags is None:
        media.add_tags()
    tags = media.tags
    for key in sorted({k.lower() for k in tags.keys()}):  # noqa: SIM118 - VComment iterates as pairs
        reason = plan.removal_reason("vorbis", key, anonymous=key in ANON_VORBIS)
        if reason:
            del tags[key]
            report.removed("vorbis", key, reason)
    if (plan.strip_all or plan.anonymize) and getattr(media, "pictures", None):
        media.clear_pictures()
        report.removed("vorbis", "<pictures>", "strip_all" if plan.strip_all else "anonymize")
    for key, value in plan.values.get("vorbis", {}).items():
        if not key or "=" in key or any(ord(ch) < 0x20 or ord(ch) > 0x7D for ch in key):
            report.skip("vorbis", key, "Vorbis comment names are printable ASCII without '='")
            continue
        tags[key] = [value]
        report.set("vorbis", key.lower(), value)
    media.save()


# --- PDF -----------------------------------------------------------------------------------------


def _pdf(src: str, dst: str, plan: Plan, report: Report) -> None:
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject

    reader = PdfReader(src, strict=False)
    if reader.is_encrypted and not reader.decrypt(""):
        raise c.ContainerError("ENCRYPTED", "An encrypted PDF cannot be edited.")
    info = {str(k).lstrip("/"): str(v) for k, v in (reader.metadata or {}).items()}
    changed_info = False
    for key in list(info):
        reason = plan.removal_reason("pdf_info", key, anonymous=key in ANON_PDF_INFO)
        if reason:
            del info[key]
            report.removed("pdf_info", key, reason)
            changed_info = True
    for key, value in plan.values.get("pdf_info", {}).items():
        if not key.replace("_", "").isalnum():
            report.skip("pdf_info", key, "document info keys are letters and digits")
            continue
        info[key] = value
        report.set("pdf_info", key, value)
        changed_info = True

    writer = PdfWriter(clone_from=reader)
    root = writer._root_object
    if "/Metadata" in root:
        reason = plan.removal_reason("xmp", ANY, anonymous=True)
        if reason is None and changed_info:
            reason = "the XMP packet would contradict the edited document info"
        if reason:
            del root[NameObject("/Metadata")]
            report.removed("xmp", ANY, reason)
    if plan.strip_all or plan.anonymize:
        why = "strip_all" if plan.strip_all else "anonymize"
        if "/PieceInfo" in root:
            del root[NameObject("/PieceInfo")]
            report.removed("pdf", "PieceInfo", why)
        for number, page in enumerate(writer.pages, 1):
            for key in ("/Metadata", "/PieceInfo"):
                if key in page:
                    del page[NameObject(key)]
                    report.removed("pdf", f"page {number} {key[1:]}", why)
    writer.metadata = None  # no /Info and no default Producer unless something is left
    if info:
        writer.add_metadata({f"/{k}": v for k, v in info.items()})
    writer.compress_identical_objects(remove_duplicates=False, remove_unreferenced=True)
    with open(dst, "wb") as fout:
        writer.write(fout)
