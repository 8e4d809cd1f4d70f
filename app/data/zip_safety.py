"""Opening an uploaded zip archive (an image folder zip or an NPZ) without trusting it.

Everything is decided from the archive's central directory before a single byte is
inflated: entry count, names, links, sizes and compression ratios. Entries are then read
into memory one at a time, never extracted, and `zipfile` stops inflating an entry at the
size its header declared (and checks its CRC), so the checks below bound the memory used.
"""

from __future__ import annotations

import re
import stat
import zipfile
from pathlib import Path, PurePosixPath

from app.core.errors import UserError
from app.data.catalog import UploadLimits

# Ratios of small entries say nothing (a 2 KB run of zeros compresses 100-fold), so the
# ratio is checked only for entries, and archives, at least this large once inflated.
RATIO_CHECK_MIN_BYTES = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


def open_checked_zip(path: Path, limits: UploadLimits, what: str) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """Return the open archive and its file entries (directories left out), or raise UserError."""
    path = Path(path)
    limits.check_upload_size(path.stat().st_size)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UserError(f"This is not a readable zip archive ({exc}); {what} must be a .zip file.",
                          field="file") from None
    try:
        return archive, _checked_entries(archive.infolist(), limits)
    except BaseException:
        archive.close()
        raise


def _checked_entries(entries: list[zipfile.ZipInfo], limits: UploadLimits) -> list[zipfile.ZipInfo]:
    if len(entries) > limits.max_zip_entries:
        raise UserError(f"The archive has {len(entries)} entries; at most {limits.max_zip_entries} are allowed.",
                          field="file")
    seen: set[str] = set()
    total_size = total_compressed = 0
    files = []
    for info in entries:
        check_entry_name(info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UserError(f"The archive entry {info.filename!r} is a symbolic link; only plain files are "
                              f"allowed.", field="file")
        if info.flag_bits & 0x1:
            raise UserError(f"The archive entry {info.filename!r} is encrypted; upload an archive without a "
                              f"password.", field="file")
        if info.filename in seen:
            raise UserError(f"The archive holds {info.filename!r} twice; each name may appear once.", field="file")
        seen.add(info.filename)
        if info.is_dir():
            continue
        _check_ratio(info.filename, info.file_size, info.compress_size, limits)
        total_size += info.file_size
        total_compressed += info.compress_size
        files.append(info)
    if total_size > limits.max_total_uncompressed:
        raise UserError(f"Unpacked, the archive would take {total_size / 2**20:.0f} MB; at most "
                          f"{limits.max_total_uncompressed / 2**20:.0f} MB are allowed.", field="file")
    _check_ratio("The archive as a whole", total_size, total_compressed, limits)
    return files


def check_entry_name(name: str) -> None:
    """Refuse names that could point outside a folder if anyone ever extracted them."""
    posix = name.replace("\\", "/")
    if "\x00" in name or posix.startswith("/") or _DRIVE.match(posix):
        raise UserError(f"The archive entry {name!r} has an absolute path; entries must be relative, like "
                          f"'cats/1.png'.", field="file")
    if ".." in PurePosixPath(posix).parts:
        raise UserError(f"The archive entry {name!r} points outside the archive ('..'); entries must stay "
                          f"inside it, like 'cats/1.png'.", field="file")


def _check_ratio(label: str, size: int, compressed: int, limits: UploadLimits) -> None:
    if size < RATIO_CHECK_MIN_BYTES:
        return
    ratio = size / max(compressed, 1)
    if ratio > limits.max_compression_ratio:
        subject = label if label.startswith("The archive") else f"The archive entry {label!r}"
        raise UserError(f"{subject} unpacks {ratio:.0f} times larger than it is stored ({size / 2**20:.0f} MB); "
                          f"at most {limits.max_compression_ratio} times is allowed, which protects the server "
                          f"from zip bombs.", field="file")


def read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One entry's bytes; at most its declared size, which the checks above have bounded."""
    try:
        with archive.open(info) as handle:
            return handle.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise UserError(f"The archive entry {info.filename!r} cannot be read ({exc}).", field="file") from None
