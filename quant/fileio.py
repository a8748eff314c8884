"""Atomic outputs: a file or a directory appears complete or not at all, with normal modes.

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
