"""Generated Verilog: committed rtl/ matches a fresh generation, lints, and the CLI errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from hw.generate import generate
from quant.requant import REQUANTIZER
from sim.config import load_accelerator
from tests.cliutil import run

pytestmark = pytest.mark.filterwarnings("error")

RTL = Path(__file__).resolve().parents[2] / "rtl"
SHIPPED = ["tiny"]


@pytest.mark.parametrize("preset", SHIPPED)
def test_committed_rtl_is_regenerated_identically(preset: str, tmp_path, capsys) -> None:
    code, out, _ = run(capsys, "rtl", "--accel", preset, "--out", str(tmp_path))
    assert code == 0 and "wrote" in out
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"fpim_{preset}.json", f"fpim_{preset}.v"]
    for name in files:
        assert (tmp_path / name).read_text() == (RTL / name).read_text(), (
            f"rtl/{name} differs from a fresh `fpim rtl --accel {preset} --out rtl`")


def test_manifest_describes_the_top() -> None:
    text, manifest = generate(load_accelerator("tiny"))
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["x_load__payload"]["width"] == 4 * 4 + 1  # four activations and last
    assert ports["w_load__payload"]["width"] == (2 + 2) * 4 + 1
    assert ports["out__payload"]["dir"] == "out" and ports["load_req__ready"]["dir"] == "in"
    assert ports["cmd__valid"]["dir"] == "in" and ports["done"]["dir"] == "out"
    assert "clk" in ports and "datapath" not in manifest["scope"]
    assert manifest["generator"] == "fpim.hw.accel.GemmAccelerator"
    assert manifest["parameters"]["lut_scheme"] == "sp2"
    assert f"module {manifest['top']}(" in text
    assert "/work" not in text and "src =" not in text


@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
@pytest.mark.parametrize("preset", SHIPPED)
def test_verilator_lint(preset: str) -> None:
    # Amaranth leaves operand widths implicit (WIDTH); see docs/rtl.md for the -Wall list.
    proc = subprocess.run(["verilator", "--lint-only", "-Wno-WIDTH", "--top-module",
                           f"fpim_{preset}", str(RTL / f"fpim_{preset}.v")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_requantizer_ports_follow_the_definition() -> None:
    """The parameter ports and the manifest take quant.requant's widths; a narrow accumulator
    caps the shift (it used to make the RTL refuse an engine the simulator accepts)."""
    for acc_bits, max_shift in ((24, 31), (8, 24)):
        accel = load_accelerator("tiny", [f"engine.acc_bits={acc_bits}"])
        _, manifest = generate(accel)
        assert (manifest["parameters"]["mult_bits"], manifest["parameters"]["max_shift"]) == \
            (REQUANTIZER.mult_bits, max_shift) == (16, REQUANTIZER.shift_range(acc_bits)[1])
        ports = {p["name"]: p["width"] for p in manifest["ports"]}
        assert ports["params__payload"] == 1 + 6 + 16 + 5 + acc_bits + 1  # lut,row,p{...}


def test_rtl_errors(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "rtl", "--accel", "nosuch", "--out", str(tmp_path))
    assert code == 2 and "accelerator preset must be one of" in err
    code, _, err = run(capsys, "rtl", "--accel", "tiny", "--set", "engine.dsp_packing=4",
                       "--out", str(tmp_path))
    assert code == 2 and "engine.dsp_packing must be 1 or 2 on DSP48E1, not 4" in err
    big = ["--set", "engine.dsp_rows=30", "--set", "engine.cols=64"] + [
        a for b in ("weight", "act", "out") for a in ("--set", f"memory.{b}_bank_kib=64")]
    code, _, err = run(capsys, "rtl", "--accel", "tiny", *big, "--out", str(tmp_path))
    assert code == 2 and "engine needs" in err and "XC7Z020" in err
    code, _, err = run(capsys, "rtl", "--accel", "tiny", "--set", "engine.weight_bits=9",
                       "--out", str(tmp_path))
    assert code == 2 and "engine.weight_bits must be an integer in" in err
    assert not any(tmp_path.iterdir())


def test_synth_errors(capsys) -> None:
    code, _, err = run(capsys, "synth", "--accel", "tiny", "--family", "xc9")
    assert code == 2 and "invalid choice: 'xc9'" in err
    code, _, err = run(capsys, "synth", "--accel", "tiny", "--yosys", "/nonexistent/yosys")
    assert code == 2 and "yosys must be installed" in err and "apt-get install yosys" in err


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_synth_tiny_json(capsys) -> None:
    code, out, _ = run(capsys, "synth", "--accel", "tiny", "--json")
    data = json.loads(out)
    assert code == 0 and data["family"] == "xc7" and data["seconds"] < 120
    # 8 fixed PEs (2 x 4; their 4x4 products are marked use_dsp, docs/rtl.md) and 4
    # post-processing lanes per core, one DSP48E1 each.
    assert data["measured"]["dsp"] == 16 and data["measured"]["cells"]["DSP48E1"] == 16
    assert {r["resource"] for r in data["comparison"]} == {"lut", "ff", "dsp", "bram36"}
    # The calibrated model (sim.resources) knows both: DSP exact, LUT/FF within 15%.
    assert data["model"]["dsp"] == 16
    errors = {r["resource"]: r["rel_error"] for r in data["comparison"]}
    assert abs(errors["lut"]) <= 0.15 and abs(errors["ff"]) <= 0.15


def test_model_memories_of_a_grouped_top() -> None:
    """R3c: three weight banks of k_tile words (sim.resources.bank_memories), a three-bank
    activation ring, a second copy of each parameter memory for group B's read, the deal
    table, the wider output rows."""
    from amaranth.hdl import Value

    from hw.accel import GemmAccelerator
    from hw.generate import DIM_BITS, PARAM_DEPTH
    from sim.resources import out_fifo_depth, top_memories

    accel = load_accelerator("tiny", ["engine.group_b_cols=1"])
    top = GemmAccelerator(accel, dim_bits=DIM_BITS, param_depth=PARAM_DEPTH)
    top._MustUse__silence = True
    mems = top_memories(accel)
    kt = accel.memory.k_tile
    w = len(Value.cast(top.w_load.payload.data))
    # three banks of one piece each (LUT RAM), read through registered ports: the ring
    # forwards after selecting (hw.buffer.BankedRing)
    assert [mems[f"w_buf{b}_0"] for b in range(3)] == [(w, kt, "sync")] * 3
    assert len([k for k in mems if k.startswith("w_buf")]) == 3
    assert mems["x_buf"] == (len(Value.cast(top.x_load.payload.data)), 3 * kt, "transparent")
    assert mems["out_fifo"] == (len(Value.cast(top.out.payload)),
                                out_fifo_depth(accel.engine) - 1, "sync")
    assert mems["deal_table"] == (DIM_BITS, PARAM_DEPTH, "async")
    assert mems["params_dsp_b"] == mems["params_dsp"] == (top.param_layout.size, PARAM_DEPTH,
                                                           "async")


@pytest.mark.parametrize("preset", ["tiny", "configs/rtl/mid.yaml"])
@pytest.mark.parametrize("core", ["both", "dsp", "lut"])
def test_model_memories_are_the_tops(preset: str, core: str) -> None:
    """sim.resources.top_memories gives the memories hw.accel builds: word widths and
    depths of both load buffers, the parameter memories of the present cores and the output
    FIFO (its storage holds one entry fewer than the FIFO, the last in its read register)."""
    from amaranth.hdl import Value

    from hw.accel import GemmAccelerator
    from hw.generate import DIM_BITS, PARAM_DEPTH
    from sim.resources import buffer_depth, out_fifo_depth, top_memories

    over = {"both": [], "dsp": ["engine.lut_rows=0"], "lut": ["engine.dsp_rows=0"]}[core]
    accel = load_accelerator(preset, over)
    top = GemmAccelerator(accel, dim_bits=DIM_BITS, param_depth=PARAM_DEPTH)
    top._MustUse__silence = True  # only its layouts are read here
    mems = top_memories(accel)
    depth = buffer_depth(accel.memory.k_tile)
    assert mems["w_buf"] == (len(Value.cast(top.w_load.payload.data)), depth, "transparent")
    assert mems["x_buf"] == (len(Value.cast(top.x_load.payload.data)), depth, "transparent")
    assert mems["out_fifo"] == (len(Value.cast(top.out.payload)),
                                out_fifo_depth(accel.engine) - 1, "sync")
    assert sorted(k for k in mems if k.startswith("params")) == [f"params_{c}" for c in top.cores]
    for c in top.cores:
        assert mems[f"params_{c}"] == (top.param_layout.size, PARAM_DEPTH, "async")


def test_synth_whole_top_errors(capsys) -> None:
    code, _, err = run(capsys, "synth", "--accel", "tiny", "--whole-top", "--timeout", "0")
    assert code == 2 and err.strip().endswith(
        "--timeout must be a positive number of seconds, not 0")
    code, _, err = run(capsys, "synth", "--accel", "tiny", "--whole-top", "--timeout", "soon")
    assert code == 2 and "argument --timeout: invalid float value: 'soon'" in err
    code, _, err = run(capsys, "synth", "--accel", "tiny", "--whole-top", "--yosys",
                       "/nonexistent/yosys")
    assert code == 2 and "yosys must be installed" in err


@pytest.mark.slow  # 37-41 s of Yosys alone, 116 s on the loaded 2-core machine
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_synth_tiny_whole_top_json(capsys) -> None:
    """The whole top: buffers, parameter memories and the output FIFO
    in LUT RAM, walkers and controller; the model's memory mapping and register count are
    exact, its LUTs within 10% (sim.resources.top_cost)."""
    code, out, _ = run(capsys, "synth", "--accel", "tiny", "--whole-top", "--json",
                       "--no-progress")
    data = json.loads(out)
    m, model = data["measured"], data["model"]
    assert code == 0 and data["scope"].startswith("accelerator:")
    assert {r["resource"] for r in data["comparison"]} == {"lut", "ff", "dsp", "bram36",
                                                           "lutram"}
    # 2 x 3 RAM32M load buffers, 2 x 16 RAM64M parameter memories, 32 RAM32M for the FIFO
    assert m["cells"]["RAM32M"] == 38 and m["cells"]["RAM64M"] == 32 and m["bram36"] == 0
    assert [model["memories"][k]["cells"] for k in ("w_buf", "params_dsp", "out_fifo")] == [
        3, 16, 32]
    for key in ("dsp", "ff", "bram36", "lutram"):
        assert m[key] == model[key], key
    errors = {r["resource"]: r["rel_error"] for r in data["comparison"]}
    assert abs(errors["lut"]) <= 0.10
    assert model["lut_memory"] == 4 * 70


@pytest.mark.slow  # about 45 s of Yosys
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_synth_tiny_grouped_whole_top_json(capsys) -> None:
    """The tiny top with column group B (R3c: deal table, deal walkers, three weight banks,
    a second parameter read, group B's post-processors): the model's memory mapping exact,
    its LUTs within 5 % and its registers within 1 % (sim.resources' group terms)."""
    code, out, _ = run(capsys, "synth", "--accel", "tiny", "--set", "engine.group_b_cols=1",
                       "--whole-top", "--json", "--no-progress")
    data = json.loads(out)
    m, model = data["measured"], data["model"]
    assert code == 0
    # parameter memories twice (2 x 2 x 16 RAM64M) and the deal table (16 bits x 3 copies)
    assert m["cells"]["RAM64M"] == 64 + 48 + 6 and model["memories"]["deal_table"]["cells"] == 48
    for key in ("dsp", "bram36", "lutram"):
        assert m[key] == model[key], key
    errors = {r["resource"]: r["rel_error"] for r in data["comparison"]}
    assert abs(errors["lut"]) <= 0.05 and abs(errors["ff"]) <= 0.01


def test_manifest_gives_every_payload_bit_layout() -> None:
    """Issue 23: the manifest says where each field of each stream payload sits, and a host
    packing by it writes the bits the RTL's own layout reads."""
    from amaranth.lib import data

    from hw.accel import GemmAccelerator
    from hw.generate import DIM_BITS, PARAM_DEPTH

    accel = load_accelerator("tiny")
    _, manifest = generate(accel)
    widths = {p["name"]: p["width"] for p in manifest["ports"]}
    layouts = manifest["payload_layouts"]
    assert set(layouts) == {"cmd", "params", "load_req", "w_load", "x_load", "out"}
    for port, fields in layouts.items():
        lsb = 0
        for f in fields:  # contiguous, in order, covering the whole payload
            assert f["lsb"] == lsb, (port, f)
            lsb += f["width"]
        assert lsb == widths[f"{port}__payload"], port
    # issue 13: the GEMM's output format (out_bits, out_signed) travels in its command
    # R10b: then the prefetch fields (row counts of 2 rows, steps of k_tile 16)
    assert [f["field"] for f in layouts["cmd"]] == ["m_fixed", "m_lut", "n", "k", "f", "qa",
                                                     "ra", "qb", "rb", "order", "resident",
                                                     "out_bits", "out_signed", "pre", "pf",
                                                     "pf_rows_dsp", "pf_rows_lut", "pf_steps"]
    assert widths["cmd__payload"] == 152 + 2 + 2 + 2 + 5
    top = GemmAccelerator(accel, dim_bits=DIM_BITS, param_depth=PARAM_DEPTH)
    top._MustUse__silence = True  # only its port layouts are read here
    for port, values in (("cmd", {"m_fixed": 5, "m_lut": 3, "n": 7, "k": 9, "f": 2, "qa": 2,
                                  "ra": 1, "qb": 1, "rb": 1, "order": 1, "resident": 1,
                                  "out_bits": 9, "out_signed": 1, "pre": 1, "pf": 1,
                                  "pf_rows_dsp": 2, "pf_rows_lut": 1, "pf_steps": 16}),
                         ("params", {"lut": 1, "row": 3, "p": {"mult": 40000, "shift": 17,
                                                              "bias": -5, "relu": 1}})):
        layout = data.Layout.cast(getattr(top, port).payload.shape())
        want = layout.const(values).as_bits()
        flat = {"p.mult": 40000, "p.shift": 17, "p.bias": -5, "p.relu": 1, **values}
        got = sum((int(flat[f["field"]]) & ((1 << f["width"]) - 1)) << f["lsb"]
                  for f in layouts[port])
        assert got == want, port


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
@pytest.mark.parametrize("preset", ["tiny", "xc7z020", "xc7z045", "xczu9eg"])
def test_help_lint_passes_on_every_shipped_preset(preset: str, tmp_path) -> None:
    """Issue 23: the lint `fpim rtl --help` prints passes on every shipped preset's Verilog
    (generating the large presets takes minutes)."""
    from fpim.commands.rtl import lint_command
    from sim.config import preset_names

    assert preset in preset_names()
    text, manifest = generate(load_accelerator(preset))
    path = tmp_path / f"{manifest['top']}.v"
    path.write_text(text)
    proc = subprocess.run(lint_command(str(path)), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


# ---- the vector unit (hw.vector.unit; docs/rtl.md) --------------------------------------

#: Shipped vector units: (preset, tokens, features): the tiny preset's, sized for the tiny
#: ViT of tests/quant/vit_graph.py (TinyViT: 17 tokens of 8 features).
VECTOR_SHIPPED = [("tiny", 17, 8)]


def _vector_args(preset: str, tokens: int, features: int) -> list[str]:
    return ["--accel", preset, "--vector", "--tokens", str(tokens), "--features", str(features)]


@pytest.mark.parametrize(("preset", "tokens", "features"), VECTOR_SHIPPED)
def test_committed_vector_rtl_is_regenerated_identically(preset, tokens, features, tmp_path,
                                                         capsys) -> None:
    code, out, _ = run(capsys, "rtl", *_vector_args(preset, tokens, features),
                       "--out", str(tmp_path))
    assert code == 0 and "wrote" in out
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"fpim_{preset}_vec.json", f"fpim_{preset}_vec.v"]
    cmd = " ".join(_vector_args(preset, tokens, features))
    for name in files:
        assert (tmp_path / name).read_text() == (RTL / name).read_text(), (
            f"rtl/{name} differs from a fresh `fpim rtl {cmd} --out rtl`")
    manifest = json.loads((RTL / f"fpim_{preset}_vec.json").read_text())
    assert sorted(manifest["units"]) == ["gelu", "layernorm", "pos_embed", "requant",
                                         "softmax"]
    assert manifest["parameters"] == {"lanes": 4, "acc_bits": 24, "x_bits": 4,
                                      "x_signed": True, "tokens": 17, "features": 8}
    text = (RTL / f"fpim_{preset}_vec.v").read_text()
    for u in manifest["units"].values():
        assert f"module {u['module']}(" in text


@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
@pytest.mark.parametrize("unit", ["requant", "softmax", "gelu", "layernorm", "pos_embed"])
def test_vector_verilator_lint(unit: str) -> None:
    proc = subprocess.run(["verilator", "--lint-only", "-Wno-WIDTH", "-Wno-CASEINCOMPLETE",
                           "--top-module", f"fpim_tiny_vec_{unit}",
                           str(RTL / "fpim_tiny_vec.v")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_vector_cli_errors(capsys, tmp_path) -> None:
    """Bad vector options: one line, exit 2, before any generation or Yosys run."""
    cases = [
        (["rtl", "--accel", "tiny", "--tokens", "17", "--out", str(tmp_path)],
         "--tokens must come with --vector, not alone"),
        (["rtl", "--accel", "tiny", "--vector", "--features", "8", "--out", str(tmp_path)],
         "--vector must have both --tokens and --features, not --features alone"),
        (["rtl", *_vector_args("tiny", 0, 8), "--out", str(tmp_path)],
         "tokens must be an integer in 1..1048576 (the longest softmax row), not 0"),
        (["synth", "--accel", "tiny", "--unit", "gelu"],
         "--unit must come with --vector, not alone"),
        (["synth", *_vector_args("tiny", 17, 8), "--whole-top"],
         "--vector must not come with --whole-top"),
        (["synth", "--accel", "tiny", "--vector"],
         "--vector must have --model or both --tokens and --features, not neither"),
        (["synth", *_vector_args("tiny", 17, 8), "--model", "deit_base"],
         "--vector takes either --model or --tokens and --features, not both"),
        (["synth", "--accel", "tiny", "--vector", "--model", "resnet18"],
         "workload 'resnet18' must have attention"),
        (["synth", *_vector_args("tiny", 17, 70000)],
         "features must be an integer in 1..65536 (the longest LayerNorm token), not 70000"),
        (["synth", *_vector_args("tiny", 17, 8), "--unit", "exp"],
         "argument --unit: invalid choice: 'exp'"),
        (["synth", *_vector_args("tiny", 17, 8), "--yosys", "/nonexistent/yosys"],
         "yosys must be installed"),
    ]
    for argv, msg in cases:
        code, _, err = run(capsys, *argv)
        assert code == 2 and msg in err, (argv, err)
        assert "Traceback" not in err
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_synth_vector_requant_json(capsys) -> None:
    """The tiny preset's 4-lane requantizer: DSP exact (four 25x18 pieces per 24 x 32-bit
    product), LUT and FF within the calibration's 10%."""
    code, out, _ = run(capsys, "synth", *_vector_args("tiny", 17, 8), "--unit", "requant",
                       "--json")
    data = json.loads(out)
    assert code == 0 and data["vector"]["lanes"] == 4 and len(data["units"]) == 1
    u = data["units"][0]
    assert u["unit"] == "requant" and u["top"] == "fpim_tiny_vec_requant"
    assert u["family"] == "xc7" and u["measured"]["dsp"] == u["model"]["dsp"] == 16
    errors = {r["resource"]: r["rel_error"] for r in u["comparison"]}
    assert abs(errors["lut"]) <= 0.10 and abs(errors["ff"]) <= 0.10


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_synth_vector_pos_embed_json(capsys) -> None:
    """The tiny preset's 4-lane pos_embed: DSP exact (each lane's 4 x 32-bit branch product
    in two 25x18 pieces; the output requantizer's multiply by 1 takes none), LUT and FF
    within the calibration's 10%."""
    code, out, _ = run(capsys, "synth", *_vector_args("tiny", 17, 8), "--unit", "pos_embed",
                       "--json")
    data = json.loads(out)
    assert code == 0 and data["vector"]["lanes"] == 4 and len(data["units"]) == 1
    u = data["units"][0]
    assert u["unit"] == "pos_embed" and u["top"] == "fpim_tiny_vec_pos_embed"
    assert u["family"] == "xc7" and u["measured"]["dsp"] == u["model"]["dsp"] == 8
    errors = {r["resource"]: r["rel_error"] for r in u["comparison"]}
    assert abs(errors["lut"]) <= 0.10 and abs(errors["ff"]) <= 0.10


@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
def test_matmul_top_lints_and_its_option_is_checked(capsys, tmp_path) -> None:
    """`fpim rtl --matmul` writes the top with the attention-matmul path (sim.timing R11):
    it lints like the shipped top, records the option and the 166-bit command in its
    manifest; a packed DSP core or --vector with it is refused in one line."""
    code, _, _ = run(capsys, "rtl", "--accel", "tiny", "--matmul", "--out", str(tmp_path))
    assert code == 0
    manifest = json.loads((tmp_path / "fpim_tiny.json").read_text())
    assert manifest["parameters"]["matmul"] is True
    cmd = [f["field"] for f in manifest["payload_layouts"]["cmd"]]
    assert cmd[-3:] == ["matmul", "a_signed", "b_signed"]
    assert {p["name"]: p["width"] for p in manifest["ports"]}["cmd__payload"] == 166
    proc = subprocess.run(["verilator", "--lint-only", "-Wno-WIDTH", "--top-module",
                           "fpim_tiny", str(tmp_path / "fpim_tiny.v")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    code, _, err = run(capsys, "rtl", "--accel", "tiny", "--set", "engine.dsp_packing=2",
                       "--matmul", "--out", str(tmp_path / "p"))
    assert code == 2 and "matmul must be False for an engine with dsp_rows 2, dsp_packing 2" \
        in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "rtl", "--accel", "tiny", "--vector", "--tokens", "17",
                       "--features", "8", "--matmul", "--out", str(tmp_path / "v"))
    assert code == 2 and "--matmul applies only to the GEMM top, not with --vector" in err
