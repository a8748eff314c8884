"""``fpim verify --block``: encoder block 0 of a tiny ViT op by op on the RTL (GEMMs on the
tiny GEMM top, vector ops on the vector unit's Verilated components), every value equal to
integer inference and every RTL op's cycles equal to the simulator's; two mutants of the
softmax component's generated Verilog caught by the block check (its output shift
``31 - p`` one short: the probabilities differ and the error propagates to the block's end;
its exp-and-sum drain one cycle longer: the cycles differ); and
the one-line errors, given before any build.

The ViT is the QAT export (quant.torch.vit_qat) of a seeded random 1-block ViT (8x8 images,
patch 2: 17 tokens of 8 features, 2 heads), post-training calibrated, 4-bit weights and
activations so that its GEMMs fit the tiny engine with signed activations.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from hw.ops import RTL_OPS, Runs
from hw.synth import emit_verilog
from hw.vector.softmax import Softmax
from quant.artifact import save_artifact
from quant.torch.export import export
from quant.torch.qat import QATConfig
from quant.torch.vit import VisionTransformer
from quant.torch.vit_qat import quantize_vit
from sim.config import load_accelerator
from tests.cliutil import run

needs_verilator = pytest.mark.skipif(shutil.which("verilator") is None,
                                     reason="verilator not installed (make test installs it)")
SIGNED = "engine.act_signed=true"
ACCEL = ["--accel", "tiny", "--set", SIGNED]
#: name -> (pattern, replacement, matches) of the softmax's generated Verilog. (The unit
#: test's shift-exp and divider mutants change no 4-bit probability of this block.)
MUTANTS = {
    "out-shift": (r"= 5'h1f - out_bits;", "= 5'h1e - out_bits;", 1),
    "drain-long": (r"drain == 4'he;", "drain == 4'hf;", 2),
}


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = VisionTransformer(img_size=8, patch_size=2, in_chans=1, num_classes=3,
                              embed_dim=8, depth=1, num_heads=2, mlp_ratio=2.0)
    images = np.random.default_rng(2).random((16, 1, 8, 8))
    q = quantize_vit(model, QATConfig(scheme="fixed", bits=4, act_bits=4, learn_clip=False),
                     torch.as_tensor(images).float())
    d = tmp_path_factory.mktemp("vit") / "artifact"
    save_artifact(export(q, (1, 8, 8)), d)
    return d


@needs_verilator
def test_block_0_runs_bit_exact_and_cycle_exact(vit_dir, capsys) -> None:
    code, out, _ = run(capsys, "verify", *ACCEL, "--artifact", str(vit_dir), "--block", "0",
                       "--cases", "0", "--json")
    d = json.loads(out)
    assert code == 0, d["first_failure"]
    ops = {o["name"]: o for o in d["block"]["ops"]}
    assert (d["failed"], d["first_failure"]) == (0, None)
    assert all(o["equal"] and o["passed"] for o in ops.values())
    rtl = [o for o in ops.values() if o["cycles_rtl"] is not None]
    assert all(o["cycles_rtl"] == o["cycles_sim"] > 0 for o in rtl)
    assert {o["runs_on"] for o in rtl} == {"gemm top", "vector layernorm", "vector softmax",
                                          "vector gelu", "vector requant"}
    on_engine = ("qkv", "scores", "ctx", "proj", "fc1", "fc2") \
        if RTL_OPS["matmul"] is Runs.ENGINE else ("qkv", "proj", "fc1", "fc2")
    assert [n for n, o in ops.items() if o["runs_on"] == "gemm top"] == [
        f"blocks.0.{n}" for n in on_engine]
    assert ops["blocks.0.res1"]["runs_on"] == ops["blocks.0.res2"]["runs_on"] == "host"
    # the vector ops' cycles are R14/R15's closed form (17 tokens, 8 features, 4 lanes)
    from sim.timing import vector_op_cycles

    assert ops["blocks.0.norm1"]["cycles_rtl"] == vector_op_cycles("layernorm", 136, 17, 8,
                                                                   4, 1)
    assert ops["blocks.0.attn"]["cycles_rtl"] == vector_op_cycles("softmax", 578, 34, 17, 4,
                                                                  1)


@needs_verilator
@pytest.mark.parametrize("name", MUTANTS)
def test_a_softmax_mutant_is_caught_by_the_block_check(vit_dir, name: str) -> None:
    from fpim.flows.verify import verify

    pattern, replacement, hits = MUTANTS[name]
    original = emit_verilog(Softmax(4, 24, 17), "fpim_tiny_vec_softmax")
    mutant, n = re.subn(pattern, replacement, original)
    assert n == hits
    accel = load_accelerator("tiny", [SIGNED])
    v = verify(accel, 0, artifact=str(vit_dir), block=0, vector_verilog={"softmax": mutant})
    names = [r.name for r in v.block_ops]
    ops = dict(zip(names, v.block_ops, strict=True))
    attn = ops["blocks.0.attn"]
    assert v.failed > 0 and not attn.passed
    assert all(ops[n].passed for n in names[:names.index("blocks.0.attn")])
    if name == "out-shift":
        assert v.first_failure.startswith("blocks.0.attn (vector softmax): value differs")
        # the error propagates: A.V reads the mutant's probabilities, and so on to the end
        assert not ops["blocks.0.ctx"].equal and not ops["blocks.0.res2"].equal
    else:
        assert attn.equal and attn.cycles_rtl > attn.cycles_sim
        assert v.first_failure.startswith("blocks.0.attn (vector softmax): RTL took")


def test_block_errors_come_before_any_build(vit_dir, capsys, monkeypatch) -> None:
    def no_build(*args, **kwargs):
        raise AssertionError("built before validating --block")

    monkeypatch.setattr("fpim.flows.verify.build_fast", no_build)
    cnn = "configs/artifacts/cnn_msq4_digits"
    for argv, msg in [
        (["--artifact", str(vit_dir), "--block", "1"],
         "block must be 0..0 (the artifact's encoder blocks), not 1"),
        (["--artifact", str(vit_dir), "--block", "-1"],
         "block must be 0..0 (the artifact's encoder blocks), not -1"),
        (["--artifact", cnn, "--block", "0"],
         "artifact must be a ViT (layers blocks.N.*) for --block, not one without encoder "
         "blocks"),
        (["--block", "0"], "--block applies only with --artifact DIR, not without it"),
        (["--artifact", str(vit_dir), "--block", "0", "--all-layers"],
         "--all-layers applies only without --block, not with it"),
        (["--artifact", str(vit_dir), "--block", "0", "--harness", "stream"],
         "--harness must be fast with --block"),
    ]:
        code, _, err = run(capsys, "verify", *ACCEL, *argv)
        assert code == 2 and msg in err, (argv, err)
        assert len(err.strip().splitlines()) == 1
    # a block whose GEMMs do not fit: the tiny engine's activations are unsigned by default
    code, _, err = run(capsys, "verify", "--accel", "tiny", "--artifact", str(vit_dir),
                       "--block", "0")
    assert code == 2 and "input format int4 must fit the engine's activations uint4" in err
