"""Office documents, plain text and HTML -> PDF through LibreOffice headless, inside the sandboxed child.

Each run gets a throw-away profile directory (``-env:UserInstallation``) that is
removed afterwards; mount, PID and network namespaces of its own when the machine allows
them, with the platform's private directories covered (``confinement_prefix``), else a
network namespace alone, else proxy variables pointing at a closed port (no route
anywhere: linked images and remote templates cannot be fetched); a copy of the document
whose pictures name nothing outside themselves (``sanitize_package``); the sandbox's wall
clock; and its PDF scrubbed of active content (``pdf.scrub_actions``). Decision 0016.
"""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as PlainElementTree
import zipfile
from pathlib import Path
from typing import Any

from conversions.converters import text
from conversions.converters.base import GIB, Context, ConversionFailed, Converter
from conversions.converters.text import DataImages
from fileconvert.sandbox import die_with_parent

OFFICE_FORMATS = ("docx", "xlsx", "pptx", "odt", "ods", "odp")
# Plain text goes through Writer's text import (UTF-8 under LANG=C.UTF-8): no fields, links
# or embedded objects to follow. HTML goes only as our own sanitised copy (HtmlToPdf): as
# given, it can point at local files, another tenant's included.
EXTENSIONS = {**{f: f for f in OFFICE_FORMATS}, "text": "txt", "html": "html"}

# Written into the throw-away profile: never load remote or linked content.
_PROFILE_SETTINGS = (
    ("org.openoffice.Office.Common/Security/Scripting", "BlockUntrustedRefererLinks", "true"),
    ("org.openoffice.Office.Common/Security/Scripting", "MacroSecurityLevel", "3"),
    ("org.openoffice.Office.Common/Misc", "UseLocking", "false"),
    ("org.openoffice.Inet/Settings", "ooInetProxyType", "1"),
    ("org.openoffice.Inet/Settings", "ooInetHTTPProxyName", "127.0.0.1"),
    ("org.openoffice.Inet/Settings", "ooInetHTTPProxyPort", "9"),
    ("org.openoffice.Inet/Settings", "ooInetHTTPSProxyName", "127.0.0.1"),
    ("org.openoffice.Inet/Settings", "ooInetHTTPSProxyPort", "9"),
)
_PROFILE_XCU = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<oor:items xmlns:oor="http://openoffice.org/2001/registry">\n'
    + "".join(
        f'<item oor:path="/{path}"><prop oor:name="{name}" oor:op="fuse"><value>{value}</value></prop></item>\n'
        for path, name, value in _PROFILE_SETTINGS
    )
    + "</oor:items>\n"
)


# Run inside new mount, PID and network namespaces: the private directories (the platform's
# data: stored files, other jobs' work, uploads in flight) are covered by empty tmpfs mounts,
# the job's own work directory is bound back at its path, and /proc shows only this run. A
# file:// URL that got past every sanitiser then finds nothing of anyone's.
# ``stage`` is an empty directory outside them that holds the work directory while they are
# covered (nothing mounted here shows outside the namespace). LibreOffice itself then runs in a
# user namespace of its own with a mount namespace under it, where those mounts are locked: even
# code running inside it cannot unmount them to see what they cover (a review did, as root).
_CONFINE = """set -e
work="$1"; stage="$2"; count="$3"; shift 3
mount --bind "$work" "$stage"
while [ "$count" -gt 0 ]; do mount -t tmpfs -o size=1m,mode=0700 private "$1"; shift; count=$((count - 1)); done
mkdir -p "$work"
mount --move "$stage" "$work"
cd "$work"
exec unshare -U -m "$@"
"""


@functools.cache
def confinement_prefix() -> tuple[str, ...]:
    """``unshare`` with mount, PID and network namespaces of their own when this machine
    permits it (a test mount must work inside), else ()."""
    tool = shutil.which("unshare")
    if not tool:
        return ()
    private = Path(tempfile.mkdtemp(prefix="fileconvert-confine-"))
    (private / "work").mkdir()
    (private / "work" / "kept").touch()
    stage = Path(tempfile.mkdtemp(prefix="fileconvert-stage-"))
    check = 'test -f kept && test "$(ls -A ..)" = work'  # the work kept, the rest of the private directory covered
    variants = (
        (tool, "-m", "-n", "-p", "-f", "--kill-child", "--mount-proc"),
        (tool, "-r", "-m", "-n", "-p", "-f", "--kill-child", "--mount-proc"),
    )
    try:
        for prefix in variants:
            run = [*prefix, "sh", "-c", _CONFINE, "sh", str(private / "work"), str(stage), "1", str(private)]
            try:
                done = subprocess.run([*run, "sh", "-c", check], capture_output=True, timeout=10, check=False)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if done.returncode == 0:
                return prefix
    finally:
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(stage, ignore_errors=True)
    return ()


def isolation(workdir: Path, private_dirs: tuple[str, ...], stage: Path) -> list[str]:
    """The command prefix a LibreOffice run gets: confined (``confinement_prefix``) with each
    existing private directory covered and ``workdir`` kept (held at ``stage``, an empty
    directory outside them, meanwhile), else network isolation only."""
    confine = confinement_prefix()
    if not confine:
        return list(network_isolation_prefix())
    hidden = sorted({str(Path(d).resolve()) for d in private_dirs if Path(d).is_dir()})
    outermost = [d for d in hidden if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in hidden)]
    return [*confine, "sh", "-c", _CONFINE, "sh", str(workdir.resolve()), str(stage), str(len(outermost)), *outermost]


@functools.cache
def network_isolation_prefix() -> tuple[str, ...]:
    """``unshare`` into a fresh network namespace when this machine permits it."""
    tool = shutil.which("unshare")
    if not tool:
        return ()
    for prefix in ((tool, "-n"), (tool, "-rn")):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False).returncode == 0:
                return prefix
        except (OSError, subprocess.TimeoutExpired):
            continue
    return ()


# Parts of an Office package LibreOffice lays out and that can name files to load: an SVG
# picture (<image href="file:///…"> drew another tenant's stored image or PDF page into the
# output, found in review) and an embedded HTML chunk. Each is rewritten; packages inside the
# package (an embedded spreadsheet) are treated the same way, a few levels deep.
PACKAGE_MAX_BYTES = 1024**3  # all parts together, uncompressed
PACKAGE_MAX_DEPTH = 3
_SVG_HEAD = re.compile(
    rb"^(\xef\xbb\xbf)?\s*(<\?xml[^>]{0,512}>\s*)?(<!--.{0,2048}?-->\s*)*(<!DOCTYPE[^>]{0,1024}>\s*)?<svg[\s>]", re.S | re.I
)
_EXTERNAL_URL = re.compile(r"url\(\s*['\"]?\s*(?!#)", re.I)
SVG_DROPPED = {"script", "foreignObject", "iframe", "object", "embed", "audio", "video", "handler", "listener"}
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def sanitize_svg(data: bytes, images: DataImages | None = None) -> bytes:
    """An SVG with nothing to load: references only inside itself (``#id``) or to raster
    ``data:`` images encoded again (``images``: the document's budget); no scripts, foreign
    content or CSS ``url()``/``@import`` to elsewhere. An SVG that does not parse safely
    (entities, a DTD) becomes an empty one."""
    from defusedxml import ElementTree

    images = images or DataImages()
    try:
        root = ElementTree.fromstring(data, forbid_dtd=True)
    except Exception:  # noqa: BLE001  defusedxml refuses entities and DTDs; anything unparsable is dropped
        return b'<svg xmlns="http://www.w3.org/2000/svg"/>'
    for parent in list(root.iter()):
        for child in list(parent):
            local = child.tag.rsplit("}", 1)[-1] if isinstance(child.tag, str) else ""
            text = child.text or ""
            if local in SVG_DROPPED or (local == "style" and ("@import" in text or _EXTERNAL_URL.search(text))):
                parent.remove(child)
    for element in root.iter():
        for name, value in list(element.attrib.items()):
            local = name.rsplit("}", 1)[-1]
            if local in ("href", "src", "base"):
                kept = value if value.strip().startswith("#") else images(value) if value.strip().startswith("data:") else None
                if kept is None:
                    del element.attrib[name]
                else:
                    element.attrib[name] = kept
            elif local.startswith("on") or _EXTERNAL_URL.search(value) or "@import" in value:
                del element.attrib[name]
    # With the SVG namespace as the default one: LibreOffice recognises an SVG by "<svg". Set
    # here, each time: ElementTree's prefix registry is process-wide and other code (the Office
    # metadata editor) gives the default prefix to its own namespaces.
    for prefix, uri in (("", SVG_NAMESPACE), ("xlink", "http://www.w3.org/1999/xlink")):
        PlainElementTree.register_namespace(prefix, uri)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + PlainElementTree.tostring(root, encoding="utf-8", xml_declaration=False)


def _safe_part(name: str, data: bytes, depth: int, images: DataImages) -> bytes:
    head = data[:4096]
    if name.lower().endswith((".svg", ".svgz")) or _SVG_HEAD.match(head):
        if data[:2] == b"\x1f\x8b":
            import gzip

            try:
                data = gzip.GzipFile(fileobj=io.BytesIO(data)).read(PACKAGE_MAX_BYTES)
            except (OSError, EOFError):
                return b'<svg xmlns="http://www.w3.org/2000/svg"/>'
        return sanitize_svg(data, images)
    if head.lstrip()[:1] == b"<" and re.search(rb"<(html|body|img|iframe|!doctype html)[\s>]", head, re.I):
        return text.sanitize_for_layout(text.decode_html(data), default_title="", images=images).encode("utf-8")
    if data[:4] == b"PK\x03\x04" and depth < PACKAGE_MAX_DEPTH:
        out = io.BytesIO()
        _rewrite_package(io.BytesIO(data), out, images, depth + 1)
        return out.getvalue()
    return data


def _rewrite_package(source: Any, target: Any, images: DataImages, depth: int = 0) -> None:
    total = 0
    try:
        with zipfile.ZipFile(source) as package, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            for entry in package.infolist():
                total += entry.file_size
                if total > PACKAGE_MAX_BYTES:
                    raise ConversionFailed("The document unpacks to more than 1 GiB.", "INPUT_TOO_LARGE")
                data = package.read(entry)
                # mimetype first and stored, as ODF requires; everything else as it was named.
                packing = zipfile.ZIP_STORED if entry.filename == "mimetype" else zipfile.ZIP_DEFLATED
                out.writestr(entry.filename, _safe_part(entry.filename, data, depth, images), compress_type=packing)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise ConversionFailed(f"The document could not be unpacked: {exc}", "UNREADABLE_CONTENT") from None


def sanitize_package(src: Path, dst: Path) -> None:
    """Copy an Office package (OOXML or ODF, both ZIP) with its SVG pictures, embedded HTML and
    packages inside it made safe to lay out (``_safe_part``); other parts as they are."""
    with open(src, "rb") as source, open(dst, "wb") as target:
        _rewrite_package(source, target, DataImages())  # one image budget for the whole document


class OfficeToPdf(Converter):
    name = "libreoffice-pdf"
    sources = OFFICE_FORMATS
    targets = ("pdf",)
    binaries = ("soffice",)
    memory_bytes = 4 * GIB
    chain_outputs = ("pdf",)
    import_args: tuple[str, ...] = ()  # LibreOffice picks the import filter from the extension
    export = "pdf"

    def write_input(self, src: Path, named: Path, ctx: Context) -> None:
        """The file LibreOffice opens (``named``, whose extension chooses the filter): an Office
        package with its pictures made safe to lay out (``sanitize_package``)."""
        if zipfile.is_zipfile(src):
            sanitize_package(src, named)
        else:
            shutil.copyfile(src, named)

    def convert(self, src: Path, source: str, dst: Path, target: str, options: dict[str, Any], ctx: Context) -> dict[str, Any]:
        profile = Path(tempfile.mkdtemp(prefix="lo-profile-", dir=ctx.workdir))
        (profile / "user").mkdir()
        (profile / "user" / "registrymodifications.xcu").write_text(_PROFILE_XCU)
        outdir = Path(tempfile.mkdtemp(prefix="lo-out-", dir=ctx.workdir))
        # LibreOffice picks the filter from the extension: give it ours, never the client's.
        named = Path(tempfile.mkdtemp(prefix="lo-in-", dir=ctx.workdir)) / f"input.{EXTENSIONS[source]}"
        self.write_input(src, named, ctx)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(profile),
            "LANG": "C.UTF-8",
            "http_proxy": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
            "no_proxy": "",
            "SAL_USE_VCLPLUGIN": "svp",
        }
        stage = Path(tempfile.mkdtemp(prefix="lo-stage-"))  # in the system's temporary directory: outside the private ones
        cmd = [
            *isolation(ctx.workdir, ctx.private_dirs, stage),
            "soffice",
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--invisible",
            "--norestore",
            "--nologo",
            "--nodefault",
            "--nolockcheck",
            *self.import_args,
            "--convert-to",
            self.export,
            "--outdir",
            str(outdir),
            str(named),
        ]
        ctx.progress(1, 10)
        try:
            done = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=env,
                timeout=max(ctx.timeout - 5, 5),
                check=False,
                preexec_fn=die_with_parent,
            )
        except subprocess.TimeoutExpired:
            raise ConversionFailed("LibreOffice took too long.", "TIMEOUT") from None
        finally:
            shutil.rmtree(stage, ignore_errors=True)
            shutil.rmtree(profile, ignore_errors=True)
            shutil.rmtree(named.parent, ignore_errors=True)
        produced = outdir / "input.pdf"
        if done.returncode != 0 or not produced.is_file() or produced.stat().st_size == 0:
            tail = (done.stderr or done.stdout).decode(errors="replace").strip()[-300:]
            raise ConversionFailed(f"LibreOffice could not convert the document. {tail}".strip(), "CONVERSION_FAILED")
        shutil.move(produced, dst)
        shutil.rmtree(outdir, ignore_errors=True)
        ctx.progress(9, 10)
        from pypdf import PdfReader

        from conversions.converters.pdf import scrub_actions

        scrubbed = scrub_actions(dst)  # links and scripts of PDFs the document held as pictures
        facts = {"pages": len(PdfReader(dst).pages)}
        return {**facts, "active_content_removed": scrubbed} if scrubbed else facts


class TextToPdf(OfficeToPdf):
    """Plain text laid out on pages (Writer's default page and font): the same sandboxed run."""

    name = "libreoffice-text-pdf"
    sources = ("text",)
    memory_bytes = 2 * GIB


class HtmlToPdf(OfficeToPdf):
    """HTML laid out by Writer's HTML import, from a sanitised copy (``text.sanitize_for_layout``):
    no scripts, styles, frames, objects or forms, and no URL LibreOffice would load, only
    ``data:`` images; links stay links. The copy is UTF-8 whatever the source's charset."""

    name = "libreoffice-html-pdf"
    sources = ("html",)
    modules = ("nh3",)
    memory_bytes = 2 * GIB
    # Writer proper, not Writer/Web (which starts with a blank page and drops the first heading).
    import_args = ("--infilter=HTML (StarWriter)",)
    export = "pdf:writer_pdf_Export"

    def write_input(self, src: Path, named: Path, ctx: Context) -> None:
        if src.stat().st_size > text.MAX_LAYOUT_BYTES:  # before reading it: sanitize_for_layout counts characters
            raise ConversionFailed(
                f"The page is too large to lay out (at most {text.MAX_LAYOUT_BYTES // 1024**2} MiB).", "INPUT_TOO_LARGE"
            )
        named.write_text(
            text.sanitize_for_layout(text.decode_html(src.read_bytes()), default_title=ctx.title_for(src)), encoding="utf-8"
        )
