"""The fast harness (hw.tb.fast): DRAM and streams as Verilog around the top, Verilator alone.

It must agree with the stream-level cocotb testbench case by case (outputs and busy cycles),
catch the same mutants, run the mid-size preset, and run a whole artifact on one DUT with
every value equal to integer inference (hw.tb.network).
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from hw.generate import generate
from hw.tb.cases import random_cases, random_matmul_groups
from hw.tb.engine import REPO, artifact_layer_case, digits_image, run_verilator
from hw.tb.fast import FastRun, build_fast, run_fast
from hw.tb.network import verify_network
from quant.artifact import load_artifact
from sim.config import CONFIG_DIR, load_accelerator
from tests.cocotb.accel.test_accel import (
    SEED,
    TINY,
    TINY_GROUPS,
    TINY_POT,
    TINY_SHARED,
    check_all,
    matmul_mix,
    prefetch_chains,
)
from tests.hw.test_accel import DENSE, WIDE

pytestmark = pytest.mark.skipif(shutil.which("verilator") is None,
                                reason="verilator not installed (make test installs it)")

MID = load_accelerator(CONFIG_DIR / "rtl" / "mid.yaml")
ROOT = REPO / "build" / "fastrtl"


def both_agree(accel, cases, seed: int, tmp_path, matmul: bool = False) -> None:
    """``cases`` on the fast and the stream harness: every output and busy cycle count
    identical, and equal to the reference and the simulator."""
    fast = run_fast(accel, cases, build=build_fast(accel, ROOT, matmul=matmul))
    stream = run_verilator(accel, cases, seed=seed, log_file=tmp_path / "sim.log")
    check_all(fast)
    for f, s in zip(fast, stream, strict=True):
        assert np.array_equal(f.y, s.y), f.name
        assert f.cycles_rtl == s.cycles_rtl == f.cycles_sim, f.name


@pytest.mark.parametrize("accel", [TINY, TINY_POT, TINY_GROUPS, TINY_SHARED],
                         ids=lambda a: a.name)
def test_fast_and_stream_harnesses_agree(accel, tmp_path) -> None:
    """The same cases on both harnesses: every output and every busy cycle count identical
    (and equal to the reference and the simulator)."""
    cases = random_cases(accel, 16, seed=SEED + 7)
    if accel is TINY:
        cases += [artifact_layer_case(accel), artifact_layer_case(accel, layer="fc")]
    both_agree(accel, cases, SEED, tmp_path)


def test_fast_and_stream_harnesses_agree_on_prefetch_chains(tmp_path) -> None:
    """R10b: three sequences of GEMMs back to back, each prefetching the next one's first
    weight block (the host's rule, every third forced), on both harnesses: identical
    outputs and busy cycles, equal to the simulator's run of each sequence."""
    cases = prefetch_chains(SEED + 21)
    both_agree(TINY, cases, SEED, tmp_path)


def test_fast_and_stream_harnesses_agree_on_matmuls(tmp_path) -> None:
    """Random attention matmuls between GEMMs (sim.timing R11) on both harnesses: identical
    outputs and busy cycles, equal to quant.ops.matmul's accumulators and the simulator."""
    cases = matmul_mix(SEED + 14)
    both_agree(TINY, cases, SEED + 14, tmp_path, matmul=True)


@pytest.mark.parametrize("accel", [DENSE, WIDE], ids=lambda a: a.name)
def test_fast_harness_packs_matmul_values_into_weight_words(accel) -> None:
    """Engines whose weight words hold a matmul's act_bits values two to a word (8-bit
    weights, 4-bit values) or across word boundaries (4-bit weights, 6-bit signed values):
    matmuls and GEMMs exact, cycles equal to the simulator's."""
    groups = random_matmul_groups(accel, 6, seed=SEED + 15)
    cases = [c for grp in groups for c in grp] + random_cases(accel, 4, seed=SEED + 15)
    check_all(run_fast(accel, cases, build=build_fast(accel, ROOT, matmul=True)))


def test_fast_harness_runs_the_mid_preset() -> None:
    """8 + 8 rows x 16 columns, 256-step blocks: random GEMMs around and beyond the array."""
    check_all(run_fast(MID, random_cases(MID, 12, seed=SEED), build=build_fast(MID, ROOT)))


def fast_mutant(pattern: str, replacement: str):
    """The fast harness around the tiny top with one textual edit of its Verilog."""
    text, _ = generate(TINY)
    edited, count = re.subn(pattern, replacement, text)
    assert count >= 1 and edited != text
    return build_fast(TINY, ROOT, verilog=edited)


def test_fast_harness_catches_a_wrong_sp2_shift() -> None:
    cases = random_cases(TINY, 6, seed=SEED + 2)
    out = run_fast(TINY, cases, build=fast_mutant(r"= 2'h3 - w\[2:1\];", "= 2'h2 - w[2:1];"))
    assert any(o.first_mismatch is not None for o in out)


def test_fast_harness_catches_a_late_drain() -> None:
    """The controller starts each drain one cycle late (its tail one cycle longer; the
    controller of issue 21's overlapped tiles has a drain counter, not a tail flag)."""
    cases = random_cases(TINY, 6, seed=SEED + 3)
    out = run_fast(TINY, cases, build=fast_mutant(r"= rows \+ (\\cols\$\d+) ;",
                                                  r"= rows + \1 + 1'h1;"))
    assert any(o.cycles_rtl != o.cycles_sim for o in out)
    assert not all(o.passed for o in out)


def test_whole_artifact_on_one_dut() -> None:
    """Every layer of the shipped artifact: GEMMs on the RTL (the logits in the widest
    signed format, the output lane), pooling and flattening on the host; every value equal."""
    art = load_artifact(CONFIG_DIR / "artifacts" / "cnn_msq4_digits")
    with FastRun(TINY, build_fast(TINY, ROOT)) as run:
        records, logits_equal = verify_network(TINY, art, digits_image(art, 3), run)
    assert logits_equal and all(r.passed for r in records), [r.failure() for r in records]
    gemms = [r for r in records if r.gemm is not None]
    assert [r.name for r in gemms] == ["features.0", "features.3", "features.7", "fc"]
    assert all(r.gemm.cycles_rtl == r.gemm.cycles_sim for r in gemms)


def test_logits_beyond_the_lane_saturate_on_the_dut_as_in_the_reference() -> None:
    """The shipped artifact with 2**7 times larger logits (tests/test_logit_lane.py): on
    this image they leave ±32,767 before saturation, and the RTL's logits equal the
    reference's saturated ones."""
    from quant.infer import run_artifact
    from tests.test_logit_lane import LANE, raw_logits, scaled_head

    art = scaled_head(load_artifact(CONFIG_DIR / "artifacts" / "cnn_msq4_digits"), 7)
    image = digits_image(art, 3)
    assert (np.abs(raw_logits(art, image[None])) > LANE).any()
    assert (np.abs(run_artifact(art, image[None])) == LANE).any()
    with FastRun(TINY, build_fast(TINY, ROOT)) as run:
        records, logits_equal = verify_network(TINY, art, image, run)
    assert logits_equal and all(r.passed for r in records), [r.failure() for r in records]


def test_abandoned_run_many_leaves_the_harness_in_step() -> None:
    """``run_many`` writes the next case while the current one runs; stopping after the
    first result must withdraw the written case, so the next ``run`` reads its own images."""
    cases = random_cases(TINY, 3, seed=SEED + 11)
    with FastRun(TINY, build_fast(TINY, ROOT)) as run:
        first = next(run.run_many(cases[:2]))
        third = run.run(cases[2])
    assert (first.y == cases[0].want).all() and first.cycles == cases[0].cycles
    assert (third.y == cases[2].want).all() and third.cycles == cases[2].cycles
