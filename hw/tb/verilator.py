"""Verilator builds and cocotb runs of fpim's generated Verilog, through ``cocotb.runner``.

cocotb is pinned to 1.9.2: cocotb 2.x does not build against Debian's Verilator 5.006.
:func:`build` writes a component's Verilog into its own build directory (one per parameter
set) and compiles it once: a stamp holding the SHA-256 of the Verilog and the Verilator
arguments skips the compile when nothing changed. :func:`run` runs a cocotb test module on a
build and returns the number of tests and failures.

Verilator arguments (:data:`VERILATOR_ARGS`): ``-Wno-WIDTH`` because Amaranth's Verilog
assigns narrower expressions to wider signals (and back) on purpose; ``-Wno-CASEINCOMPLETE``
because a core with a row count that is not a power of two drains through a ``casez`` on
``drain_row`` whose unused codes (``drain_row >= rows``, which the controller never
produces) have no arm. Every other warning is left fatal; docs/rtl.md lists what ``-Wall``
would add. The C++ compile runs ``make -j2`` (``MAKEFLAGS``) unless the caller set it.

A build directory is used by one process at a time (:func:`directory_lock`, an advisory
file lock): two commands or test workers (``pytest -n``) that build the same model wait for
each other, and the second finds the stamp current and skips the compile; a cocotb run holds
the lock too, as it writes its log and results into the build directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from hw.synth import emit_verilog
from quant.errors import SimulationError

VERILATOR_ARGS = ("-Wno-WIDTH", "-Wno-CASEINCOMPLETE")
INSTALL_HINT = "install it with `sudo apt-get install verilator` (Debian/Ubuntu) or `make tools`"
STAMP = "fpim-build.sha256"
LOCK = "fpim-build.lock"


@contextmanager
def directory_lock(d: Path) -> Iterator[None]:
    """Hold the advisory lock of build directory ``d`` (created if missing) for the block."""
    d.mkdir(parents=True, exist_ok=True)
    with FileLock(str(d / LOCK)):
        yield


def find_verilator() -> str:
    """Path of ``verilator``; raises :class:`SimulationError` with an install hint."""
    path = shutil.which("verilator")
    if path is None:
        raise SimulationError("verilator must be installed to run the cocotb testbenches, "
                              f"not missing; {INSTALL_HINT}")
    return path


@dataclass(frozen=True)
class Build:
    """A compiled Verilator model: its top module and directory."""

    top: str
    directory: Path


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])


def build(component, top: str, build_dir: str | os.PathLike) -> Build:
    """Emit ``component`` as Verilog module ``top`` and compile it with Verilator for cocotb."""
    return build_verilog(emit_verilog(component, top), top, build_dir)


def _runner_api():
    with warnings.catch_warnings():  # "Python runners ... are an experimental feature"
        warnings.simplefilter("ignore", UserWarning)
        from cocotb import runner
    return runner


def _runner():
    return _runner_api().get_runner("verilator")


def build_verilog(verilog: str, top: str, build_dir: str | os.PathLike) -> Build:
    """Compile Verilog text ``verilog`` (module ``top``) in ``build_dir`` unless up to date."""
    find_verilator()
    d = Path(build_dir).resolve()
    with directory_lock(d):
        return _build_verilog(verilog, top, d)


def _build_verilog(verilog: str, top: str, d: Path) -> Build:
    digest = hashlib.sha256((verilog + "\0" + " ".join(VERILATOR_ARGS)).encode()).hexdigest()
    stamp = d / STAMP
    if stamp.exists() and stamp.read_text() == digest and (d / top).exists():
        return Build(top, d)
    stamp.unlink(missing_ok=True)
    src = d / f"{top}.v"
    src.write_text(verilog)
    log = d / "build.log"
    runner = _runner()
    jobs = "MAKEFLAGS" not in os.environ
    if jobs:
        os.environ["MAKEFLAGS"] = "-j2"
    try:
        runner.build(verilog_sources=[src], hdl_toplevel=top, build_dir=d,
                     build_args=list(VERILATOR_ARGS), log_file=log)
    except SystemExit as exc:  # cocotb's runner exits when a command fails
        raise SimulationError(f"verilator build of {top} failed ({exc}): {_tail(log)}") from None
    finally:
        if jobs:
            del os.environ["MAKEFLAGS"]
    if not (d / top).exists():
        raise SimulationError(f"verilator build of {top} produced no binary: {_tail(log)}")
    stamp.write_text(digest)
    return Build(top, d)


def run(b: Build, test_module: str, *, test_dir: str | os.PathLike,
        env: dict[str, str] | None = None, testcase: str | None = None,
        log_file: str | os.PathLike | None = None) -> tuple[int, int]:
    """Run cocotb ``test_module`` on build ``b``; returns ``(tests, failed)``.

    ``test_dir`` must contain the module unless it is importable (``hw.tb...``).
    ``log_file`` keeps the simulator's output out of the terminal. The caller decides what a
    failure means: cocotb's runner would otherwise raise by itself under pytest only (it
    looks at ``PYTEST_CURRENT_TEST``), so that variable is hidden from it for the call.
    """
    get_results = _runner_api().get_results
    runner = _runner()
    runner.build_dir = b.directory  # the build above, possibly from an earlier process
    test_dir = Path(test_dir).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    if str(test_dir) not in sys.path:
        sys.path.insert(0, str(test_dir))  # cocotb's child gets the parent's sys.path
    hidden = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        with directory_lock(b.directory):
            xml = runner.test(hdl_toplevel=b.top, hdl_toplevel_lang="verilog",
                              test_module=test_module, test_dir=test_dir,
                              build_dir=b.directory, extra_env=env or {},
                              testcase=testcase, log_file=log_file,
                              results_xml=str(test_dir / f"{b.top}.{test_module}.results.xml"))
    except SystemExit as exc:
        tail = _tail(Path(log_file)) if log_file else ""
        raise SimulationError(f"cocotb run of {test_module} on {b.top} failed ({exc}) {tail}"
                              ) from None
    finally:
        if hidden is not None:
            os.environ["PYTEST_CURRENT_TEST"] = hidden
    try:
        return get_results(xml)
    except SystemExit as exc:
        raise SimulationError(f"cocotb run of {test_module} on {b.top}: {exc}") from None
