"""Verilator build directories are used by one process at a time (hw.tb.verilator
directory_lock): `make test` runs two pytest-xdist workers, and two workers, or two
`fpim verify` runs, may build or run the same model."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hw.tb.verilator import LOCK, directory_lock

HOLD = """
import sys, time
from pathlib import Path
from hw.tb.verilator import directory_lock
with directory_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_held_directory_lock_excludes_another_process(tmp_path) -> None:
    from filelock import FileLock, Timeout

    d = tmp_path / "build"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(d), "5"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Timeout):
            FileLock(str(d / LOCK)).acquire(timeout=0.2)
    finally:
        holder.kill()
        holder.wait()
    with directory_lock(d):  # released with its holder
        assert (d / LOCK).exists()


TRY = """
import sys
from filelock import FileLock, Timeout
try:
    FileLock(sys.argv[1]).acquire(timeout=0.2)
    print("free")
except Timeout:
    print("held")
"""


def test_build_verilog_compiles_under_the_directory_lock(tmp_path, monkeypatch) -> None:
    import hw.tb.verilator as vl

    seen = []

    def probe(verilog, top, d):  # stands in for the compile: is the lock held meanwhile?
        out = subprocess.run([sys.executable, "-c", TRY, str(d / LOCK)], text=True,
                             capture_output=True, check=True).stdout.strip()
        seen.append(out)
        return vl.Build(top, d)

    monkeypatch.setattr(vl, "_build_verilog", probe)
    vl.build_verilog("module m; endmodule", "m", tmp_path / "b")
    assert seen == ["held"]
