"""Files in and out: UTF-8 text read with one clear error, output paths checked before the work
that produces them, and atomic outputs (a file or a directory appears complete or not at all,
with normal modes).

Temporary names are created next to the target (``tempfile`` makes them private: 0600 for a
file, 0700 for a directory); before the rename they get the modes any other new file would
have, ``0666`` / ``0777`` less the process umask (0644 / 0755 with the usual umask 022).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from quant.errors import ConfigError, FpimError


def read_text(path: str | os.PathLike, what: str,
              error: type[FpimError] = ConfigError) -> str:
    """The text of file ``path``: UTF-8, a leading byte-order mark dropped. ``error`` names
    ``what`` (e.g. ``topology``) if the file is missing, unreadable or not UTF-8."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except (OSError, ValueError) as exc:
        reason = "it does not exist" if not _exists(p) else getattr(exc, "strerror", str(exc))
        raise error(f"{what} must be a readable file, not {str(path)!r} ({reason})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise error(f"{what} {str(path)!r} must be UTF-8 text, not byte "
                    f"0x{data[exc.start]:02x} (line {line})") from None
    if "\0" in text:  # e.g. UTF-16 without a byte-order mark
        line = text[:text.index("\0")].count("\n") + 1
        raise error(f"{what} {str(path)!r} must be UTF-8 text, not binary (a NUL byte on "
                    f"line {line})")
    return text


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError:  # e.g. a name too long for the file system
        return False


def check_output(path: str | os.PathLike, what: str, *, directory: bool = False) -> Path:
    """Raise :class:`ConfigError` unless ``path`` can be written as a file (``directory``:
    a directory to write into), so that a command refuses it before its work starts.

    A file output must not be an existing directory, a directory output not an existing
    file; the nearest existing ancestor must be a directory this process may write to.
    """
    p = Path(path)
    if not str(path):
        raise ConfigError(f"{what} must be a path, not ''")
    if directory and _exists(p) and not p.is_dir():
        raise ConfigError(f"{what} must be a directory to write into, not the file {str(path)!r}")
    if not directory and p.is_dir():
        raise ConfigError(f"{what} must be a file to write, not the directory {str(path)!r}")
    base = p if directory and p.is_dir() else p.parent
    while not _exists(base) and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise ConfigError(f"{what} must be a path under a directory, not {str(path)!r} "
                          f"({str(base)!r} is a file)")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} must be a writable path, not {str(path)!r} "
                          f"({str(base)!r} is not writable)")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write a file so that readers see either the old or the complete new content."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            f.write(data)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_dir_atomic(path: str | os.PathLike, fill: Callable[[Path], None]) -> None:
    """Create directory ``path`` (replacing an existing one) from ``fill(tmp_dir)``, which
    writes the contents into a temporary sibling; readers never see a half-written one."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        fill(tmp)
        if dest.exists():
            old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old-"))
            os.replace(dest, old / "a")
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
