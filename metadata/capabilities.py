"""What can be edited in which kind of file: the ``editable`` part of a probe, and the
check that turns an unsupported request into a 422 before any bytes are touched."""

from __future__ import annotations

from typing import Any

# EXIF tags that can be set (text values), by name → (IFD, tag). 0 is IFD0.
EXIF_SETTABLE: dict[str, tuple[int, int]] = {
    "ImageDescription": (0, 0x010E),
    "Make": (0, 0x010F),
    "Model": (0, 0x0110),
    "Software": (0, 0x0131),
    "DateTime": (0, 0x0132),
    "Artist": (0, 0x013B),
    "Copyright": (0, 0x8298),
    "DateTimeOriginal": (0x8769, 0x9003),
    "DateTimeDigitized": (0x8769, 0x9004),
    "CameraOwnerName": (0x8769, 0xA430),
    "BodySerialNumber": (0x8769, 0xA431),
    "LensModel": (0x8769, 0xA434),
    "LensSerialNumber": (0x8769, 0xA435),
}
OFFICE_CORE_SETTABLE = [
    "title",
    "subject",
    "creator",
    "description",
    "keywords",
    "lastModifiedBy",
    "revision",
    "category",
    "contentStatus",
    "language",
    "version",
    "created",
    "modified",
]
MP4_SETTABLE = ["©nam", "©ART", "aART", "©alb", "©day", "©cmt", "©gen", "©wrt", "©too", "©grp", "desc", "cprt"]
ANY = "*"  # any key (set: any well-formed key; remove: any present key, or "*" for the whole section)

_IMAGE_COMMON: dict[str, dict[str, Any]] = {
    "exif": {"set": sorted(EXIF_SETTABLE), "remove": ANY},
    "gps": {"set": [], "remove": ANY},
    "xmp": {"set": [], "remove": [ANY]},
    "icc": {"set": [], "remove": [ANY]},
}
EDITABLE: dict[str, dict[str, dict[str, Any]]] = {
    "jpeg": {**_IMAGE_COMMON, "iptc": {"set": [], "remove": [ANY]}, "comment": {"set": ["Comment"], "remove": ANY}},
    "png": {**_IMAGE_COMMON, "png_text": {"set": ANY, "remove": ANY}, "png_time": {"set": [], "remove": ANY}},
    "tiff": {**_IMAGE_COMMON, "iptc": {"set": [], "remove": [ANY]}},
    "webp": dict(_IMAGE_COMMON),
    "mp3": {"id3": {"set": ANY, "remove": ANY}},
    "flac": {"vorbis": {"set": ANY, "remove": ANY}},
    "ogg": {"vorbis": {"set": ANY, "remove": ANY}},
    "m4a": {"mp4": {"set": MP4_SETTABLE, "remove": ANY}},
    "mp4": {"mp4": {"set": MP4_SETTABLE, "remove": ANY}},
    "pdf": {"pdf_info": {"set": ANY, "remove": ANY}, "xmp": {"set": [], "remove": [ANY]}},
}
for _office in ("docx", "xlsx", "pptx"):
    EDITABLE[_office] = {
        "office_core": {"set": OFFICE_CORE_SETTABLE, "remove": ANY},
        "office_app": {"set": ["Company", "Manager"], "remove": ANY},
        "office_custom": {"set": [], "remove": ANY},
    }


def editable_for(kind: str) -> dict[str, Any]:
    sections = EDITABLE.get(kind, {})
    return {"sections": sections, "strip_all": bool(sections), "anonymize": bool(sections)}


def unsupported(kind: str, ops: dict[str, Any]) -> dict[str, str]:
    """Sections of the request this kind cannot take, with the reason; empty when fine."""
    sections = EDITABLE.get(kind)
    problems: dict[str, str] = {}
    if not sections:
        return {"*": f"Metadata of {kind or 'unknown'} files cannot be edited."}
    for verb in ("set", "remove"):
        for section in ops.get(verb) or {}:
            allowed = sections.get(section)
            if allowed is None:
                problems[f"{verb}.{section}"] = f"{kind} files have no editable {section} section."
            elif verb == "set" and not allowed["set"]:
                problems[f"set.{section}"] = f"{section} can only be removed, not set."
            elif verb == "remove" and allowed["remove"] != ANY and set(ops["remove"][section]) - set(allowed["remove"]):
                problems[f"remove.{section}"] = f'{section} is removed whole: give ["*"], not single keys.'
    return problems


def can_set(kind: str, section: str, key: str) -> bool:
    allowed = EDITABLE.get(kind, {}).get(section, {}).get("set", [])
    return allowed == ANY or key in allowed
