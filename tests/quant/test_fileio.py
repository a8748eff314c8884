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


def test_read_text_accepts_a_byte_order_mark_and_names_bad_bytes(tmp_path):
    from quant.errors import ArtifactError, ConfigError
    from quant.fileio import read_text

    p = tmp_path / "t.csv"
    p.write_bytes(b"\xef\xbb\xbfLayer, a\n")
    assert read_text(p, "topology") == "Layer, a\n"
    p.write_bytes(b"ok\nna\xefve\n")
    with pytest.raises(ConfigError, match=r"topology '.*t.csv' must be UTF-8 text, not byte "
                                          r"0xef \(line 2\)$"):
        read_text(p, "topology")
    p.write_bytes("ab".encode("utf-16-le"))
    with pytest.raises(ArtifactError, match=r"must be UTF-8 text, not binary \(a NUL byte on "
                                            r"line 1\)$"):
        read_text(p, "manifest.json", ArtifactError)
    with pytest.raises(ConfigError, match=r"must be a readable file, not .* \(it does not "
                                          r"exist\)$"):
        read_text(tmp_path / "none.csv", "topology")
    with pytest.raises(ConfigError, match=r"must be a readable file, not .*\(Is a directory\)"):
        read_text(tmp_path, "topology")


def test_check_output_refuses_what_cannot_be_written(tmp_path, monkeypatch):
    from quant.errors import ConfigError
    from quant.fileio import check_output

    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    assert check_output(tmp_path / "new" / "deep" / "x.csv", "csv") == tmp_path / "new" / \
        "deep" / "x.csv"
    assert check_output(tmp_path / "f", "csv") == tmp_path / "f"  # replaced when written
    assert check_output(tmp_path / "d", "out", directory=True) == tmp_path / "d"
    for path, directory, message in [
        (tmp_path / "d", False, "csv must be a file to write, not the directory"),
        (tmp_path / "f", True, "csv must be a directory to write into, not the file"),
        (tmp_path / "f" / "x.csv", False, "csv must be a path under a directory"),
        (tmp_path / "f" / "a" / "b", True, "csv must be a path under a directory"),
        ("", False, "csv must be a path, not ''"),
    ]:
        with pytest.raises(ConfigError, match=message):
            check_output(path, "csv", directory=directory)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: str(p) != str(tmp_path / "d") and real(p, m))
    with pytest.raises(ConfigError, match=r"csv must be a writable path, not .* is not writable"):
        check_output(tmp_path / "d" / "new" / "x.csv", "csv")
    assert not (tmp_path / "d" / "new").exists()  # checking creates nothing
