"""Office documents (and plain text) -> PDF through LibreOffice headless, inside the sandboxed child.

Each run gets a throw-away profile directory (``-env:UserInstallation``) that is
removed afterwards, a private network namespace when the machine allows one (no
route anywhere: linked images and remote templates cannot be fetched), proxy
variables pointing at a closed port otherwise, and the sandbox's wall clock.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from conversions.converters.base import GIB, Context, ConversionFailed, Converter
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
        """The file LibreOffice opens (``named``, whose extension chooses the filter)."""
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
        cmd = [
            *network_isolation_prefix(),
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
        from conversions.converters import text

        if src.stat().st_size > text.MAX_LAYOUT_BYTES:  # before reading it: sanitize_for_layout counts characters
            raise ConversionFailed(
                f"The page is too large to lay out (at most {text.MAX_LAYOUT_BYTES // 1024**2} MiB).", "INPUT_TOO_LARGE"
            )
        named.write_text(
            text.sanitize_for_layout(text.decode_html(src.read_bytes()), default_title=ctx.title_for(src)), encoding="utf-8"
        )
