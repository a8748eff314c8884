"""Atomic outputs get the modes of any new file (0666/0777 less the umask), never 0600."""

from __future__ import annotations

import os
import stat

import pytest

from quant.fileio import replace_dir_atomic, write_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_file_mode_and_replace(tmp_path, umask_022):
    p = tmp_path / "sub" / "out.v"
    write_atomic(p, "a\n")
    assert p.read_text() == "a\n" and _mode(p) == 0o644
    write_atomic(p, b"b")
    assert p.read_bytes() == b"b" and _mode(p) == 0o644
    assert sorted(x.name for x in p.parent.iterdir()) == ["out.v"]  # no temporary left


def test_directory_mode_replace_and_failure(tmp_path, umask_022):
    d = tmp_path / "art"
    replace_dir_atomic(d, lambda t: (t / "m.json").write_text("1"))
    assert _mode(d) == 0o755 and (d / "m.json").read_text() == "1"
    replace_dir_atomic(d, lambda t: (t / "m.json").write_text("2"))
    assert (d / "m.json").read_text() == "2"

    def broken(t):
        (t / "m.json").write_text("3")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_dir_atomic(d, broken)
    assert (d / "m.json").read_text() == "2"  # the old directory is untouched
    assert sorted(x.name for x in tmp_path.iterdir()) == ["art"]  # nothing half-written
