"""Byte-level plumbing shared by every codec: ``-`` for stdin/stdout, transparent
``.gz``, atomic writes (temp file in the same folder, then rename) and format sniffing.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError, MissingInputError, OutputError, StreamError

__all__ = [
    "PathLike",
    "is_std",
    "is_bytes",
    "NamedBytes",
    "display_name",
    "strip_gz",
    "suffix_of",
    "read_bytes",
    "open_input",
    "atomic_output",
    "atomic_dir",
    "write_bytes",
    "sniff",
]

PathLike = str | os.PathLike

GZIP_MAGIC = b"\x1f\x8b"


class NamedBytes(bytes):
    """Bytes that remember where they came from, so messages name the file, not ``<bytes>``."""

    def __new__(cls, data: bytes, name: str = "<bytes>"):
        obj = super().__new__(cls, data)
        obj.name = name
        return obj


def is_bytes(src) -> bool:
    """In-memory input: codecs also read ``bytes`` already held (give ``fmt=``)."""
    return isinstance(src, (bytes, bytearray, memoryview))


def is_std(src) -> bool:
    return src is None or (not is_bytes(src) and str(src) == "-")


def display_name(src) -> str:
    """How messages name an input: its path, ``stdin`` or ``<bytes>``."""
    if is_bytes(src):
        return getattr(src, "name", "<bytes>")
    return "stdin" if is_std(src) else str(src)


def strip_gz(name: str) -> tuple[str, bool]:
    """``a.npy.gz`` -> (``a.npy``, True)."""
    if name.lower().endswith(".gz"):
        return name[:-3], True
    return name, False


def suffix_of(src: PathLike) -> str:
    """Lower-case extension without the dot, ignoring a trailing ``.gz``: ``x.NPY.gz`` -> ``npy``."""
    if is_bytes(src):
        return ""
    name, _ = strip_gz(os.fspath(src))
    return Path(name).suffix.lower().lstrip(".")


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise MissingInputError(f"{path}: no such file", hint="check the path")
    if path.is_dir():
        raise InputError(f"{path}: is a folder", expected="a file")
    if not os.access(path, os.R_OK):
        raise MissingInputError(f"{path}: not readable", hint="check the permissions")


def read_bytes(src: PathLike, *, allow_empty: bool = False) -> bytes:
    """All bytes of a path, stdin or in-memory bytes, gunzipped when gzip-compressed."""
    if is_bytes(src):
        data, name = bytes(src), display_name(src)
        if not data and not allow_empty:
            raise InputError("empty input", expected="data", got="0 bytes")
    elif is_std(src):
        data = sys.stdin.buffer.read()
        name = "stdin"
        if not data and not allow_empty:
            raise InputError("empty stdin", expected="data on standard input",
                             got="0 bytes", hint="pipe a file in or give a path")
    else:
        path = Path(src)
        _check_readable(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MissingInputError(f"{path}: cannot read", got=exc.strerror) from exc
        name = str(path)
        if not data and not allow_empty:
            raise InputError(f"{name}: empty file", expected="data", got="0 bytes")
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"{name}: corrupt gzip stream", got=str(exc)) from exc
    return NamedBytes(data, name)


@contextlib.contextmanager
def open_input(src: PathLike, *, allow_empty: bool = False) -> Iterator[BinaryIO]:
    """A binary stream over a path, stdin or bytes; gzip decoded on the fly (streaming).
    Empty stdin is always an error (a pipeline whose producer failed); an empty file only
    unless ``allow_empty``."""
    if is_bytes(src):
        yield io.BytesIO(read_bytes(src, allow_empty=allow_empty))
        return
    if is_std(src):
        raw = sys.stdin.buffer
        if not hasattr(raw, "peek"):  # e.g. a BytesIO standing in for stdin
            raw = io.BufferedReader(raw)
        head = raw.peek(2)[:2]
        if head == b"":
            raise InputError("empty stdin", expected="data on standard input", got="0 bytes",
                             hint="pipe a file in or give a path")
        yield gzip.GzipFile(fileobj=raw) if head == GZIP_MAGIC else raw
        return
    path = Path(src)
    _check_readable(path)
    fh = path.open("rb")
    try:
        head = fh.read(2)
        fh.seek(0)
        if not head and not allow_empty:
            raise InputError(f"{path}: empty file", expected="data", got="0 bytes")
        yield gzip.GzipFile(fileobj=fh) if head == GZIP_MAGIC else fh
    finally:
        fh.close()


def _temp_beside(path: Path, suffix: str = "") -> Path:
    parent = path.parent
    if not parent.exists():
        raise OutputError(f"{path}: cannot create output", got=f"no folder {parent}",
                          hint="create the folder first")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{path}: cannot create output", got=f"folder {parent} not writable")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=parent)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_output(dst: PathLike, *, gz: bool | None = None) -> Iterator[BinaryIO]:
    """Binary stream to ``dst`` (or stdout for ``-``). Files are written to a temp file in the
    same folder and renamed into place only when the block succeeds, so a failed or interrupted
    run never leaves a half-written file or clobbers the previous good one. ``gz`` defaults to
    whether the name ends in ``.gz``."""
    if is_std(dst):
        out = sys.stdout.buffer
        yield out
        try:
            out.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StreamError("stdout: write failed", got=exc.strerror) from exc
        return
    path = Path(dst)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder", expected="a file path")
    if gz is None:
        gz = path.name.lower().endswith(".gz")
    tmp = _temp_beside(path)
    try:
        with tmp.open("wb") as fh:
            if gz:
                with gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gzfh:
                    yield gzfh
            else:
                yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, (OutputError, StreamError, BrokenPipeError)):
            raise OutputError(f"{path}: cannot write", got=exc.strerror or str(exc)) from exc
        raise


@contextlib.contextmanager
def atomic_path(dst: PathLike, suffix: str = "") -> Iterator[Path]:
    """A temp *path* beside ``dst`` for writers that need a file name (ffmpeg, h5py);
    renamed onto ``dst`` on success, removed on failure."""
    path = Path(dst)
    tmp = _temp_beside(path, suffix)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(dst: PathLike) -> Iterator[Path]:
    """A temp folder beside ``dst``, renamed onto it on success (an existing ``dst`` folder is
    replaced only then)."""
    import shutil

    path = Path(dst)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder", expected="a folder path")
    parent = path.parent
    if not parent.exists():
        raise OutputError(f"{path}: cannot create output", got=f"no folder {parent}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
            old.rmdir()
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes(data: bytes, dst: PathLike) -> None:
    with atomic_output(dst) as fh:
        fh.write(data)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# (offset, magic bytes, format), checked in order
_MAGIC = [
    (0, GZIP_MAGIC, "gz"), (0, b"\x93NUMPY", "npy"), (0, b"PK\x03\x04", "npz"), (0, b"PK\x05\x06", "npz"),
    (0, b"\x89PNG\r\n\x1a\n", "png"), (0, b"\xff\xd8\xff", "jpg"), (0, b"II*\x00", "tif"),
    (0, b"MM\x00*", "tif"), (8, b"WAVE", "wav"), (8, b"AVI ", "avi"), (0, b"fLaC", "flac"),
    (0, b"OggS", "ogg"), (0, b"\x89HDF\r\n\x1a\n", "h5"), (0, b"\x1a\x45\xdf\xa3", "mkv"),
    (4, b"ftyp", "mp4"), (0, b"nut/multimedia", "nut"), (0, b"YUV4MPEG2", "y4m"),
]


def sniff(head: bytes) -> str | None:
    """Guess a format from the first bytes (for stdin and extension-less files). Give enough
    bytes to hold a whole first line when the data may be JSON Lines."""
    for offset, magic, fmt in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return fmt
    if len(head) >= 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 100_000_000:
        return "safetensors"  # 8-byte little-endian header length, then the JSON header
    text = head.lstrip()
    if text[:1] == b"[":
        return "json"
    if text[:1] == b"{":
        # one complete object on the first line: JSON Lines; an object spread over lines: JSON
        first = text.split(b"\n", 1)[0].rstrip()
        return "jsonl" if first.endswith(b"}") else "json"
    return None


def peek_file(src: PathLike, n: int = 64) -> bytes:
    """First ``n`` bytes of a file (decompressed if gzip)."""
    path = Path(src)
    _check_readable(path)
    with path.open("rb") as fh:
        head = fh.read(n)
    if head[:2] == GZIP_MAGIC:
        with gzip.open(path, "rb") as fh:
            try:
                head = fh.read(n)
            except (OSError, EOFError):
                return b""
    return head

