"""ONNX import (sim.onnx_workload): models exported by torch in the test simulate like the
torch modules they came from and like the shipped topologies."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
from torch import nn  # noqa: E402

from quant.torch.models import build_model  # noqa: E402
from quant.torch.vit import deit_tiny  # noqa: E402
from sim.config import load_accelerator  # noqa: E402
from sim.engine import simulate  # noqa: E402
from sim.onnx_workload import layer_names, read_onnx  # noqa: E402
from sim.torch_workload import from_module  # noqa: E402
from sim.workload import GemmOp, Workload, assign_fraction, load_shipped  # noqa: E402
from tests.sim.tv_resnet import ResNet  # noqa: E402

ACCEL = load_accelerator("tiny", [])


def export(model: nn.Module, shape: tuple[int, ...], path: Path, opset: int | None = None
           ) -> Path:
    """``model`` exported by torch's TorchScript-based exporter (needs no onnxscript)."""
    kw = {} if opset is None else {"opset_version": opset}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notice
        torch.onnx.export(model.eval(), torch.zeros(shape), str(path), dynamo=False, **kw)
    return path


def work(wl: Workload) -> list[tuple]:
    """What each op costs, without its name."""
    return [(o.kind, o.m, o.n, o.k, o.groups) if isinstance(o, GemmOp) else (o.op, o.elements)
            for o in wl.ops]


def cycles(wl: Workload) -> list[int]:
    return [la.cycles for la in simulate(assign_fraction(wl, 0.25), ACCEL, "cycle").layers]


@pytest.mark.parametrize("name, shape", [("cnn", (2, 3, 16, 16)), ("resnet20", (1, 3, 16, 16)),
                                         ("vit_digits", (1, 1, 8, 8))])
@pytest.mark.parametrize("opset", [None, 14])
def test_onnx_export_simulates_like_the_torch_module(name, shape, opset, tmp_path):
    """The default opset has LayerNormalization and Gelu; opset 14 their decomposed forms."""
    torch.manual_seed(0)
    model = build_model(name, 10, shape[1], 1, shape[2:])
    a = from_module(model, shape)
    b = read_onnx(export(model, shape, tmp_path / "m.onnx", opset))
    assert work(a) == work(b)
    assert cycles(a) == cycles(b)
    # layers are named by their modules (fx names functions by node, ONNX by scope)
    assert [o.name for o in a.gemms if o.kind != "matmul"] == \
        [o.name for o in b.gemms if o.kind != "matmul"]


def test_deit_tiny_onnx_simulates_like_the_torch_module(tmp_path):
    model = deit_tiny()
    a = from_module(model, (1, 3, 224, 224))
    b = read_onnx(export(model, (1, 3, 224, 224), tmp_path / "deit.onnx"))
    assert work(a) == work(b)
    assert cycles(a) == cycles(b)
    assert len(b.gemms) == 1 + 12 * 6 + 1  # patch embed, qkv/qk/av/proj/fc1/fc2, head


@pytest.mark.slow
@pytest.mark.parametrize("depth", [18, 50])
def test_resnet_onnx_simulates_like_the_shipped_topology(depth, tmp_path):
    """The workload of a torchvision-layout ResNet exported to ONNX at 224x224 equals the
    torch module's, and its per-layer GEMMs and cycles the shipped SCALE-Sim topology's
    (which carries the GEMMs only; its fc is a 1x1 conv on a 1x1 map, the ONNX one a Gemm)."""
    model = ResNet(depth)
    wl = read_onnx(export(model, (1, 3, 224, 224), tmp_path / "r.onnx"))
    assert work(wl) == work(from_module(model, (1, 3, 224, 224)))
    shipped = load_shipped(f"resnet{depth}")
    gemms = Workload("gemms", tuple(wl.gemms))
    assert [(o.m, o.n, o.k, o.groups) for o in gemms.ops] == \
        [(o.m, o.n, o.k, o.groups) for o in shipped.ops]
    assert cycles(gemms) == cycles(shipped)
    pools = [o for o in wl.ops if not isinstance(o, GemmOp) and o.op == "pool"]
    assert [o.elements for o in pools] == [64 * 56 * 56 * 9, (512 if depth == 18 else 2048) * 49]


def test_bn_and_relu_fold_in_an_unfolded_export(tmp_path):
    """An ONNX file with BatchNormalization and Relu nodes (exported without constant
    folding) gives the same workload as the folded export."""
    model = build_model("cnn", 10, 3, 1, (8, 8))
    folded = read_onnx(export(model, (1, 3, 8, 8), tmp_path / "a.onnx"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.zeros(1, 3, 8, 8), str(tmp_path / "b.onnx"),
                          dynamo=False, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.PRESERVE)
    import onnx

    ops = {n.op_type for n in onnx.load(str(tmp_path / "b.onnx")).graph.node}
    assert {"BatchNormalization", "Relu"} <= ops
    assert work(read_onnx(tmp_path / "b.onnx")) == work(folded)


def test_input_shape_fixes_a_dynamic_batch(tmp_path):
    model = build_model("cnn", 10, 3, 1, (8, 8)).eval()
    path = tmp_path / "dyn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, 8, 8), str(path), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    wl = read_onnx(path, (4, 3, 8, 8))
    assert wl.gemms[0].n == 4 * 8 * 8
    assert work(wl) == work(from_module(model, (4, 3, 8, 8)))


def test_layer_names_follow_torch_scopes():
    class N:
        def __init__(self, name: str, op: str) -> None:
            self.name, self.op_type = name, op

    nodes = [N("/layer1/layer1.0/conv1/Conv", "Conv"), N("/layer1/layer1.0/Add", "Add"),
             N("/blocks/blocks.0/attn/MatMul_1", "MatMul"), N("/fc/Gemm", "Gemm"),
             N("conv_a", "Conv"), N("", "Relu"),
             N("/layer2/layer2.0/downsample/downsample.0/Conv", "Conv")]
    assert layer_names(nodes) == ["layer1.0.conv1", "layer1.0.add", "blocks.0.attn.matmul_1",
                                  "fc", "conv_a", "relu_5", "layer2.0.downsample.0"]


def _qdq_models(tmp_path: Path) -> dict[str, Path]:
    """The same conv-relu-pool-linear network as float ONNX, in the QDQ format (int8
    weights behind DequantizeLinear, activation Q/DQ pairs) and with QLinearConv."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def init(name, array):
        return numpy_helper.from_array(np.asarray(array), name)

    inits = [init("w", np.zeros((8, 3, 3, 3), np.float32)),
             init("wq", np.zeros((8, 3, 3, 3), np.int8)),
             init("fc", np.zeros((8, 10), np.float32)),
             init("fcq", np.zeros((8, 10), np.int8)),
             init("s", np.float32(0.1)), init("z", np.int8(0))]
    float_nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1] * 4),
                   helper.make_node("Relu", ["c"], ["r"], name="relu")]
    quant_nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                   helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
                   helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"]),
                   helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv", pads=[1] * 4),
                   helper.make_node("Relu", ["c"], ["r0"], name="relu"),
                   helper.make_node("QuantizeLinear", ["r0", "s", "z"], ["rq"]),
                   helper.make_node("DequantizeLinear", ["rq", "s", "z"], ["r"])]
    qlinear_nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                     helper.make_node("QLinearConv", ["xq", "s", "z", "wq", "s", "z", "s",
                                                      "z"], ["cq"], name="conv", pads=[1] * 4),
                     helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["c"]),
                     helper.make_node("Relu", ["c"], ["r"], name="relu")]
    tail = [helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
            helper.make_node("Flatten", ["p"], ["f"], name="flat")]
    float_tail = [helper.make_node("MatMul", ["f", "fc"], ["y"], name="fc")]
    quant_tail = [helper.make_node("DequantizeLinear", ["fcq", "s", "z"], ["fcd"]),
                  helper.make_node("MatMul", ["f", "fcd"], ["y"], name="fc")]
    paths = {}
    for name, nodes in (("float", float_nodes + tail + float_tail),
                        ("qdq", quant_nodes + tail + quant_tail),
                        ("qlinear", qlinear_nodes + tail + quant_tail)):
        graph = helper.make_graph(
            nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        paths[name] = tmp_path / f"{name}.onnx"
        onnx.save(model, str(paths[name]))
    return paths


def test_quantized_onnx_formats_read_as_their_float_network(tmp_path):
    """QDQ and QLinearConv models give the float network's GEMMs: activation Q/DQ pairs
    are the requantizer's work, the ReLU is fused either side of them."""
    paths = _qdq_models(tmp_path)
    want = work(read_onnx(paths["float"]))
    assert want == [("conv", 8, 64, 27, 1), ("pool", 8 * 64), ("linear", 10, 1, 8, 1)]
    assert work(read_onnx(paths["qdq"])) == want
    assert work(read_onnx(paths["qlinear"])) == want


def test_onnx_batch_is_the_input_shapes_first_size(tmp_path):
    """FPS is images per second: an ONNX model's batch is its input's first size, as a torch
    model's is, so both report the same workload and batch."""
    torch.manual_seed(0)
    model = build_model("cnn", 10, 3, 1, (16, 16))
    path = export(model, (3, 3, 16, 16), tmp_path / "m.onnx")
    b = read_onnx(path)
    assert b.batch == from_module(model, (3, 3, 16, 16)).batch == 3
