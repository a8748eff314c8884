"""bench/pim_table.py's operating point: the range scale is chosen on (b) averaged over the
runs (issue 20), not on run 0 alone."""

from __future__ import annotations

import importlib.util
import itertools
import math
from pathlib import Path

import pytest


def _bench():
    path = Path(__file__).resolve().parents[2] / "bench" / "pim_table.py"
    spec = importlib.util.spec_from_file_location("pim_table_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _Run:
    """A stand-in for a run's Prep: (b) falls linearly with the range scale f."""

    def __init__(self, slope: float) -> None:
        self.a, self.digital, self.data, self.slope = 98.0, self, None, slope

    def base(self, scheme: str) -> dict[str, float]:
        return {"layer": 1.0}


def test_sweep_targets_the_mean_over_runs(monkeypatch) -> None:
    bench = _bench()

    def fake_accuracy(digital, data, chip, ranges, clips):
        clips.setdefault("layer", [0, 0])[0] += 10
        return digital.a - digital.slope * ranges["layer"]

    monkeypatch.setattr(bench, "pim_accuracy", fake_accuracy)
    runs = [_Run(2.0), _Run(1.0)]  # (a) − 20 is reached at f = 10 and f = 20; mean: 13.3
    f0, _ = bench.sweep_scale(runs[:1], "native", bisect=8)
    f, points = bench.sweep_scale(runs, "native", bisect=8)
    assert f0 == pytest.approx(10.0, rel=0.01)
    assert f == pytest.approx(40 / 3, rel=0.01)
    best = next(p for p in points if p[0] == f)
    assert best[2] == [98.0 - 2 * f, 98.0 - f] and best[1] == pytest.approx(98.0 - 1.5 * f)
    assert all(a[0] < b[0] for a, b in itertools.pairwise(points))  # sorted by f
    assert math.isclose(best[1], 78.0, abs_tol=0.2)


def test_sweep_bisects_further_until_within_tolerance(monkeypatch) -> None:
    bench = _bench()

    def fake_accuracy(digital, data, chip, ranges, clips):
        return digital.a - digital.slope * ranges["layer"]

    monkeypatch.setattr(bench, "pim_accuracy", fake_accuracy)
    run = [_Run(1.0)]  # (b) = 98 − f; target 78 at f = 20; doubling stops at 16 / 32
    f, _ = bench.sweep_scale(run, "native", bisect=0, tolerance=2.0, extra=0)
    assert f == 16.0  # no bisection: 4 points from the target
    f, points = bench.sweep_scale(run, "native", bisect=0, tolerance=2.0)
    assert f == pytest.approx(2 ** 4.25) and len(points) == 8  # two more steps: 0.97 away


def test_given_scales_skip_the_sweep(capsys) -> None:
    """--scale: the given f per scheme, no digital model trained, no sweep."""
    import argparse

    bench = _bench()

    def no_prep(r: int):
        raise AssertionError("a run was prepared")

    args = argparse.Namespace(scale={"bit_serial": 8.0}, save=None)
    scales, lines = bench.operating_point(args, no_prep)
    assert scales == {"bit_serial": 8.0}
    assert lines == ["| bit_serial | 8.000 | (given by --scale) | | | |"]
    assert "bit_serial f = 8" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--schemes", "bit_serial", "--scale", "bit_serial=x"], "not 'bit_serial=x'"),
    (["--schemes", "bit_serial", "--scale", "native=8"], "not 'native=8'"),
    (["--schemes", "native", "--scale", "native=-1"], "not 'native=-1'"),
    (["--schemes", "native", "bit_serial", "--scale", "native=8"],
     "--scale must give every scheme of --schemes (native, bit_serial), not only native"),
])
def test_bad_scales_are_refused(monkeypatch, capsys, argv, message) -> None:
    bench = _bench()
    monkeypatch.setattr("sys.argv", ["pim_table.py", *argv])
    monkeypatch.setattr(bench, "experiment", lambda args: pytest.fail("ran the experiment"))
    with pytest.raises(SystemExit) as e:
        bench.main()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
