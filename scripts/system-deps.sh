#!/usr/bin/env bash
# Debian packages the converters and the metadata probe use: ffmpeg/ffprobe, LibreOffice
# (headless, no GUI), exiftool (the metadata benchmark's reference). Idempotent: does
# nothing when every tool is already on PATH. Needs root (CI and dev machines run as root).
set -euo pipefail
need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v soffice >/dev/null || need+=(libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui)
command -v exiftool >/dev/null || need+=(libimage-exiftool-perl)
perl -MArchive::Zip -e1 2>/dev/null || need+=(libarchive-zip-perl)  # exiftool reads DOCX/XLSX with it
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
    echo "system-deps: apt-get not found; install ${need[*]} yourself (converters needing them are skipped)" >&2
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" fonts-dejavu-core >/dev/null
