"""One op vocabulary: every op of quant.ops has an entry at every level (quant reference,
torch export and twin, simulator, RTL), deleting any one entry fails the check, and a level
refuses an op it has no entry for with an error naming the op and the level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hw.ops import RTL_OPS, rtl_op
from hw.tb.cases import artifact_case
from quant.artifact import load_artifact
from quant.errors import ArtifactError, ConfigError
from quant.ops import OPS, OpDef, missing_entries
from quant.torch.export import EXPORTERS, export
from quant.torch.qat import QATConfig, quantize_
from quant.torch.twin import TWIN, integer_logits_torch
from sim.config import load_accelerator
from sim.functional import check_artifact
from sim.ops import SIM_OPS, sim_op

#: Every level's table, keyed by the op names of quant.ops.OPS.
LEVEL_TABLES = {
    "quant.torch.export.EXPORTERS": EXPORTERS,
    "quant.torch.twin.TWIN": TWIN,
    "sim.ops.SIM_OPS": SIM_OPS,
    "hw.ops.RTL_OPS": RTL_OPS,
}
SHIPPED = Path(__file__).resolve().parent.parent / "configs" / "artifacts" / "cnn_msq4_digits"
OP_LIST = ("conv, linear, add, avgpool, maxpool, flatten, token_linear, matmul, softmax, "
           "layernorm, gelu, pos_embed, reshape, slice")


def test_every_op_has_an_entry_at_every_level():
    assert list(OPS) == OP_LIST.split(", ")
    assert missing_entries(LEVEL_TABLES) == []


@pytest.mark.parametrize("level", ["quant.ops.OPS", *LEVEL_TABLES])
@pytest.mark.parametrize("op", list(OPS))
def test_deleting_an_entry_fails_the_check(monkeypatch, level, op):
    table = OPS if level == "quant.ops.OPS" else LEVEL_TABLES[level]
    monkeypatch.delitem(table, op)
    gaps = missing_entries(LEVEL_TABLES)
    assert gaps and all(repr(op) in g for g in gaps)


@pytest.mark.parametrize("op", list(OPS))
def test_deleting_an_integer_reference_fails_the_check(monkeypatch, op):
    owner = next(c for c in type(OPS[op]).__mro__ if "run" in vars(c) and c is not OpDef)
    monkeypatch.delattr(owner, "run")
    assert f"quant.ops.OPS entry {op!r} has no integer reference (run)" in \
        missing_entries(LEVEL_TABLES)


def test_simulator_and_rtl_name_an_unknown_op():
    with pytest.raises(ArtifactError, match=f"op must be one of {OP_LIST} at the simulator "
                                            r"\(sim.ops.SIM_OPS\), not 'lstm'"):
        sim_op("lstm")
    with pytest.raises(ArtifactError, match=f"op must be one of {OP_LIST} at the RTL level "
                                            r"\(hw.ops.RTL_OPS\), not 'lstm'"):
        rtl_op("lstm")


@pytest.fixture(scope="module")
def shipped():
    return load_artifact(SHIPPED)


def test_a_level_without_the_op_refuses_the_artifact(monkeypatch, shipped):
    monkeypatch.delitem(SIM_OPS, "maxpool")
    monkeypatch.delitem(TWIN, "maxpool")
    with pytest.raises(ArtifactError, match=r"at the simulator \(sim.ops.SIM_OPS\), "
                                            "not 'maxpool'"):
        check_artifact(shipped, load_accelerator("xc7z020"))
    with pytest.raises(ArtifactError, match=r"at the torch twin \(quant.torch.twin.TWIN\), "
                                            "not 'maxpool'"):
        integer_logits_torch(shipped, np.zeros((1, *shipped.input.shape)))


def test_export_without_the_op_names_the_level(monkeypatch):
    monkeypatch.delitem(EXPORTERS, "maxpool")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(18, 3))
    quantize_(model, QATConfig(), torch.rand(4, 1, 8, 8))
    with pytest.raises(ConfigError, match=r"layer '2' of type MaxPool2d cannot be exported "
                                          r"\(no handler in the torch export"):
        export(model, (1, 8, 8))


def test_rtl_refuses_a_host_op_as_a_gemm_case(shipped):
    host = next(layer for layer in shipped.layers if layer.op == "maxpool")
    with pytest.raises(ArtifactError, match=f"layer {host.name!r}: op must run on the GEMM "
                                            r"engine at the RTL level \(hw.ops.RTL_OPS\), "
                                            "not 'maxpool' \\(it runs on the host\\)"):
        artifact_case(load_accelerator("xc7z020"), shipped, host.name,
                      np.zeros(shipped.input.shape))
