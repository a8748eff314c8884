"""fpim verify's reproduce line carries every option that changes the cases run."""

from __future__ import annotations

import shlex

from fpim.cli import build_parser
from fpim.commands.verify import reproduce_line


def _line(argv: list[str]) -> str:
    return reproduce_line(build_parser().parse_args(["verify", *argv]))


def test_reproduce_line_round_trips_every_option():
    argv = ["--accel", "tiny", "--set", "engine.cols=3", "--set", "memory.k_tile=8",
            "--cases", "7", "--seed", "11", "--out-pattern", "heavy",
            "--artifact", "runs/my art", "--layer", "layer1.0.conv1"]
    line = _line(argv)
    again = build_parser().parse_args(shlex.split(line)[1:])
    want = build_parser().parse_args(["verify", *argv])
    for field in ("accel", "overrides", "cases", "seed", "out_pattern", "artifact",
                  "layer", "no_artifact"):
        assert getattr(again, field) == getattr(want, field), field


def test_reproduce_line_keeps_no_artifact():
    assert "--no-artifact" in _line(["--accel", "tiny", "--no-artifact"])
    assert "--artifact" not in _line(["--accel", "tiny", "--no-artifact"])


def test_reproduce_line_keeps_the_harness_and_all_layers():
    line = _line(["--accel", "tiny", "--harness", "both", "--artifact", "a", "--all-layers"])
    again = build_parser().parse_args(shlex.split(line)[1:])
    assert (again.harness, again.all_layers, again.artifact, again.out_pattern) == \
        ("both", True, "a", None)


def test_reproduce_line_keeps_the_block():
    line = _line(["--accel", "tiny", "--set", "engine.act_signed=true", "--artifact", "v",
                  "--block", "1", "--cases", "0"])
    again = build_parser().parse_args(shlex.split(line)[1:])
    assert (again.block, again.artifact, again.overrides, again.cases) == \
        (1, "v", ["engine.act_signed=true"], 0)
