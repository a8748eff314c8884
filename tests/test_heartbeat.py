"""Off a terminal, long commands are never silent (issue 23, item 5): the training commands
run inside a heartbeat that prints ``STEP: ... (N s)`` every :data:`quant.progress.PERIOD`
seconds on stderr, also through the steps that have no bar of their own (the evaluations
between trainings)."""

from __future__ import annotations

import re
import time

import pytest

import fpim.progress
from tests.cliutil import run


def test_lines_tick_while_a_step_runs(monkeypatch, capsys) -> None:
    monkeypatch.setattr(fpim.progress, "PERIOD", 0.02)
    with fpim.progress.lines("step") as report:
        report(3, 7)
        time.sleep(0.2)
    err = capsys.readouterr().err
    assert re.search(r"^step: 3/7 \(\d+ s\)$", err, re.M)


def test_lines_say_nothing_for_a_short_step(capsys) -> None:
    with fpim.progress.lines("step"):
        pass
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv, step", [
    (["pim", "train", "--model", "cnn", "--macro", "sram512x128_adc7",
      "--float-epochs", "1", "--qat-epochs", "0", "--epochs", "0"], "pim train"),
    (["quantize", "--model", "cnn", "--data", "digits", "--scheme", "fixed", "--bits", "8",
      "--float-epochs", "1",
      "--epochs", "0"], "quantize"),
])
def test_training_commands_beat_off_a_terminal(argv, step, monkeypatch, capsys,
                                               tmp_path) -> None:
    monkeypatch.setattr(fpim.progress, "PERIOD", 0.05)
    code, _out, err = run(capsys, *argv, "--out", str(tmp_path / "a"))
    assert code == 0, err
    assert re.search(rf"^{step}: running \(\d+ s\)$", err, re.M), err[-2000:]
