"""Workflows (fpim.flows) return records and print nothing; the CLI declares its shared
options once (fpim.commands.options)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fpim.cli import build_parser
from fpim.flows.metrics import accuracy
from fpim.flows.pim_deploy import chip_cost, evaluate, macro_with
from fpim.flows.simulate import load_workload, simulate
from fpim.progress import Report
from sim.config import load_accelerator
from tests.cliutil import run

ARTIFACT = str(Path(__file__).resolve().parent.parent / "configs/artifacts/cnn_msq4_digits")


def _options(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
             ) -> Iterator[tuple[tuple[str, ...], str, argparse.Action]]:
    """(command path, option string, action) for every option of every (sub)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*prefix, name))
        else:
            for opt in action.option_strings:
                yield prefix, opt, action


@pytest.mark.parametrize("option", ["--accel", "--set", "--macro", "--json", "--progress",
                                    "--no-progress"])
def test_shared_options_are_declared_once(option: str) -> None:
    found = [(path, a) for path, opt, a in _options(build_parser()) if opt == option]
    assert len(found) >= 2, option
    for _, a in found:
        assert (a.metavar, a.default, a.required) == (found[0][1].metavar, found[0][1].default,
                                                      found[0][1].required)
    if option != "--json":  # --json names what it replaces (a table, tables or text)
        assert len({a.help for _, a in found}) == 1, option
    else:
        assert all(a.help.startswith("print JSON instead of ") for _, a in found)


def test_accel_on_every_hardware_command() -> None:
    paths = {path for path, opt, _ in _options(build_parser()) if opt == "--accel"}
    assert paths == {("simulate",), ("rtl",), ("synth",), ("verify",), ("report",)}


def test_accuracy_is_a_percentage() -> None:
    assert accuracy([1, 2, 3, 4], [1, 2, 0, 0]) == 50.0
    assert accuracy([], []) == 0.0


def test_pim_flows_print_nothing_and_match_the_cli(capsys) -> None:
    macro = macro_with("sram512x128_adc7", {"noise_lsb": 0.5})
    assert macro.arith.noise_lsb == 0.5 and macro_with("sram512x128_adc7").arith.noise_lsb == 0
    cost = chip_cost(ARTIFACT, macro, batch=2)
    r = evaluate(ARTIFACT, macro, limit=20, seed=1)
    assert capsys.readouterr() == ("", "")
    code, out, _ = run(capsys, "pim", "simulate", "--artifact", ARTIFACT, "--macro",
                       "sram512x128_adc7", "--noise-lsb", "0.5", "--batch", "2", "--json")
    # simulate takes the arithmetic overrides eval takes (issue 23; it refused them before)
    assert code == 0 and json.loads(out)["macro"]["arith"]["noise_lsb"] == 0.5
    code, out, _ = run(capsys, "pim", "simulate", "--artifact", ARTIFACT, "--macro",
                       "sram512x128_adc7", "--batch", "2", "--json")
    assert code == 0 and json.loads(out)["totals"] == cost.totals
    code, out, _ = run(capsys, "pim", "eval", "--artifact", ARTIFACT, "--macro",
                       "sram512x128_adc7", "--noise-lsb", "0.5", "--limit", "20", "--seed", "1",
                       "--json")
    cli = json.loads(out)
    assert code == 0 and r["images"] == 20
    assert {k: v for k, v in cli.items() if k != "pim_seconds"} == \
        {k: v for k, v in r.items() if k != "pim_seconds"}


def test_simulate_flow_prints_nothing_and_matches_the_cli(capsys) -> None:
    accel = load_accelerator("tiny")
    wl, art = load_workload(accel, artifact=ARTIFACT)
    sim = simulate(accel, wl, art, functional=True)
    assert capsys.readouterr() == ("", "")
    assert sim.bit_exact and sim.functional["layers_checked"] > 0
    code, out, _ = run(capsys, "simulate", "--artifact", ARTIFACT, "--accel", "tiny",
                       "--functional", "--json")
    cli = json.loads(out)
    assert code == 0
    data = sim.to_dict()
    cli["functional"].pop("seconds")
    data["functional"].pop("seconds")
    assert cli == data


def test_every_seed_option_is_range_checked() -> None:
    from quant.errors import SEED_MAX

    seeds = [(path, a) for path, opt, a in _options(build_parser()) if opt == "--seed"]
    assert {path for path, _ in seeds} == {("simulate",), ("quantize",), ("verify",),
                                           ("report",), ("pim", "eval"), ("pim", "train")}
    for path, a in seeds:
        assert a.type(str(SEED_MAX)) == SEED_MAX, path
        for bad in ("-1", str(SEED_MAX + 1), "x"):
            with pytest.raises(argparse.ArgumentTypeError, match="seed must be an integer"):
                a.type(bad)


def test_functional_memory_estimate_bounds_the_allocations() -> None:
    import tracemalloc

    from fpim.flows.simulate import (
        FUNCTIONAL_MEMORY_LIMIT,
        check_functional,
        check_functional_size,
        functional_bytes,
    )
    from quant.errors import ConfigError
    from sim.workload import assign_fraction, parse_topology

    accel = load_accelerator("tiny")
    for m, n, k in ((64, 2000, 600), (300, 300, 3000), (2000, 50, 50)):
        wl = assign_fraction(parse_topology(f"Layer Name, M, N, K,\na, {n}, {m}, {k},\n",
                                            True), 0.5)
        check_functional(wl, None, accel)  # compile the kernels first
        tracemalloc.start()
        check_functional(wl, None, accel)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= functional_bytes(wl.gemms[0]), (m, n, k)
    n = FUNCTIONAL_MEMORY_LIMIT // 8 // 6  # M = K = 1: 8 * (2 N + 4 N) bytes
    for cols, refused in ((n, False), (n + 1, True)):
        wl = parse_topology(f"Layer Name, M, N, K,\na, {cols}, 1, 1,\n", True)
        if refused:
            with pytest.raises(ConfigError, match=f"must need at most {FUNCTIONAL_MEMORY_LIMIT} "
                                                  f"bytes, not about {8 * 6 * (n + 1) + 24}"):
                check_functional_size(wl)
        else:
            check_functional_size(wl)


def test_one_progress_option_on_every_long_command() -> None:
    found = [(path, a) for path, opt, a in _options(build_parser()) if opt == "--no-progress"]
    assert {path for path, _ in found} == {("quantize",), ("search", "msq"), ("search", "vit"),
                                           ("pim", "eval"),
                                           ("pim", "train"), ("synth",), ("verify",),
                                           ("report",), ("simulate",), ("search", "vit")}
    assert all(isinstance(a, argparse.BooleanOptionalAction) and a.default is None
               for _, a in found)


class Recorder:
    """A Progress that records every step and what it reported."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, int, int]] = []

    @contextmanager
    def __call__(self, step: str) -> Iterator[Report]:
        yield lambda done, total: self.reports.append((step, done, total))


def test_flows_report_progress_through_the_callback(capsys) -> None:
    rec = Recorder()
    r = evaluate(ARTIFACT, macro_with("sram512x128_adc7"), limit=300, progress=rec)
    assert rec.reports == [("PIM kernel", 256, 300), ("PIM kernel", 300, 300)]
    assert r == {**evaluate(ARTIFACT, macro_with("sram512x128_adc7"), limit=300),
                 "pim_seconds": r["pim_seconds"]}
    assert capsys.readouterr() == ("", "")


def test_progress_bars_only_on_stderr_and_only_when_asked(capsys, tmp_path) -> None:
    topo = tmp_path / "two.csv"
    topo.write_text("Layer Name, M, N, K,\nfc1, 64, 128, 256,\nfc2, 64, 10, 128,\n")
    argv = ("search", "msq", "--part", "XC7Z020", "--bits", "4", "--topology", str(topo),
            "--packing", "1", "--json")
    code, plain, err = run(capsys, *argv)  # stdout and stderr are not terminals: no bars
    assert code == 0 and err == ""
    code, out, err = run(capsys, *argv, "--progress")
    assert code == 0 and out == plain  # stdout byte-identical
    assert "MSQ search" in err and "7/7" in err  # one step per column count (sim.search.COLS)
    assert run(capsys, *argv, "--no-progress") == (0, plain, "")
