"""BN folding and activation fusion, one rule (quant.fusion) for every path a model takes."""

from __future__ import annotations

import pytest

from quant.fusion import Node, absorbed

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from quant.torch.export import export  # noqa: E402
from quant.torch.models import build_model  # noqa: E402
from quant.torch.qat import QATConfig, quantize_  # noqa: E402
from sim.config import load_accelerator  # noqa: E402
from sim.engine import simulate  # noqa: E402
from sim.ops import from_artifact  # noqa: E402
from sim.torch_workload import from_module  # noqa: E402
from sim.workload import GemmOp, VectorOp, assign_fraction  # noqa: E402


def _plan(*nodes: tuple, outputs: tuple = ()) -> dict:
    return absorbed([Node(k, r, tuple(i)) for k, r, i in nodes], outputs)


def test_bn_folds_and_relu_fuses_into_the_gemm():
    got = _plan(("x", "other", ()), ("conv", "gemm", ("x",)), ("bn", "affine", ("conv",)),
                ("relu", "clamp", ("bn",)), outputs=("relu",))
    assert got == {"bn": "conv", "relu": "conv"}


def test_relu_fuses_into_a_residual_add_and_a_matmul():
    got = _plan(("a", "gemm", ()), ("b", "gemm", ()), ("add", "add", ("a", "b")),
                ("r", "clamp", ("add",)), ("mm", "matmul", ("r", "r")), ("r6", "clamp", ("mm",)))
    assert got == {"r": "add", "r6": "mm"}


@pytest.mark.parametrize("nodes, outputs, stays", [
    # the conv's output is read twice: neither the BN nor the ReLU can take it over
    ((("conv", "gemm", ()), ("bn", "affine", ("conv",)), ("other", "other", ("conv",))), (),
     "bn"),
    ((("conv", "gemm", ()), ("relu", "clamp", ("conv",))), ("conv",), "relu"),
    # a BN after a ReLU is not a linear map of the conv's output
    ((("conv", "gemm", ()), ("relu", "clamp", ("conv",)), ("bn", "affine", ("relu",))), (),
     "bn"),
    # a BN only folds into weights (not into an add or an activation x activation matmul)
    ((("a", "other", ()), ("add", "add", ("a", "a")), ("bn", "affine", ("add",))), (), "bn"),
    ((("a", "other", ()), ("mm", "matmul", ("a", "a")), ("bn", "affine", ("mm",))), (), "bn"),
    # a ReLU after anything but a GEMM or an add stays
    ((("p", "other", ()), ("relu", "clamp", ("p",))), (), "relu"),
])
def test_what_does_not_fold(nodes, outputs, stays):
    assert stays not in _plan(*nodes, outputs=outputs)


def test_pass_throughs_are_transparent_but_count_readers():
    got = _plan(("conv", "gemm", ()), ("drop", "pass", ("conv",)), ("bn", "affine", ("drop",)),
                ("relu", "clamp", ("bn",)))
    assert got == {"drop": "conv", "bn": "conv", "relu": "conv"}
    got = _plan(("conv", "gemm", ()), ("drop", "pass", ("conv",)), ("bn", "affine", ("drop",)),
                ("side", "other", ("conv",)))
    assert "bn" not in got


class MyNet(nn.Module):
    """The issue's example: six layers with BN, ReLU, ReLU6 and a clamp."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.act = nn.ReLU()
        self.body = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32),
                                  nn.ReLU6(), nn.Conv2d(32, 32, 3, padding=1), nn.Dropout())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = self.act(self.stem_bn(self.stem(x)))
        x = torch.clamp(self.body(x), 0.0, 4.0)
        return self.head(torch.flatten(self.pool(x), 1))


def test_torch_workload_folds_bn_fuses_activations_and_names_modules():
    wl = from_module(MyNet(), (1, 3, 8, 8))
    assert [(type(o).__name__, o.name) for o in wl.ops] == [
        ("GemmOp", "stem"), ("GemmOp", "body.0"), ("GemmOp", "body.3"), ("VectorOp", "pool"),
        ("GemmOp", "head")]
    assert wl.ops[3].elements == 32 * 64  # every output reads its 8x8 window


def test_remaining_elementwise_ops_keep_their_names():
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.gate = nn.Sigmoid()

        def forward(self, x):
            y = self.fc(x)
            return torch.relu(y * self.gate(y))

    wl = from_module(Gate(), (2, 4))
    assert [(o.name, o.op) for o in wl.ops if isinstance(o, VectorOp)] == [
        ("gate", "sigmoid"), ("mul", "mul"), ("relu", "relu")]


def _rows(result) -> list[tuple]:
    return [(la.name, la.op, la.m, la.n, la.k, la.groups, la.cycles) for la in result.layers]


@pytest.mark.parametrize("name", ["resnet20", "cnn"])
def test_torch_module_and_its_artifact_simulate_alike(name):
    """The same network handed in as a float torch module and as its quantized artifact:
    the same layers, GEMMs and cycles (fixed-point weights: every row on the DSP core)."""
    torch.manual_seed(0)
    float_model = build_model(name, 10, 3, 1, (16, 16)).eval()
    qmodel = quantize_(build_model(name, 10, 3, 1, (16, 16)).eval(),
                       QATConfig(scheme="fixed", bits=4), torch.rand(8, 3, 16, 16))
    from_torch = assign_fraction(from_module(float_model, (1, 3, 16, 16)), 0.0)
    from_art = from_artifact(export(qmodel, (3, 16, 16)))
    accel = load_accelerator("tiny", [])
    a, b = simulate(from_torch, accel, "cycle"), simulate(from_art, accel, "cycle")
    assert _rows(a) == _rows(b)
    assert a.totals()["total_cycles"] == b.totals()["total_cycles"]
    assert not any(isinstance(o, VectorOp) and o.op in ("batchnorm2d", "relu")
                   for o in from_torch.ops)
    assert sum(isinstance(o, GemmOp) for o in from_torch.ops) == len(from_art.gemms)


def _relu6_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                         nn.ReLU6(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU6(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


@pytest.mark.parametrize("scheme, bits", [("fixed", 4), ("f8", 8)])
def test_relu6_quantizes_with_its_clamp(scheme, bits):
    """QAT turns a ReLU6 into a quantized ReLU whose clip is at most 6 and stays fixed: the
    quantizer's clamp is the ReLU6's, as the engine fuses it."""
    from quant.torch.qat import QReLU, act_quantizers

    torch.manual_seed(0)
    net = _relu6_net().eval()
    with torch.no_grad():
        net[0].weight.mul_(100)  # activations well above 6 (the inputs are in [0, 1])
    model = quantize_(net, QATConfig(scheme=scheme, bits=bits, act_bits=bits),
                      torch.rand(8, 3, 8, 8))
    acts = act_quantizers(model)
    assert len(acts) == 2 and all(isinstance(m, QReLU) for m in model if "ReLU" in str(m))
    assert all(0 < a.clip.item() <= 6 and not a.clip.requires_grad for a in acts)
    assert float(model[2](torch.full((1, 8, 1, 1), 100.0)).max()) <= 6


def test_relu6_model_and_its_artifact_simulate_alike():
    torch.manual_seed(0)
    qmodel = quantize_(_relu6_net().eval(), QATConfig(scheme="fixed", bits=4),
                       torch.rand(8, 3, 8, 8))
    a = assign_fraction(from_module(_relu6_net(), (1, 3, 8, 8)), 0.0)
    b = from_artifact(export(qmodel, (3, 8, 8)))
    accel = load_accelerator("tiny", [])
    assert _rows(simulate(a, accel, "cycle")) == _rows(simulate(b, accel, "cycle"))
