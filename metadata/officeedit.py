"""Metadata write-back for Office (OOXML) packages: the package is re-zipped entry by entry
with inflate caps; ``docProps/core.xml``, ``app.xml`` and ``custom.xml`` are rebuilt from their
parsed (defusedxml) trees; when scrubbing, the authors of comments and tracked revisions are
blanked byte-wise in the parts that name them, so the rest of the XML stays as it was."""

from __future__ import annotations

import re
import zipfile
from xml.etree import ElementTree as ET

from metadata import containers as c
from metadata.capabilities import ANY, OFFICE_CORE_SETTABLE, can_set
from metadata.writers import ANON_OFFICE_APP, ANON_OFFICE_CORE, XML_DECLARATION, Plan, Report, skip_not_settable

for _prefix, _uri in c.CORE_NS.items():
    ET.register_namespace(_prefix, _uri)
ET.register_namespace("vt", c.VT_NS)


def _office_core(data: bytes | None, plan: Plan, report: Report) -> bytes:
    root = c.parse_xml(data) if data else ET.Element(f"{{{c.CORE_NS['cp']}}}coreProperties")
    for child in list(root):
        name = c.local_name(child.tag)
        reason = plan.removal_reason("office_core", name, anonymous=name in ANON_OFFICE_CORE)
        if reason:
            root.remove(child)
            report.removed("office_core", name, reason)
    for name, value in plan.values.get("office_core", {}).items():
        if name not in OFFICE_CORE_SETTABLE:
            skip_not_settable(report, "office_core", name, "Office")
            continue
        tag = f"{{{c.CORE_NS[c.CORE_FIELDS[name]]}}}{name}"
        for old in root.findall(tag):
            root.remove(old)
        element = ET.SubElement(root, tag)
        element.text = value
        if name in ("created", "modified"):
            element.set(f"{{{c.CORE_NS['xsi']}}}type", "dcterms:W3CDTF")
        report.set("office_core", name, value)
    return XML_DECLARATION + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def _office_simple(section: str, data: bytes, plan: Plan, report: Report, anonymous: set[str] | None) -> bytes:
    root = c.parse_xml(data)
    for child in list(root):
        name = c.local_name(child.tag) if section != "office_custom" else (child.get("name") or "?")
        reason = plan.removal_reason(section, name, anonymous=anonymous is None or name in anonymous)
        if reason:
            root.remove(child)
            report.removed(section, name, reason)
    if section == "office_app":
        for name, value in plan.values.get(section, {}).items():
            if not can_set("docx", section, name):
                skip_not_settable(report, section, name, "Office")
                continue
            tag = f"{{{c.APP_NS}}}{name}"
            element = root.find(tag)
            if element is None:
                element = ET.SubElement(root, tag)
            element.text = value
            report.set(section, name, value)
    return XML_DECLARATION + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def edit(src: str, dst: str, plan: Plan, report: Report) -> None:
    ET.register_namespace("", c.APP_NS)
    total = 0
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        infos = zin.infolist()
        if len(infos) > c.MAX_ZIP_ENTRIES:
            raise c.ContainerError("TOO_MANY_ENTRIES", "The package has too many entries.")
        names = {i.filename for i in infos}
        for info in infos:
            if info.filename in (c.OFFICE_CORE, c.OFFICE_APP, c.OFFICE_CUSTOM):
                data = c.read_zip_member(zin, info.filename)
                if info.filename == c.OFFICE_CORE:
                    new = _office_core(data, plan, report)
                elif info.filename == c.OFFICE_APP:
                    ET.register_namespace("", c.APP_NS)
                    new = _office_simple("office_app", data or b"", plan, report, ANON_OFFICE_APP)
                else:
                    ET.register_namespace("", c.CUSTOM_NS)
                    new = _office_simple("office_custom", data or b"", plan, report, None)
                zout.writestr(zipfile.ZipInfo(info.filename, date_time=info.date_time), new, zipfile.ZIP_DEFLATED)
                continue
            if info.file_size > c.MAX_ZIP_RATIO * max(info.compress_size, 1) and info.file_size > 1024 * 1024:
                raise c.ContainerError("ZIP_BOMB", f"{info.filename} inflates {info.file_size // max(info.compress_size, 1)}x.")
            people = _people_rule(info.filename) if (plan.anonymize or plan.strip_all) else None
            if people is not None:
                data = c.read_zip_member(zin, info.filename, limit=MAX_PEOPLE_PART_BYTES) or b""
                total += len(data)
                c.parse_xml(data)  # refuses bombs before any rewriting
                blanked, count = people[0].subn(people[1], data)
                if count:
                    report.removed("office_document", info.filename, "authors of comments and revisions blanked")
                zout.writestr(_copy_info(info), blanked)
                continue
            with zin.open(info) as member, zout.open(_copy_info(info), "w") as target:
                while chunk := member.read(1024 * 1024):
                    total += len(chunk)
                    if total > c.MAX_ZIP_TOTAL_BYTES:
                        raise c.ContainerError("ZIP_BOMB", f"The package inflates beyond {c.MAX_ZIP_TOTAL_BYTES} bytes.")
                    target.write(chunk)
        if c.OFFICE_CORE not in names and plan.values.get("office_core"):
            report.skip("office_core", ANY, "the package has no core properties part to set values in")


# Parts naming the people who commented or revised, and the attribute (or element) that does.
# Rewritten byte-wise (values blanked), so the rest of the XML stays exactly as it was.
MAX_PEOPLE_PART_BYTES = 64 * 1024 * 1024
_PEOPLE: list[tuple[re.Pattern[str], re.Pattern[bytes], bytes]] = [
    (re.compile(r"^word/[^/]+\.xml$"), re.compile(rb'\b((?:w|w15):(?:author|initials|userId|providerId))="[^"]*"'), rb'\1=""'),
    (re.compile(r"^xl/persons/[^/]+\.xml$"), re.compile(rb'\b(displayName|userId|providerId)="[^"]*"'), rb'\1=""'),
    (re.compile(r"^xl/comments\d*\.xml$"), re.compile(rb"<author>[^<]*</author>"), b"<author></author>"),
    (re.compile(r"^ppt/commentAuthors\.xml$"), re.compile(rb'\b(name|initials)="[^"]*"'), rb'\1=""'),
]


def _people_rule(name: str) -> tuple[re.Pattern[bytes], bytes] | None:
    for part, pattern, replacement in _PEOPLE:
        if part.match(name):
            return pattern, replacement
    return None


def _copy_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    copy.compress_type = zipfile.ZIP_DEFLATED if info.compress_type != zipfile.ZIP_STORED else zipfile.ZIP_STORED
    copy.external_attr = info.external_attr & 0o777 << 16  # no symlink or special bits
    return copy
