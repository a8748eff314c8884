"""Issue 23 item 5: one vocabulary across text, JSON and CSV; --csv wherever a table is
printed; progress lines off a terminal."""

from __future__ import annotations

import csv
import io
import json
import sys
import time

import pytest

import fpim.progress
from fpim.cli import main
from quant.progress import PeriodicLines

ARTIFACT = "configs/artifacts/cnn_msq4_digits"


def _run(capsys, *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _header(text: str, first: str) -> list[str]:
    """The column names of the text table whose first column is ``first``."""
    line = next(ln for ln in text.splitlines() if ln.split()[:1] == [first])
    return line.split()


@pytest.mark.parametrize("argv,first,rows_key", [
    (("simulate", "--model", "resnet18", "--accel", "tiny", "--mode", "analytical"), "name",
     "layers"),
    (("pim", "simulate", "--artifact", ARTIFACT, "--macro", "sram512x128_adc7"), "name",
     "layers"),
])
def test_text_csv_and_json_name_columns_alike(capsys, tmp_path, argv, first, rows_key):
    text = _run(capsys, *argv, "--csv", str(tmp_path / "t.csv"))
    data = json.loads(_run(capsys, *argv, "--json"))
    keys = set(data[rows_key][0])
    shown = _header(text, first)
    assert set(shown) <= keys, set(shown) - keys
    with open(tmp_path / "t.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert set(shown) <= set(rows[0]) <= keys
    assert len(rows) == len(data[rows_key])
    assert [r["name"] for r in rows] == [x["name"] for x in data[rows_key]]


def test_every_printed_table_has_csv(capsys, tmp_path):
    out = tmp_path / "f.csv"
    text = _run(capsys, "formats", "--scheme", "sp2", "--bits", "4", "--csv", str(out))
    data = json.loads(_run(capsys, "formats", "--scheme", "sp2", "--bits", "4", "--json"))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == _header(text, "word")
    assert [int(r["int_level"]) for r in rows] == [c["int_level"] for c in data["codes"]]


def test_csv_path_refused_before_work(capsys, tmp_path):
    assert main(["pim", "simulate", "--artifact", ARTIFACT, "--macro", "sram512x128_adc7",
                 "--csv", str(tmp_path)]) == 2
    assert "csv must be a file to write, not the directory" in capsys.readouterr().err


def test_periodic_lines_off_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(fpim.progress, "PERIOD", 0.05)
    with fpim.progress.lines("step") as report:
        report(1, 4)
        time.sleep(0.3)
    err = capsys.readouterr().err
    assert err.startswith("step: 1/4 (") and err.count("\n") >= 2
    with fpim.progress.lines("quick"):
        pass
    assert capsys.readouterr().err == ""  # a step shorter than the period says nothing


def test_a_tqdm_refresh_becomes_a_line(capsys):
    sink = PeriodicLines()
    sink.write("\rfloat:  10%|#   | 5/50")
    sink.write("\r" + " " * 20 + "\r")
    sys.stderr.flush()
    assert capsys.readouterr().err == "float:  10%|#   | 5/50\n"
