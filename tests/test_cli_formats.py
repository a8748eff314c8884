"""The fpim CLI: help, the formats command, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cliutil import run


def test_help_lists_subcommands_with_examples(capsys) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "formats" in out and "examples:" in out


def test_formats_table(capsys) -> None:
    code, out, _ = run(capsys, "formats", "--scheme", "sp2", "--bits", "4")
    assert code == 0
    assert "13 levels" in out and "(alias)" in out


def test_formats_json(capsys) -> None:
    code, out, _ = run(capsys, "formats", "--scheme", "sp2", "--bits", "8", "--json")
    data = json.loads(out)
    assert code == 0 and data["scheme"] == "sp2" and data["bits"] == 8
    assert len(data["levels"]) == 187 and len(data["codes"]) == 256
    code, out, _ = run(capsys, "formats", "--scheme", "f8", "--bits", "8", "--fl", "7", "--json")
    assert json.loads(out)["levels"][-1] == 127 / 128


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["formats", "--scheme", "sp2", "--bits", "9"],
      "fpim formats: error: bits must be an integer in 3..8 for sp2, not 9\n"),
     (["formats", "--scheme", "f8", "--bits", "8", "--fl", "9"],
      "fpim formats: error: fl must be an integer in 0..7 for signed f8, not 9\n"),
     (["formats", "--scheme", "fixed", "--bits", "4", "--fl", "2"],
      "fpim formats: error: fl applies only to scheme f8, not 'fixed'\n"),
     (["formats", "--scheme", "int4", "--bits", "4"],
      "fpim formats: error: argument --scheme: invalid choice: 'int4' "
      "(choose from 'fixed', 'pot', 'sp2', 'f8')\n"),
     (["formats", "--scheme", "sp2"],
      "fpim formats: error: the following arguments are required: --bits\n")],
)
def test_errors_are_one_line_exit_2(capsys, argv, message) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err == message


def test_console_entry_point_has_no_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "fpim", "formats", "--scheme", "pot", "--bits",
                           "9"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr == "fpim formats: error: bits must be an integer in 2..8 for pot, not 9\n"
