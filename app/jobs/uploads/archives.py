"""Uploaded archives: a .zip or .tar (also .tar.gz, .tar.bz2, .tar.xz) of images (a probe set) or of a saved run's
files (a pushed run), checked member by member and extracted by streaming, with the bounds on members, bytes and
pixels (per image and all together) checked while reading: an archive over a bound is refused at the first file
that passes it, before the rest is read.

Nothing is written outside the destination folder: a member with an absolute name, a `..`, an unprintable name,
a link, a device or anything but a file or folder refuses the whole archive, and files are created exclusively
under names built from the checked parts. Folders named like `__MACOSX` or starting with a dot are skipped, and so
are files that are not images in a probe set. The caller removes the destination when a BadUpload is raised.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import io
import lzma
import os
import re
import stat
import struct
import tarfile
import zipfile
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, BinaryIO

from PIL import Image

from app.core.config import Settings
from app.core.errors import BadUpload, StorageUnavailable
from dissect_core.data.probe import IMAGE_EXTENSIONS

CHUNK_BYTES = 1 << 18
#: tarfile reads a header (a pax record, a GNU long name) whole; a larger one is refused instead of loaded.
MAX_HEADER_BYTES = 1 << 20
#: A zip's central directory entry: 46 fixed bytes plus its name, extra field and comment; more is refused.
MAX_ZIP_ENTRY_BYTES = 4096
MAX_DEPTH = 32
FORMATS = ".zip, .tar, .tar.gz, .tar.bz2 or .tar.xz"
SKIPPED_FOLDERS = frozenset({"__MACOSX"})

_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_DRIVE = re.compile(r"[A-Za-z]:")
#: Errors writing the extracted files that are the server's, not the archive's: its disk is full or unwritable.
SERVER_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


@dataclass(frozen=True)
class ArchiveBounds:
    """How much one archive may hold: members (files and folders), bytes of files, pixels per image and in all;
    `contents`, `smaller` and `bytes_variable` say in a refusal what the bytes are of and how to fit the bound."""

    max_files: int
    max_bytes: int
    max_pixels: int
    max_total_pixels: int
    contents: str = "images"
    smaller: str = "upload fewer or smaller images"
    bytes_variable: str = "NEURON_ATLAS_PROBE_MAX_MB"

    @classmethod
    def from_settings(cls, settings: Settings) -> ArchiveBounds:
        """Return the bounds the server's settings set."""
        return cls(
            settings.probe_max_files,
            settings.probe_max_bytes,
            settings.probe_max_pixels,
            settings.probe_max_total_pixels,
        )


@dataclass(frozen=True)
class ExtractedFile:
    """A file written under the destination: its path there (with `/`), its sha256 and its bytes."""

    relative: str
    sha256: str
    n_bytes: int


@dataclass(frozen=True)
class _Member:
    """An archive member the extractor handles: its checked name parts, declared size and how to read it."""

    name: str
    parts: tuple[str, ...]
    size: int
    open: Callable[[], IO[bytes]]  # only called for the members kept


def _shown(name: str) -> str:
    return ascii(name if len(name) <= 120 else name[:117] + "...")


def member_parts(name: str) -> tuple[str, ...]:
    """Return a member name's path parts, or raise BadUpload when it is absolute, climbs out or is unprintable."""
    if not name or not name.isprintable():
        raise BadUpload(
            f"The archive has a member with an unprintable name ({_shown(name)}); rename it and pack again."
        )
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise BadUpload(
            f"The archive's member {_shown(name)} has an absolute name; pack the images with relative names "
            "(e.g. `cd images && zip -r ../probe.zip .`)."
        )
    parts = tuple(part for part in re.split(r"[\\/]", name) if part not in ("", "."))
    if ".." in parts:
        raise BadUpload(f"The archive's member {_shown(name)} climbs out of the archive with '..'; remove it.")
    if len(parts) > MAX_DEPTH or any(len(part.encode()) > 255 for part in parts):
        raise BadUpload(f"The archive's member {_shown(name)} is nested too deep or too long a name; shorten it.")
    return parts


def _is_image(parts: tuple[str, ...]) -> bool:
    if not parts or parts[0] in SKIPPED_FOLDERS or any(part.startswith(".") for part in parts):
        return False
    return Path(parts[-1]).suffix.lower() in IMAGE_EXTENSIONS


def extract_images(archive: BinaryIO, dest: Path, bounds: ArchiveBounds) -> list[ExtractedFile]:
    """Extract the images of a .zip or .tar archive into the new folder `dest`; return them sorted by path.

    Raises BadUpload naming the first problem; `dest` (and a decompressed copy next to it) may then hold part.
    """
    images = _extract_archive(archive, dest, bounds, _is_image)
    if not images:
        raise BadUpload(
            f"The archive holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); add some and upload it again."
        )
    return images


def extract_files(archive: BinaryIO, dest: Path, bounds: ArchiveBounds) -> list[ExtractedFile]:
    """Extract every file of a .zip or .tar archive into the new folder `dest` (images checked as in a probe set;
    hidden and `__MACOSX` folders skipped); return them sorted by path.

    Raises BadUpload naming the first problem; `dest` (and a decompressed copy next to it) may then hold part.
    """
    return _extract_archive(archive, dest, bounds, _is_listed)


def _is_listed(parts: tuple[str, ...]) -> bool:
    return bool(parts) and parts[0] not in SKIPPED_FOLDERS and not any(part.startswith(".") for part in parts)


def _extract_archive(
    archive: BinaryIO, dest: Path, bounds: ArchiveBounds, keep: Callable[[tuple[str, ...]], bool]
) -> list[ExtractedFile]:
    """Extract the members of an archive whose name parts `keep` accepts into `dest`; return them sorted by path."""
    head = archive.read(512)
    archive.seek(0)
    dest.mkdir(parents=True)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        with closing(_zip_members(archive, bounds, keep)) as members:
            files = _extract(members, dest, bounds)
    elif head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")):
        plain = dest.with_name(dest.name + ".tar")
        try:
            _decompress(archive, head, plain, bounds)
            with open(plain, "rb") as tar_file, closing(_tar_members(tar_file, bounds, keep)) as members:
                files = _extract(members, dest, bounds)
        finally:
            plain.unlink(missing_ok=True)
    elif head[257:262] == b"ustar":
        with closing(_tar_members(archive, bounds, keep)) as members:
            files = _extract(members, dest, bounds)
    else:
        raise BadUpload(f"The file is not a {FORMATS} archive; pack the {bounds.contents} with zip or tar.")
    return sorted(files, key=lambda file: file.relative)


def _extract(members: Generator[_Member, None, None], dest: Path, bounds: ArchiveBounds) -> list[ExtractedFile]:
    files: list[ExtractedFile] = []
    total = total_pixels = 0
    for member in members:
        if total + member.size > bounds.max_bytes:
            raise _too_many_bytes(bounds)
        target = dest.joinpath(*member.parts)
        digest = hashlib.sha256()
        written = 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with member.open() as source, open(target, "xb") as out:
                while chunk := source.read(CHUNK_BYTES):
                    total += len(chunk)
                    written += len(chunk)
                    if total > bounds.max_bytes:
                        raise _too_many_bytes(bounds)
                    digest.update(chunk)
                    out.write(chunk)
        except FileExistsError:
            raise BadUpload(f"The archive holds {_shown(member.name)} twice; keep one of them.") from None
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, NotImplementedError) as error:
            raise BadUpload(
                f"The archive's member {_shown(member.name)} is damaged ({error}); pack it again."
            ) from None
        except OSError as error:
            cause = error.strerror or type(error).__name__  # never str(error): it names the server path
            if error.errno in SERVER_ERRNOS:
                raise _server_cannot_write(error) from None
            raise BadUpload(
                f"The archive's member {_shown(member.name)} cannot be extracted ({cause}); check that no file "
                "shares its name with a folder, then pack it again."
            ) from None
        total_pixels += _check_pixels(target, member.name, bounds) if _is_image(member.parts) else 0
        if total_pixels > bounds.max_total_pixels:
            raise BadUpload(
                f"The archive's images hold more than {bounds.max_total_pixels / 1e6:,.0f} megapixels together "
                f"(passed at {_shown(member.name)}), more than the worker decodes in reasonable time; upload fewer "
                "or smaller images, or raise NEURON_ATLAS_PROBE_MAX_TOTAL_MEGAPIXELS on the server."
            )
        files.append(ExtractedFile(relative="/".join(member.parts), sha256=digest.hexdigest(), n_bytes=written))
    return files


def _server_cannot_write(error: OSError) -> StorageUnavailable:
    """Return the refusal of an archive the server could not unpack for want of space or permission."""
    cause = error.strerror or type(error).__name__  # never str(error): it names the server path
    full = error.errno in (errno.ENOSPC, errno.EDQUOT)
    problem = "the server's disk is full" if full else "the server cannot write its data folder"
    fix = "free disk space" if full else "make the data folder writable by the server"
    return StorageUnavailable(
        f"The archive could not be unpacked: {problem} ({cause}); nothing was kept. Ask the operator to {fix}, "
        "then upload it again."
    )


class UnreadableImage(ValueError):
    """Pillow cannot read a file as an image."""


def image_pixels(source: Path | IO[bytes], max_pixels: int) -> int:
    """Return the pixels of the image in `source` (more than `max_pixels` for one over the bound, which is then not
    verified); raise UnreadableImage unless Pillow opens it and, within the bound, verifies it.

    Only the header is read for the size (Pillow's own DecompressionBombError counts as too big), so an image
    claiming billions of pixels is refused before any of them is decoded.
    """
    try:
        with Image.open(source) as image:
            pixels = image.width * image.height
            if pixels <= max_pixels:
                image.verify()
    except Image.DecompressionBombError:
        pixels = max_pixels + 1
    except (OSError, SyntaxError, ValueError, struct.error):
        raise UnreadableImage("Pillow cannot read the file as an image") from None
    return pixels


def _check_pixels(path: Path, name: str, bounds: ArchiveBounds) -> int:
    """Return the pixels of the image at `path`; raise BadUpload unless it opens in Pillow with at most
    `max_pixels` pixels (`image_pixels`)."""
    try:
        pixels = image_pixels(path, bounds.max_pixels)
    except UnreadableImage:
        raise BadUpload(f"The archive's {_shown(name)} is not an image Pillow can read; remove it or fix it.") from None
    if pixels > bounds.max_pixels:
        raise BadUpload(
            f"The image {_shown(name)} has more than {bounds.max_pixels:,} pixels; scale it down, or raise "
            "NEURON_ATLAS_PROBE_MAX_PIXELS on the server."
        )
    return pixels


def _size(n_bytes: int) -> str:
    """Return a byte count as the largest whole unit that fits: `16 KB`, `1 MB`, `2 GB`."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n_bytes >= scale:
            value = n_bytes / scale
            return f"{value:,.0f} {unit}" if value.is_integer() else f"{value:,.1f} {unit}"
    return f"{n_bytes} bytes"


def _too_many_bytes(bounds: ArchiveBounds) -> BadUpload:
    return BadUpload(
        f"The archive's {bounds.contents} add up to more than {_size(bounds.max_bytes)} uncompressed; "
        f"{bounds.smaller}, or raise {bounds.bytes_variable} on the server."
    )


def _too_many_members(bounds: ArchiveBounds) -> BadUpload:
    return BadUpload(
        f"The archive has more than {bounds.max_files:,} members (files and folders); upload at most that many, "
        "or raise NEURON_ATLAS_PROBE_MAX_FILES on the server."
    )


# --- zip -------------------------------------------------------------------------------------------------------


def _zip_members(
    archive: BinaryIO, bounds: ArchiveBounds, keep: Callable[[tuple[str, ...]], bool]
) -> Generator[_Member, None, None]:
    _check_zip_directory(archive, bounds)
    try:
        zip_file = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise BadUpload(f"The file is not a readable zip archive ({error}); pack it again.") from None
    with zip_file:
        for info in zip_file.infolist():
            parts = member_parts(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise BadUpload(f"The archive's member {_shown(info.filename)} is a link; archive the file itself.")
            if info.is_dir():
                continue
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # no type bits: written by DOS, Windows, Python
                raise BadUpload(f"The archive's member {_shown(info.filename)} is a device or special file; remove it.")
            if info.flag_bits & 0x1:
                raise BadUpload(
                    f"The archive's member {_shown(info.filename)} is encrypted; pack it without a password."
                )
            if keep(parts):
                yield _Member(info.filename, parts, info.file_size, partial(zip_file.open, info))


def _check_zip_directory(archive: BinaryIO, bounds: ArchiveBounds) -> None:
    """Raise BadUpload unless the zip's central directory lists at most `max_files` entries.

    zipfile reads the whole directory into memory when it opens an archive, so its entries are counted first
    from the raw bytes: the end record (or its zip64 twin) says where the directory is, each entry how long it is.
    """
    malformed = BadUpload("The file is not a readable zip archive (its central directory is damaged); pack it again.")
    size = archive.seek(0, os.SEEK_END)
    tail_start = max(0, size - _EOCD.size - 0xFFFF)
    archive.seek(tail_start)
    tail = archive.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        raise malformed
    _, _, _, _, entries, directory_size, directory_offset, _ = _EOCD.unpack_from(tail, at)
    if entries == 0xFFFF or 0xFFFFFFFF in (directory_size, directory_offset):
        try:
            archive.seek(tail_start + at - _ZIP64_LOCATOR.size)
            signature, _, record_offset, _ = _ZIP64_LOCATOR.unpack(archive.read(_ZIP64_LOCATOR.size))
            archive.seek(record_offset)
            record = archive.read(_ZIP64_EOCD.size)
        except (OSError, ValueError, struct.error):
            raise malformed from None
        if signature != b"PK\x06\x07" or len(record) != _ZIP64_EOCD.size or record[:4] != b"PK\x06\x06":
            raise malformed
        entries, directory_size, directory_offset = _ZIP64_EOCD.unpack(record)[7:10]
    if entries > bounds.max_files or directory_size > entries * MAX_ZIP_ENTRY_BYTES:
        raise _too_many_members(bounds) if entries > bounds.max_files else malformed
    archive.seek(directory_offset)
    directory = archive.read(directory_size)
    position = counted = 0
    while position < len(directory):
        if directory[position : position + 4] != b"PK\x01\x02" or position + 46 > len(directory):
            raise malformed
        name_length, extra_length, comment_length = struct.unpack_from("<3H", directory, position + 28)
        position += 46 + name_length + extra_length + comment_length
        counted += 1
    if position != directory_size or counted != entries:
        raise malformed
    archive.seek(0)


# --- tar -------------------------------------------------------------------------------------------------------


class _CappedReads:
    """A binary file whose single reads are at most MAX_HEADER_BYTES: tarfile reads each header in one call."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def read(self, size: int = -1) -> bytes:
        """Return up to `size` bytes; raise BadUpload for a read past the cap (an oversized tar header)."""
        if size < 0 or size > MAX_HEADER_BYTES:
            raise BadUpload(
                f"The archive has a tar header larger than {MAX_HEADER_BYTES // 2**20} MB; pack it again with tar."
            )
        return self._file.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move to `offset` and return the new position."""
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        """Return the position."""
        return self._file.tell()


def _open_tar(archive: IO[bytes]) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=_CappedReads(archive), mode="r:")  # type: ignore[call-overload]
    except tarfile.TarError as error:
        raise BadUpload(f"The file is not a readable tar archive ({error}); pack it again.") from None


def _tar_members(
    archive: IO[bytes], bounds: ArchiveBounds, keep: Callable[[tuple[str, ...]], bool]
) -> Generator[_Member, None, None]:
    with _open_tar(archive) as tar:
        count = 0
        while True:
            try:
                member = tar.next()
            except tarfile.TarError as error:
                raise BadUpload(f"The tar archive is damaged ({error}); pack it again.") from None
            if member is None:
                return
            count += 1
            if count > bounds.max_files:
                raise _too_many_members(bounds)
            parts = member_parts(member.name)
            if member.issym() or member.islnk():
                raise BadUpload(f"The archive's member {_shown(member.name)} is a link; archive the file itself.")
            if member.isdir():
                continue
            if not member.isfile():
                raise BadUpload(f"The archive's member {_shown(member.name)} is a device or special file; remove it.")
            if keep(parts):
                yield _Member(member.name, parts, member.size, partial(_tar_file, tar, member))


def _tar_file(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    extracted = tar.extractfile(member)
    if extracted is None:  # isfile() members always have data; kept for the type checker
        raise BadUpload(f"The archive's member {_shown(member.name)} has no data; pack it again.")
    return extracted


def _decompress(archive: BinaryIO, head: bytes, plain: Path, bounds: ArchiveBounds) -> None:
    """Write the tar inside a gzip, bzip2 or xz file to `plain`, stopping once it is larger than the bounds allow."""
    # Each member adds a header block, padding and possibly a pax record; the end adds two blocks and padding.
    limit = bounds.max_bytes + (bounds.max_files + 1) * 4 * tarfile.BLOCKSIZE + tarfile.RECORDSIZE
    written = 0
    try:
        with _decompressor(archive, head) as source, open(plain, "xb") as out:
            while chunk := source.read(CHUNK_BYTES):
                written += len(chunk)
                if written > limit:
                    raise _too_many_bytes(bounds)
                out.write(chunk)
    except OSError as error:
        if error.errno in SERVER_ERRNOS:
            raise _server_cannot_write(error) from None
        raise BadUpload(f"The compressed archive is damaged ({error}); pack it again.") from None
    except (EOFError, lzma.LZMAError) as error:
        raise BadUpload(f"The compressed archive is damaged ({error}); pack it again.") from None


def _decompressor(archive: BinaryIO, head: bytes) -> io.BufferedIOBase:
    """Return a reader of the bytes inside a gzip, bzip2 or xz file (by its first bytes)."""
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=archive, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(archive, "rb")
    return lzma.LZMAFile(archive, "rb")
