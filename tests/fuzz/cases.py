"""The table of malformed inputs: every subcommand, every file a user hands in.

Each :class:`Case` is one ``fpim`` command line that must be refused with one clean error
line containing ``expect`` (the field, option or value at fault). Placeholders in the
arguments: ``{in}`` is the directory holding the case's input ``files``; ``{out}`` a
directory for outputs (it does not exist beforehand); ``{art}`` the shipped QAT artifact,
or an edited, re-hashed copy of it when the case has ``manifest`` or ``tensors`` edits.

``python -m tests.fuzz.cases`` prints the number of cases per category, and the number of
hypothesis examples per strategy of ``test_generated.py``.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import yaml

from tests.fuzz.harness import ROOT

#: Category → what its cases feed in.
CATEGORIES = {
    "encoding": "files that are not UTF-8 text (presets, PIM macros, topologies, manifests)",
    "required": "a required key, section or file missing",
    "type": "a value of the wrong type (booleans as strings or integers, text for numbers)",
    "range": "a number of the right type outside its range (files and --set)",
    "cli": "command-line numbers, shapes and names out of range or malformed",
    "output": "output paths that are directories, files, under a file or unwritable",
    "size": "numbers too large for int64 or for memory",
    "artifact": "artifact contents: scales, shapes, attributes, graph, tensors, hash",
    "ignored": "options that would have no effect on the given input",
    "syntax": "unparseable files, unknown keys, presets, ops and names",
}


@dataclass(frozen=True)
class Case:
    """One malformed input (see the module docstring)."""

    category: str
    name: str
    argv: tuple[str, ...]
    expect: str
    files: Mapping[str, bytes] = field(default_factory=dict)
    manifest: Callable[[dict], None] | None = None
    tensors: Callable[[dict[str, np.ndarray]], None] | None = None
    readonly: bool = False  # the directory {in}/ro reports itself unwritable

    @property
    def id(self) -> str:
        return f"{self.category}-{self.name}"


CASES: list[Case] = []


def case(category: str, name: str, argv: tuple[str, ...] | list[str], expect: str,
         **kw: object) -> None:
    assert category in CATEGORIES, category
    CASES.append(Case(category, name, tuple(argv), expect, **kw))  # type: ignore[arg-type]


def _label(cmd: tuple[str, ...]) -> str:
    """The command's words, for case names: ``pim-eval``, ``verify``."""
    return "-".join(w for w in cmd[:2] if not w.startswith("-"))


def _yaml(data: object) -> bytes:
    return yaml.safe_dump(data, sort_keys=False).encode()


TINY = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
MACRO = yaml.safe_load((ROOT / "configs" / "pim" / "sram512x128_adc7.yaml").read_text())
TOPOLOGY = (ROOT / "configs" / "workloads" / "resnet18.csv").read_bytes()
ART = "{art}"
SIM = ("simulate", "--model", "resnet18", "--accel", "tiny")
PIM_SIM = ("pim", "simulate", "--artifact", ART, "--macro")
PIM_EVAL = ("pim", "eval", "--artifact", ART, "--macro", "sram512x128_adc7", "--limit", "2")
PIM_TRAIN = ("pim", "train", "--macro", "sram512x128_adc7", "--float-epochs", "1",
             "--qat-epochs", "1", "--epochs", "1")
QUANT = ("quantize", "--model", "cnn", "--epochs", "1", "--float-epochs", "1", "--no-progress")
VERIFY = ("verify", "--accel", "tiny", "--cases", "1")


def _edited(base: dict, path: str, value: object) -> dict:
    """A copy of ``base`` with dotted ``path`` set to ``value`` (``...=DELETE`` removes)."""
    out = copy.deepcopy(base)
    *head, last = path.split(".")
    node = out
    for k in head:
        node = node.setdefault(k, {}) if isinstance(node.get(k, {}), dict) else node[k]
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return out


DELETE = object()

# ---------------------------------------------------------------------------------------
# Accelerator presets: every field of every section with bad values, through --set on
# simulate and through YAML files on rtl, synth and verify
# ---------------------------------------------------------------------------------------

T, R = "type", "range"
PRESET_VALUES: dict[str, list[tuple[str, str]]] = {
    "engine.dsp_rows": [("-1", R), ("4097", R), ("x", T), ("true", T), ("1.5", T), ("[1]", T),
                        ("null", T)],
    "engine.lut_rows": [("-1", R), ("5000", R), ("two", T), ("false", T), ("2.0", T)],
    "engine.cols": [("0", R), ("4097", R), ("x", T), ("true", T), ("2.0", T), ("null", T),
                    ("{a: 1}", T)],
    "engine.weight_bits": [("0", R), ("99", R), ("four", T), ("true", T)],
    "engine.act_bits": [("0", R), ("17", R), ("x", T), ("false", T)],
    "engine.act_signed": [("'no'", T), ("'yes'", T), ("5", T), ("0", T), ("1", T),
                          ("'true'", T), ("null", T), ("maybe", T)],
    "engine.acc_bits": [("7", R), ("65", R), ("x", T), ("24.0", T)],
    "engine.dsp_packing": [("3", R), ("true", T), ("1.0", T), ("x", T), ("0", R)],
    "engine.lut_scheme": [("fixed", R), ("5", T), ("true", T), ("SP2", R)],
    "memory.k_tile": [("0", R), ("x", T), ("true", T), ("1.5", T), ("2000000", R)],
    "memory.weight_bank_kib": [("0", R), ("-1", R), ("x", T), (".nan", R), (".inf", R),
                               ("true", T)],
    "memory.act_bank_kib": [("0", R), ("'1'", T), ("[]", T)],
    "memory.out_bank_kib": [("-0.5", R), ("null", T)],
    "memory.dram_bytes_per_cycle": [("0", R), ("x", T), ("1.5", T), ("true", T)],
    "memory.dram_latency": [("-1", R), ("x", T), ("true", T), ("2000000", R)],
    "vector.lanes": [("0", R), ("x", T), ("true", T)],
    "vector.costs": [("5", T), ("[1]", T), ("{softmax: x}", T), ("{softmax: -1}", R),
                     ("{1: 2}", T)],
    "clock_mhz": [("0", R), ("-5", R), ("x", T), (".nan", R), ("2001", R), ("true", T)],
    "name": [("[1]", T), ("5", T), ("''", T), ("null", T)],
    "part": [("FOO", R), ("5", T), ("[1]", T), ("null", T)],
    "part.lut": [("x", T), ("0", R), ("true", T)],
    "part.dsp_type": [("DSP99", R), ("1", T)],
    "memory": [("5", T), ("[1]", T)],
    "vector": [("x", T), ("[1, 2]", T)],
    "engine": [("5", T), ("null", T), ("[]", T)],
}

for path, values in PRESET_VALUES.items():
    for text, cat in values:
        case(cat, f"set-{path}={text}", (*SIM, "--set", f"{path}={text}"),
             "part" if path.startswith("part") else path)

for text in ("engine.cols", "=3", "engine.cols=[", "engine.cols=!!python/object:os.system",
             "engine.colz=3", "enigne.cols=3", "engine.cols.x=3"):
    case("syntax", f"set-{text}", (*SIM, "--set", text), "engine" if "eng" in text else "")

#: (file name, preset YAML data or bytes, expected) handed to rtl, synth and verify.
PRESET_FILES: list[tuple[str, str, object, str]] = [
    ("required", "no-engine", _edited(TINY, "engine", DELETE), "engine"),
    ("required", "no-cols", _edited(TINY, "engine.cols", DELETE), "engine.cols is required"),
    ("required", "no-dsp-rows", _edited(TINY, "engine.dsp_rows", DELETE),
     "engine.dsp_rows is required"),
    ("required", "no-lut-rows", _edited(TINY, "engine.lut_rows", DELETE),
     "engine.lut_rows is required"),
    ("required", "part-no-ff", _edited(TINY, "part", {"name": "MYPART", "lut": 1000}),
     "part.ff is required"),
    ("required", "part-no-bram", _edited(TINY, "part", {"name": "P", "lut": 9, "ff": 9,
                                                        "dsp": 9, "dsp_type": "DSP48E1"}),
     "part.bram36 is required"),
    ("required", "no-part", _edited(TINY, "part", DELETE), "part"),
    ("type", "act-signed-no", _edited(TINY, "engine.act_signed", "no"), "engine.act_signed"),
    ("type", "act-signed-5", _edited(TINY, "engine.act_signed", 5), "engine.act_signed"),
    ("type", "cols-text", _edited(TINY, "engine.cols", "4"), "engine.cols"),
    ("syntax", "unknown-top", _edited(TINY, "engines", {}), "engines"),
    ("syntax", "unknown-engine", _edited(TINY, "engine.colz", 3), "colz"),
    ("syntax", "unknown-memory", _edited(TINY, "memory.ktile", 3), "ktile"),
    ("syntax", "top-list", [1, 2], "must hold a mapping"),
    ("syntax", "top-scalar", "tiny", "must hold a mapping"),
    ("syntax", "empty", b"", "must hold a mapping"),
    ("syntax", "bad-yaml", b"engine: [1, 2\n", "not valid YAML"),
    ("syntax", "tab-indent", b"engine:\n\tcols: 4\n", "not valid YAML"),
    ("syntax", "python-tag", b"engine: !!python/object/apply:os.system ['true']\n",
     "not valid YAML"),
    ("encoding", "nul-byte", b"name: ti\x00ny\n", "UTF-8 text, not binary"),
    ("syntax", "deep", b"a: " + b"[" * 1000 + b"]" * 1000 + b"\n", "YAML"),  # slow: rtl only
    ("encoding", "latin1", (ROOT / "configs" / "tiny.yaml").read_bytes()
     .replace(b"tiny", b"t\xefny"), "UTF-8"),
    ("encoding", "utf16", (ROOT / "configs" / "tiny.yaml").read_text().encode("utf-16"),
     "UTF-8"),
    ("encoding", "binary", bytes(range(256)), "UTF-8"),
    ("encoding", "cp1252-quote", b"name: \x93tiny\x94\n", "UTF-8"),
]

for cat, name, data, expect in PRESET_FILES:
    blob = data if isinstance(data, bytes) else _yaml(data)
    for cmd in (("rtl", "--accel", "{in}/p.yaml", "--out", "{out}"),
                ("synth", "--accel", "{in}/p.yaml"),
                (*VERIFY, "--accel", "{in}/p.yaml")):
        if name != "deep" or cmd[0] == "rtl":
            case(cat, f"{cmd[0]}-preset-{name}", cmd, expect, files={"p.yaml": blob})

for cmd in (("rtl", "--out", "{out}"), ("synth",), ("verify",), ("simulate", "--model",
                                                                   "resnet18")):
    case("syntax", f"{cmd[0]}-unknown-preset", (*cmd, "--accel", "nosuch"), "nosuch")
    case("required", f"{cmd[0]}-missing-preset-file",
         (*cmd, "--accel", "{in}/missing.yaml"), "missing.yaml")
    case("syntax", f"{cmd[0]}-preset-is-dir", (*cmd, "--accel", "{in}/d.yaml"), "d.yaml",
         files={"d.yaml/x": b""})
    case("range", f"{cmd[0]}-set-cols-0", (*cmd, "--accel", "tiny", "--set", "engine.cols=0"),
         "engine.cols")

# ---------------------------------------------------------------------------------------
# PIM macros: every field with bad values, in files handed to pim simulate / eval / train
# ---------------------------------------------------------------------------------------

MACRO_VALUES: dict[str, list[tuple[object, str]]] = {
    "rows": [(0, R), ("x", T), (True, T), (None, T), (70000, R)],
    "cols": [(0, R), (1.5, T)],
    "adcs": [(0, R), (200, R), ("16", T)],
    "adc_latency": [(0, R), (False, T)],
    "macros": [(0, R), ([1], T)],
    "write_cycles_per_row": [(-1, R), ("1", T)],
    "clock_mhz": [(0, R), ("x", T), (float("nan"), R), (True, T)],
    "energy_adc_pj": [(-1, R), ("x", T), (float("inf"), R)],
    "energy_cell_fj": [(-0.5, R), (None, T)],
    "energy_shift_add_pj": [(True, T)],
    "area_mm2": [(0, R), ("big", T)],
    "approximation": [("no", T), (1, T), (0, T), ("true", T), (None, T)],
    "sources": [([1], T), ({"a": 1}, T), ("text", T)],
    "name": [([1], T), (5, T), ("", T)],
    "arith.scheme": [("x", R), (5, T), (None, T)],
    "arith.group_size": [(0, R), (1000, R), ("64", T), (True, T)],
    "arith.cell_bits": [(0, R), (9, R), (1.0, T)],
    "arith.adc_bits": [(0, R), (17, R), ("seven", T), (False, T)],
    "arith.range_fraction": [(0, R), (1.5, R), ("x", T), (True, T), (float("nan"), R)],
    "arith.nonlinearity": [(1, R), (-0.1, R), ("x", T)],
    "arith.noise_lsb": [(-1, R), ("x", T), (float("nan"), R), (float("inf"), R)],
    "arith.adc_step": [(-1, R), (0.01, R), ("x", T), (float("inf"), R)],
    "arith.pot_step": [("no", T), (1, T)],
    "arith": [([1], T), (5, T), ("native", T)],
}

for path, values in MACRO_VALUES.items():
    for value, cat in values:
        blob = _yaml(_edited(MACRO, path, value))
        case(cat, f"macro-{path}={value!r}", (*PIM_SIM, "{in}/m.yaml"), path.split(".")[-1],
             files={"m.yaml": blob})

MACRO_FILES: list[tuple[str, str, bytes, str]] = [
    ("required", "no-rows", _yaml(_edited(MACRO, "rows", DELETE)), "rows is required"),
    ("required", "no-cols", _yaml(_edited(MACRO, "cols", DELETE)), "cols is required"),
    ("required", "no-adcs", _yaml(_edited(MACRO, "adcs", DELETE)), "adcs is required"),
    ("syntax", "unknown-field", _yaml(_edited(MACRO, "colums", 8)), "colums"),
    ("syntax", "unknown-arith", _yaml(_edited(MACRO, "arith.adcbits", 8)), "adcbits"),
    ("syntax", "list", _yaml([1]), "mapping"),
    ("syntax", "bad-yaml", b"rows: [\n", "not valid YAML"),
    ("encoding", "latin1", (ROOT / "configs" / "pim" / "sram512x128_adc7.yaml").read_bytes()
     .replace(b"Approximation", b"\xc0pproximation"), "UTF-8"),
    ("encoding", "utf16", "rows: 8\n".encode("utf-16-le"), "UTF-8 text, not binary"),
]
for cat, name, blob, expect in MACRO_FILES:
    for cmd in (PIM_SIM, (*PIM_EVAL[:4], "--macro"), (*PIM_TRAIN[:2], "--macro")):
        case(cat, f"{cmd[1]}-macro-{name}", (*cmd, "{in}/m.yaml"), expect,
             files={"m.yaml": blob})
for cmd in (PIM_SIM, (*PIM_EVAL[:4], "--macro")):
    case("syntax", f"{cmd[1]}-unknown-macro", (*cmd, "nosuch"), "nosuch")
    case("required", f"{cmd[1]}-missing-macro-file", (*cmd, "{in}/none.yaml"), "none.yaml")

# ---------------------------------------------------------------------------------------
# Topology CSVs: simulate and search
# ---------------------------------------------------------------------------------------

CONV_HEAD = b"Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, " \
            b"Channels, Num Filter, Strides,\n"
GEMM_HEAD = b"Layer Name, M, N, K,\n"
TOPOLOGIES: list[tuple[str, str, bytes, str]] = [
    ("encoding", "latin1", TOPOLOGY.replace(b"conv1,", b"c\xf6nv1,", 1), "UTF-8"),
    ("encoding", "utf16", TOPOLOGY.decode().encode("utf-16"), "UTF-8"),
    ("encoding", "binary", bytes(range(128, 256)), "UTF-8"),
    ("syntax", "empty", b"", "empty"),
    ("syntax", "blank-lines", b"\n\n  \n", "empty"),
    ("syntax", "header-only", CONV_HEAD, "no layers"),
    ("syntax", "no-header", b"conv1, 8, 8, 3, 3, 1, 4, 1,\n", "header"),
    ("syntax", "nul", GEMM_HEAD + b"a, 1, 2\x00, 3,\n", "line 2"),
    ("syntax", "short-row", CONV_HEAD + b"c, 8, 8, 3, 3, 1,\n", "line 2"),
    ("syntax", "long-row", GEMM_HEAD + b"a, 1, 2, 3, 4, 5,\n", "line 2"),
    ("syntax", "empty-cell", GEMM_HEAD + b"a, 1, , 3,\n", "line 2"),
    ("syntax", "duplicate", GEMM_HEAD + b"a, 1, 2, 3,\na, 1, 2, 3,\n", "used twice"),
    ("type", "text-m", GEMM_HEAD + b"a, x, 2, 3,\n", "M must be a positive integer"),
    ("type", "float-k", GEMM_HEAD + b"a, 1, 2, 3.5,\n", "K must be a positive integer"),
    ("type", "text-stride", CONV_HEAD + b"c, 8, 8, 3, 3, 1, 4, two,\n", "Strides"),
    ("type", "hex", GEMM_HEAD + b"a, 0x10, 2, 3,\n", "M must be"),
    ("range", "zero-n", GEMM_HEAD + b"a, 1, 0, 3,\n", "N must be a positive integer"),
    ("range", "negative", GEMM_HEAD + b"a, -4, 2, 3,\n", "M must be a positive integer"),
    ("range", "zero-stride", CONV_HEAD + b"c, 8, 8, 3, 3, 1, 4, 0,\n", "Strides"),
    ("range", "filter-too-big", CONV_HEAD + b"c, 3, 3, 5, 5, 1, 4, 1,\n", "filter 5x5"),
    ("range", "zero-channels", CONV_HEAD + b"c, 8, 8, 3, 3, 0, 4, 1,\n", "Channels"),
    ("size", "cell-too-big", GEMM_HEAD + b"a, 3000000000, 2, 3,\n", "M must be at most"),
    ("size", "cell-5000-digits", GEMM_HEAD + b"a, " + b"9" * 5000 + b", 2, 3,\n",
     "M must be at most"),
    ("size", "cell-20-digits", CONV_HEAD + b"c, 99999999999999999999, 8, 3, 3, 1, 4, 1,\n",
     "IFMAP Height must be at most"),
]
for cat, name, blob, expect in TOPOLOGIES:
    case(cat, f"simulate-topology-{name}", ("simulate", "--topology", "{in}/t.csv", "--accel",
                                            "tiny"), expect, files={"t.csv": blob})
    case(cat, f"search-topology-{name}", ("search", "msq", "--part", "XC7Z020", "--bits", "4",
                                          "--topology", "{in}/t.csv"), expect,
         files={"t.csv": blob})
case("syntax", "simulate-topology-gemm-forced", ("simulate", "--topology", "{in}/t.csv",
                                                 "--gemm", "--accel", "tiny"), "line 2",
     files={"t.csv": TOPOLOGY})
case("required", "simulate-topology-missing", ("simulate", "--topology", "{in}/no.csv",
                                               "--accel", "tiny"), "no.csv")
case("required", "search-topology-dir", ("search", "msq", "--part", "XC7Z020", "--bits", "4",
                                         "--topology", "{in}"), "topology")

MAX = str((1 << 31) - 1)
BIG = GEMM_HEAD + f"a, {MAX}, {MAX}, {MAX},\n".encode()
case("size", "simulate-cycle-int64", ("simulate", "--topology", "{in}/t.csv", "--accel",
                                      "tiny", "--set", "engine.acc_bits=64"),
     "cycle mode counts must stay below", files={"t.csv": BIG})
case("size", "simulate-cycle-int64-groups", ("simulate", "--topology", "{in}/t.csv", "--accel",
                                             "tiny", "--set", "engine.acc_bits=64"),
     "cycle mode counts", files={"t.csv": CONV_HEAD + f"DPc, 60000, 60000, 1, 1, {MAX}, "
                                                     f"{MAX}, 1, depthwise,\n".encode()})
for m, n, k in ((100_000, 100_000, 100_000), (20_000, 20_000, 1), (1, 300_000_000, 1)):
    case("size", f"simulate-functional-{m}x{n}x{k}",
         ("simulate", "--topology", "{in}/t.csv", "--accel", "tiny", "--set",
          "engine.acc_bits=64", "--functional", "--mode", "analytical"),
         "functional check", files={"t.csv": GEMM_HEAD + f"a, {n}, {m}, {k},\n".encode()})

# Transformers (sim.timing R11-R16): whole DeiT workloads and attention matmul rows
VIT = ("simulate", "--model", "deit_tiny", "--accel", "tiny")
case("range", "simulate-vit-no-dsp-core", (*VIT, "--set", "engine.dsp_rows=0"),
     "layer 'blocks.0.attn_qk' has 591 fixed rows but engine.dsp_rows is 0")
case("range", "simulate-vit-lanes-zero", (*VIT, "--set", "vector.lanes=0"), "vector.lanes")
case("range", "simulate-vit-lanes-huge", (*VIT, "--set", "vector.lanes=70000"), "vector.lanes")
case("size", "simulate-matmul-accumulator",
     ("simulate", "--topology", "{in}/t.csv", "--accel", "tiny"), "engine.acc_bits must be",
     files={"t.csv": GEMM_HEAD + b"qk, 197, 197, 10000000, matmul,\n"})
case("size", "simulate-vit-functional-accumulator", (*VIT, "--functional", "--set",
                                                    "engine.acc_bits=12"), "engine.acc_bits")

# ---------------------------------------------------------------------------------------
# Artifacts: manifest and tensor edits (re-hashed), and broken files
# ---------------------------------------------------------------------------------------


def _set(path: str, value: object) -> Callable[[dict], None]:
    """Manifest edit: dotted ``path`` (list indices as numbers) set to ``value``."""
    def edit(doc: dict) -> None:
        *head, last = (int(k) if k.isdigit() else k for k in path.split("."))
        node = doc
        for k in head:
            node = node[k]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return edit


NAN, INF = float("nan"), float("inf")
# Layers of the shipped artifact: 0 conv features.0, 1 conv features.3, 2 maxpool features.6,
# 3 conv features.7, 4 avgpool features.10, 5 flatten features.11, 6 linear fc.
ARTIFACT_EDITS: list[tuple[str, str, object, str]] = [
    ("input.scale", "nan", NAN, "input.scale"),
    ("input.scale", "inf", INF, "input.scale"),
    ("input.scale", "zero", 0.0, "input.scale"),
    ("input.scale", "negative", -0.1, "input.scale"),
    ("input.scale", "text", "0.1", "input.scale"),
    ("input.scale", "true", True, "input.scale"),
    ("input.format", "null", None, "input.format"),
    ("input.format.bits", "zero", 0, "input.format"),
    ("input.format.bits", "17", 17, "input.format"),
    ("input.format.bits", "text", "4", "input.format"),
    ("input.format.bits", "float", 4.0, "input.format"),
    ("input.format.signed", "text-no", "no", "input.format"),
    ("input.format.signed", "one", 1, "input.format"),
    ("input.shape", "empty", [], "input.shape"),
    ("input.shape", "zero", [0, 8, 8], "input.shape"),
    ("input.shape", "2d", [1, 64], "(C, H, W)"),
    ("input.shape", "float", [1.0, 8, 8], "input.shape"),
    ("input.shape", "text", ["1", 8, 8], "input.shape"),
    ("input.shape", "huge", [1, 1 << 20, 1 << 20], "input.shape"),
    ("input.shape", "other-channels", [3, 8, 8], "gemm K, N"),
    ("layers.0.out.scale", "nan", NAN, "out.scale"),
    ("layers.6.out.scale", "inf", INF, "out.scale"),
    ("layers.3.out.scale", "negative", -1.0, "out.scale"),
    ("layers.0.out.shape", "9x9", [16, 9, 9], "out.shape must be (16, 8, 8)"),
    ("layers.0.out.shape", "channels", [15, 8, 8], "out.shape must be (16, 8, 8)"),
    ("layers.2.out.shape", "maxpool", [32, 8, 8], "out.shape must be (32, 4, 4)"),
    ("layers.4.out.shape", "avgpool", [64, 2, 2], "out.shape must be (64, 1, 1)"),
    ("layers.5.out.shape", "flatten", [63], "out.shape must be (64,)"),
    ("layers.6.out.shape", "linear", [11], "out.shape must be (10,)"),
    ("layers.2.attrs.kernel", "zero", [0, 0], "attrs.kernel"),
    ("layers.2.attrs.kernel", "one-entry", [2], "attrs.kernel"),
    ("layers.2.attrs.kernel", "float", [2.0, 2], "attrs.kernel"),
    ("layers.2.attrs.kernel", "too-big", [9, 9], "kernel must fit"),
    ("layers.2.attrs.stride", "zero", 0, "attrs.stride"),
    ("layers.2.attrs.stride", "negative", -2, "attrs.stride"),
    ("layers.2.attrs.padding", "negative", -1, "attrs.padding"),
    ("layers.2.attrs.padding", "kernel", 2, "padding must be below"),
    ("layers.2.attrs.padding", "missing", DELETE, "attrs.padding"),
    ("layers.4.attrs.kernel", "zero", [0, 4], "attrs.kernel"),
    ("layers.4.attrs.stride", "zero", 0, "attrs.stride"),
    ("layers.4.attrs.mult", "text", "1", "attrs.mult"),
    ("layers.4.attrs.shift", "float", 4.5, "attrs.shift"),
    ("layers.4.attrs.shift", "huge", 1 << 70, "attrs.shift"),
    ("layers.0.attrs.stride", "zero", 0, "attrs.stride"),
    ("layers.0.attrs.kernel", "zero", [0, 3], "attrs.kernel"),
    ("layers.0.attrs.padding", "negative", -1, "attrs.padding"),
    ("layers.0.attrs.relu", "text", "yes", "attrs.relu"),
    ("layers.0.attrs.relu", "one", 1, "attrs.relu"),
    ("layers.0.attrs.relu", "missing", DELETE, "attrs.relu"),
    ("layers.0.attrs.weight_bits", "zero", 0, "attrs.weight_bits"),
    ("layers.0.attrs.weight_bits", "text", "4", "attrs.weight_bits"),
    ("layers.0.attrs.acc_bits", "65", 65, "attrs.acc_bits"),
    ("layers.0.attrs.gemm", "list", [16, 9, 64], "attrs.gemm"),
    ("layers.0.attrs.gemm.M", "float", 16.0, "attrs.gemm"),
    ("layers.0.attrs.gemm.K", "wrong", 10, "gemm K, N must be 9, 64"),
    ("layers.0.attrs.gemm.N", "wrong", 63, "gemm K, N must be 9, 64"),
    ("layers.0.attrs.gemm.M", "wrong", 17, "out.shape must be (17, 8, 8)"),
    ("layers.0.attrs.gemm.M", "missing", DELETE, "attrs.gemm"),
    ("layers.0.attrs.dilation", "unknown", 1, "dilation"),
    ("layers.5.attrs", "list", [], "attrs must be a dict"),
    ("layers.0.op", "unknown", "conv3d", "conv3d"),
    ("layers.0.op", "number", 5, "op must be a non-empty str"),
    ("layers.1.inputs", "undefined", ["nosuch"], "nosuch"),
    ("layers.1.inputs", "later", ["fc"], "'fc' is not defined before it"),
    ("layers.1.inputs", "two", ["input", "features.0"], "takes 1 input"),
    ("layers.1.inputs", "string", "features.0", "inputs must be a list"),
    ("layers.1.inputs", "number", [0], "input 0"),
    ("layers.1.name", "duplicate", "features.0", "used twice"),
    ("layers.1.name", "number", 3, "name must be a non-empty str"),
    ("layers.1.name", "empty", "", "name must be a non-empty str"),
    ("layers.2.out.format", "null", None, "out.format must be an activation format"),
    ("layers.5.out.format", "null", None, "out.format must be an activation format"),
    ("layers.2.out.scale", "changed", 0.5, "out format and scale must be the input's"),
    ("layers.2.out.format.bits", "changed", 8, "out format and scale must be the input's"),
    ("layers.3.out.format", "null", None, "input 'features.7' must have an activation"),
    ("layers.0", "list", [], "layers[0] must be a mapping"),
    ("layers.0.out", "missing", DELETE, "layers[0].out is required"),
    ("layers.0.tensors", "missing", DELETE, "layers[0].tensors is required"),
    ("layers.0.extra", "unknown", 1, "extra"),
    ("layers.0.out.extra", "unknown", 1, "extra"),
    ("layers.0.tensors.bias.dtype", "wrong", "int32", "tensors.bias must describe"),
    ("layers.0.tensors.bias.shape", "float", [16.0], "tensors.bias must describe"),
    ("layers.0.tensors.bias", "missing", DELETE, "bias"),
    ("layers.0.tensors.gamma", "unknown", {"dtype": "int64", "shape": [16]}, "gamma"),
    ("layers", "dict", {}, "layers must be a list"),
    ("layers", "empty", [], "output must name a layer"),
    ("output", "unknown", "logits", "output must name a layer, not 'logits'"),
    ("output", "number", 6, "output must be a str"),
    ("meta", "list", [], "meta must be a dict"),
    ("format", "other", "onnx", "format must be 'fpim-artifact'"),
    ("format_version", "two", 2, "format_version must be 1"),
    ("format_version", "float", 1.0, "format_version must be 1"),
    ("format_version", "text", "1", "format_version must be 1"),
    ("tensors_file", "path", "../tensors.safetensors", "tensors_file"),
    ("tensors_file", "number", 1, "tensors_file must be a str"),
    ("fpim_version", "number", 1, "fpim_version must be a str"),
    ("content_hash", "number", 5, "content_hash must be a str"),
    ("extra_key", "unknown", 1, "extra_key"),
]
for key in ("format_version", "fpim_version", "meta", "input", "layers", "output",
            "tensors_file", "content_hash"):
    ARTIFACT_EDITS.append((key, "missing", DELETE, key))


def _tensor(key: str, fn: Callable[[np.ndarray], np.ndarray | None]
            ) -> Callable[[dict[str, np.ndarray]], None]:
    def edit(t: dict[str, np.ndarray]) -> None:
        out = fn(t[key].copy()) if key in t else None
        if out is None:
            t.pop(key)
        else:
            t[key] = out
    return edit


def _put(i: object, v: object) -> Callable[[np.ndarray], np.ndarray]:
    def fn(a: np.ndarray) -> np.ndarray:
        a[i] = v  # type: ignore[index]
        return a
    return fn


TENSOR_EDITS: list[tuple[str, str, Callable, str]] = [
    ("features.0.alphas", "nan", _put(0, NAN), "alphas"),
    ("features.0.alphas", "inf", _put(3, INF), "alphas"),
    ("fc.alphas", "zero", _put(0, 0.0), "alphas"),
    ("fc.alphas", "negative", _put(1, -0.5), "alphas"),
    ("features.3.words", "out-of-range", _put((0, 0), 99), "code word"),
    ("features.3.words", "negative", _put((1, 1), -1), "code word"),
    ("features.0.scheme_ids", "unknown", _put(0, 9), "scheme"),
    ("features.0.words", "float32", lambda a: a.astype(np.float32), "dtype int32"),
    ("features.0.bias", "int32", lambda a: a.astype(np.int32), "dtype int64"),
    ("features.0.bias", "short", lambda a: a[:-1].copy(), "shape (16,)"),
    ("fc.words", "2x", lambda a: np.concatenate([a, a]), "shape (10, 64)"),
    ("fc.mult", "missing", lambda a: None, "fc.mult"),
]
for path, name, value, expect in ARTIFACT_EDITS:
    case("artifact" if not expect.endswith("is required") else "required",
         f"manifest-{path}-{name}", ("simulate", "--artifact", ART, "--accel", "tiny"), expect,
         manifest=_set(path, value))
for key, name, fn, expect in TENSOR_EDITS:
    case("artifact", f"tensor-{key}-{name}", ("simulate", "--artifact", ART, "--accel", "tiny"),
         expect, tensors=_tensor(key, fn))
case("artifact", "tensor-extra", ("simulate", "--artifact", ART, "--accel", "tiny"),
     "unexpected tensor", tensors=lambda t: t.update({"fc.gamma": np.zeros(3)}))

# the same edits on the other commands that read artifacts
for cmd in ((*PIM_SIM, "sram512x128_adc7"), PIM_EVAL,
            (*VERIFY, "--artifact", ART, "--layer", "features.3")):
    for path, value, expect in (("input.scale", NAN, "input.scale"),
                                ("layers.2.attrs.kernel", [0, 0], "attrs.kernel"),
                                ("layers.0.out.shape", [16, 9, 9], "out.shape"),
                                ("layers.0.attrs.relu", "no", "attrs.relu")):
        case("artifact", f"{_label(cmd)}-manifest-{path}", cmd, expect,
             manifest=_set(path, value))
    case("artifact", f"{_label(cmd)}-alphas-nan", cmd, "alphas",
         tensors=_tensor("fc.alphas", _put(0, NAN)))

MANIFEST = (SHIPPED_MANIFEST := (ROOT / "configs" / "artifacts" / "cnn_msq4_digits" /
                                 "manifest.json")).read_bytes()
BROKEN_FILES: list[tuple[str, str, Mapping[str, bytes], str]] = [
    ("required", "empty-dir", {"a/.keep": b""}, "manifest.json"),
    ("required", "no-tensors", {"a/manifest.json": MANIFEST}, "tensors.safetensors"),
    ("syntax", "manifest-not-json", {"a/manifest.json": b"{oops"}, "valid JSON"),
    ("syntax", "manifest-deep", {"a/manifest.json": b"[" * 100000 + b"]" * 100000},
     "manifest.json"),
    ("syntax", "manifest-long-number", {"a/manifest.json": b"[" + b"1" * 5000 + b"]"},
     "valid JSON"),
    ("syntax", "manifest-list", {"a/manifest.json": b"[1, 2]"}, "format"),
    ("encoding", "manifest-latin1", {"a/manifest.json": MANIFEST.replace(b'"cnn"', b'"c\xe9n"')},
     "UTF-8"),
    ("encoding", "manifest-utf16", {"a/manifest.json": MANIFEST.decode().encode("utf-16")},
     "UTF-8"),
    ("syntax", "tensors-garbage", {"a/manifest.json": MANIFEST,
                                   "a/tensors.safetensors": b"garbage" * 10},
     "not a readable safetensors file"),
    ("syntax", "tensors-truncated", {"a/manifest.json": MANIFEST,
                                     "a/tensors.safetensors": (SHIPPED_MANIFEST.parent /
                                                               "tensors.safetensors")
                                     .read_bytes()[:5000]}, "safetensors"),
    ("syntax", "artifact-is-file", {"a": b"x"}, "artifact must be a directory"),
]
for cat, name, files, expect in BROKEN_FILES:
    for cmd in (("simulate", "--artifact", "{in}/a", "--accel", "tiny"),
                ("pim", "simulate", "--artifact", "{in}/a", "--macro", "sram512x128_adc7")):
        case(cat, f"{_label(cmd)}-{name}", cmd, expect, files=files)
case("artifact", "hash-mismatch", ("simulate", "--artifact", "{in}/a", "--accel", "tiny"),
     "content_hash mismatch",
     files={"a/manifest.json": MANIFEST.replace(b'"cnn"', b'"CNN"'),
            "a/tensors.safetensors": (SHIPPED_MANIFEST.parent / "tensors.safetensors")
            .read_bytes()})

# ---------------------------------------------------------------------------------------
# Command-line numbers, shapes and names
# ---------------------------------------------------------------------------------------

FUNC = (*SIM, "--functional")
CLI: list[tuple[str, tuple[str, ...], str]] = [
    ("simulate-seed-negative", (*FUNC, "--seed", "-1"), "seed"),
    ("simulate-seed-2^32", (*FUNC, "--seed", str(1 << 32)), "seed"),
    ("simulate-seed-text", (*FUNC, "--seed", "x"), "seed"),
    ("simulate-max-cycles-negative", (*SIM, "--max-cycles", "-5"), "max-cycles"),
    ("simulate-max-cycles-zero", (*SIM, "--max-cycles", "0"), "max-cycles"),
    ("simulate-max-cycles-2^62", (*SIM, "--max-cycles", str(1 << 62)), "max-cycles"),
    ("simulate-max-cycles-float", (*SIM, "--max-cycles", "1e6"), "max-cycles"),
    ("simulate-batch-zero", ("simulate", "--artifact", ART, "--accel", "tiny", "--batch", "0"),
     "batch"),
    ("simulate-batch-huge", ("simulate", "--artifact", ART, "--accel", "tiny", "--batch",
                             str(1 << 40)), "batch"),
    ("simulate-sp2-fraction-nan", (*SIM, "--sp2-fraction", "nan"), "sp2_fraction"),
    ("simulate-sp2-fraction-2", (*SIM, "--sp2-fraction", "2"), "sp2_fraction"),
    ("simulate-sp2-fraction-negative", (*SIM, "--sp2-fraction", "-0.5"), "sp2_fraction"),
    ("simulate-mode", (*SIM, "--mode", "exact"), "mode"),
    ("simulate-no-source", ("simulate", "--accel", "tiny"), "required"),
    ("simulate-two-sources", (*SIM, "--topology", "x.csv"), "not allowed with"),
    ("simulate-no-accel", ("simulate", "--model", "resnet18"), "--accel"),
    ("simulate-model-unknown", ("simulate", "--model", "vgg99", "--accel", "tiny"), "vgg99"),
    ("simulate-model-colon", ("simulate", "--model", ":", "--accel", "tiny", "--input-shape",
                              "1,3,8,8"), "package.module:function"),
    ("simulate-model-three-parts", ("simulate", "--model", "a:b:c", "--accel", "tiny",
                                    "--input-shape", "1,3,8,8"), "package.module:function"),
    ("simulate-model-digit", ("simulate", "--model", "1mod:f", "--accel", "tiny",
                              "--input-shape", "1,3,8,8"), "package.module:function"),
    ("simulate-model-path", ("simulate", "--model", "models/x.py:build", "--accel", "tiny",
                             "--input-shape", "1,3,8,8"), "models/x.py"),
    ("simulate-model-space", ("simulate", "--model", "os path:f", "--accel", "tiny",
                              "--input-shape", "1,3,8,8"), "package.module:function"),
    ("simulate-model-no-module", ("simulate", "--model", "no_such_module_xyz:build", "--accel",
                                  "tiny", "--input-shape", "1,3,8,8"), "no_such_module_xyz"),
    ("simulate-model-no-function", ("simulate", "--model", "json:no_such_fn", "--accel", "tiny",
                                    "--input-shape", "1,3,8,8"), "no_such_fn"),
    ("simulate-model-not-callable", ("simulate", "--model", "json:__doc__", "--accel", "tiny",
                                     "--input-shape", "1,3,8,8"), "__doc__"),
    ("simulate-model-raises", ("simulate", "--model", "json:dumps", "--accel", "tiny",
                               "--input-shape", "1,3,8,8"), "json:dumps"),
    ("simulate-model-not-module", ("simulate", "--model", "collections:OrderedDict", "--accel",
                                   "tiny", "--input-shape", "1,3,8,8"), "nn.Module"),
    ("simulate-model-no-shape", ("simulate", "--model", "json:dumps", "--accel", "tiny"),
     "--input-shape"),
    ("simulate-input-shape-text", ("simulate", "--model", "m:f", "--accel", "tiny",
                                   "--input-shape", "a,b"), "input-shape"),
    ("simulate-input-shape-one", ("simulate", "--model", "m:f", "--accel", "tiny",
                                  "--input-shape", "8"), "input-shape"),
    ("simulate-input-shape-zero", ("simulate", "--model", "m:f", "--accel", "tiny",
                                   "--input-shape", "1,0,8,8"), "input-shape"),
    ("simulate-input-shape-negative", ("simulate", "--model", "m:f", "--accel", "tiny",
                                       "--input-shape", "1,-3,8,8"), "input-shape"),
    ("simulate-input-shape-six", ("simulate", "--model", "m:f", "--accel", "tiny",
                                  "--input-shape", "1,1,1,1,1,1"), "input-shape"),
    ("simulate-input-shape-empty", ("simulate", "--model", "m:f", "--accel", "tiny",
                                    "--input-shape", ""), "input-shape"),
    ("simulate-input-shape-float", ("simulate", "--model", "m:f", "--accel", "tiny",
                                    "--input-shape", "1,3,8.5,8"), "input-shape"),
    ("verify-cases-negative", (*VERIFY[:3], "--cases", "-1"), "cases"),
    ("verify-cases-huge", (*VERIFY[:3], "--cases", "100001"), "cases"),
    ("verify-seed-negative", (*VERIFY, "--seed", "-7"), "seed"),
    ("verify-out-pattern", (*VERIFY, "--out-pattern", "none"), "out-pattern"),
    ("verify-layer-unknown", (*VERIFY, "--layer", "nosuch"), "nosuch"),
    ("verify-artifact-no-layer", (*VERIFY, "--artifact", ART), "layer"),
    ("verify-layer-not-gemm", (*VERIFY, "--artifact", ART, "--layer", "features.6"),
     "features.6"),
    ("pim-simulate-batch-zero", (*PIM_SIM, "sram512x128_adc7", "--batch", "0"), "batch"),
    ("pim-simulate-batch-huge", (*PIM_SIM, "sram512x128_adc7", "--batch", str(1 << 21)),
     "batch"),
    ("pim-eval-limit-zero", (*PIM_EVAL[:6], "--limit", "0"), "limit"),
    ("pim-eval-limit-huge", (*PIM_EVAL[:6], "--limit", "1000000"), "limit"),
    ("pim-eval-seed-negative", (*PIM_EVAL, "--noise-lsb", "1", "--seed", "-1"), "seed"),
    ("pim-eval-adc-bits", (*PIM_EVAL, "--adc-bits", "0"), "adc_bits"),
    ("pim-eval-cell-bits", (*PIM_EVAL, "--cell-bits", "9"), "cell_bits"),
    ("pim-eval-group-size", (*PIM_EVAL, "--group-size", "0"), "group_size"),
    ("pim-eval-group-size-rows", (*PIM_EVAL, "--group-size", "1024"), "group_size"),
    ("pim-eval-range-fraction", (*PIM_EVAL, "--range-fraction", "2"), "range_fraction"),
    ("pim-eval-nonlinearity", (*PIM_EVAL, "--nonlinearity", "1"), "nonlinearity"),
    ("pim-eval-noise-nan", (*PIM_EVAL, "--noise-lsb", "nan"), "noise_lsb"),
    ("pim-eval-noise-inf", (*PIM_EVAL, "--noise-lsb", "inf"), "noise_lsb"),
    ("pim-eval-scheme", (*PIM_EVAL, "--scheme", "analog"), "scheme"),
    ("pim-eval-data", (*PIM_EVAL, "--data", "mnist"), "mnist"),
    ("pim-eval-data-dir-missing", (*PIM_EVAL, "--data", "cifar10"), "data-dir"),
    ("pim-train-seed", (*PIM_TRAIN, "--seed", "-1"), "seed"),
    ("pim-train-epochs", (*PIM_TRAIN, "--epochs", "-1"), "epochs"),
    ("pim-train-float-epochs", (*PIM_TRAIN, "--float-epochs", "10001"), "float-epochs"),
    ("pim-train-lr-zero", (*PIM_TRAIN, "--lr", "0"), "lr"),
    ("pim-train-pim-lr-nan", (*PIM_TRAIN, "--pim-lr", "nan"), "pim-lr"),
    ("pim-train-bits", (*PIM_TRAIN, "--bits", "99"), "bits"),
    ("pim-train-act-bits", (*PIM_TRAIN, "--act-bits", "0"), "act_bits"),
    ("pim-train-input-bits", (*PIM_TRAIN, "--input-bits", "1"), "input_bits"),
    ("pim-train-width", (*PIM_TRAIN, "--width", "0"), "width"),
    ("pim-train-model", (*PIM_TRAIN, "--model", "vgg"), "vgg"),
    ("pim-train-train-adc-bits", (*PIM_TRAIN, "--train-adc-bits", "0"), "adc_bits"),
    ("pim-train-train-noise", (*PIM_TRAIN, "--train-noise-lsb", "-1"), "noise_lsb"),
    ("pim-train-backward-scale", (*PIM_TRAIN, "--backward-scale", "0"), "backward_scale"),
    ("pim-train-data", (*PIM_TRAIN, "--data", "imagenet"), "imagenet"),
    ("quantize-bits", (*QUANT, "--scheme", "fixed", "--bits", "99", "--out", "{out}/a"), "bits"),
    ("quantize-bits-sp2", (*QUANT, "--scheme", "sp2", "--bits", "2", "--out", "{out}/a"),
     "bits"),
    ("quantize-act-bits", (*QUANT, "--scheme", "fixed", "--bits", "4", "--act-bits", "0",
                           "--out", "{out}/a"), "act_bits"),
    ("quantize-act-bits-f8", (*QUANT, "--scheme", "f8", "--bits", "8", "--act-bits", "4",
                              "--out", "{out}/a"), "act_bits"),
    ("quantize-width", (*QUANT, "--scheme", "fixed", "--bits", "4", "--width", "0", "--out",
                        "{out}/a"), "width"),
    ("quantize-epochs", (*QUANT, "--scheme", "fixed", "--bits", "4", "--epochs", "-1", "--out",
                         "{out}/a"), "epochs"),
    ("quantize-lr-nan", (*QUANT, "--scheme", "fixed", "--bits", "4", "--lr", "nan", "--out",
                         "{out}/a"), "lr"),
    ("quantize-float-lr", (*QUANT, "--scheme", "fixed", "--bits", "4", "--float-lr", "-1",
                           "--out", "{out}/a"), "lr"),
    ("quantize-batch-size", (*QUANT, "--scheme", "fixed", "--bits", "4", "--batch-size", "0",
                             "--out", "{out}/a"), "batch_size"),
    ("quantize-sp2-fraction", (*QUANT, "--scheme", "msq", "--bits", "4", "--sp2-fraction",
                               "1.5", "--out", "{out}/a"), "sp2_fraction"),
    ("quantize-input-bits", (*QUANT, "--scheme", "fixed", "--bits", "4", "--input-bits", "1",
                             "--out", "{out}/a"), "input_bits"),
    ("quantize-pool-extra-bits", (*QUANT, "--scheme", "fixed", "--bits", "4",
                                  "--pool-extra-bits", "9", "--out", "{out}/a"),
     "pool_extra_bits"),
    ("quantize-first-last-bits", (*QUANT, "--scheme", "fixed", "--bits", "4",
                                  "--first-last-bits", "17", "--out", "{out}/a"),
     "first-last-bits"),
    ("quantize-first-last-bits-1", (*QUANT, "--scheme", "fixed", "--bits", "4",
                                    "--first-last-bits", "1", "--out", "{out}/a"),
     "first_last_bits"),
    ("quantize-image-size", (*QUANT, "--scheme", "fixed", "--bits", "4", "--data", "folder",
                             "--data-dir", "{in}", "--image-size", "2", "--out", "{out}/a"),
     "image-size"),
    ("quantize-seed", (*QUANT, "--scheme", "fixed", "--bits", "4", "--seed", "-1", "--out",
                       "{out}/a"), "seed"),
    ("quantize-scheme", (*QUANT, "--scheme", "int", "--bits", "4", "--out", "{out}/a"),
     "scheme"),
    ("quantize-model", ("quantize", "--model", "vgg", "--scheme", "fixed", "--bits", "4",
                        "--out", "{out}/a"), "model"),
    ("quantize-data", (*QUANT, "--data", "mnist", "--scheme", "fixed", "--bits", "4", "--out",
                       "{out}/a"), "data"),
    ("quantize-data-dir-missing", (*QUANT, "--data", "cifar10", "--scheme", "fixed", "--bits",
                                   "4", "--out", "{out}/a"), "data-dir"),
    ("quantize-checkpoint-garbage", (*QUANT, "--scheme", "fixed", "--bits", "4",
                                     "--float-checkpoint", "{in}/f.pt", "--out", "{out}/a"),
     "float-checkpoint"),
    ("search-bits-low", ("search", "msq", "--part", "XC7Z020", "--bits", "2"), "bits"),
    ("search-bits-high", ("search", "msq", "--part", "XC7Z020", "--bits", "9"), "bits"),
    ("search-lut-cap-negative", ("search", "msq", "--part", "XC7Z020", "--bits", "4",
                                 "--lut-cap", "-0.1"), "lut_cap"),
    ("search-lut-cap-nan", ("search", "msq", "--part", "XC7Z020", "--bits", "4",
                            "--lut-cap", "nan"), "lut_cap"),
    ("search-packing-3", ("search", "msq", "--part", "XC7Z020", "--bits", "4", "--packing",
                          "3"), "packing"),
    ("search-part", ("search", "msq", "--part", "XC7Z999", "--bits", "4"), "XC7Z999"),
    ("search-model", ("search", "msq", "--part", "XC7Z020", "--bits", "4", "--model", "gpt"),
     "gpt"),
    ("search-no-kind", ("search",), "SEARCH"),
    ("search-vit-fps-target-zero", ("search", "vit", "--part", "XCZU9EG", "--bits", "8",
                                    "--fps-target", "0"), "fps-target"),
    ("search-vit-fps-target-nan", ("search", "vit", "--part", "XCZU9EG", "--bits", "8",
                                   "--fps-target", "nan"), "fps-target"),
    ("search-vit-no-attention", ("search", "vit", "--part", "XCZU9EG", "--bits", "8",
                                 "--model", "resnet18"), "attention"),
    ("search-vit-lut-cap-zero", ("search", "vit", "--part", "XCZU9EG", "--bits", "8",
                                 "--lut-cap", "0"), "lut_cap"),
    ("search-vit-packing-4-8bit", ("search", "vit", "--part", "XCZU9EG", "--bits", "8",
                                   "--packing", "4"), "packing"),
    ("formats-bits", ("formats", "--scheme", "sp2", "--bits", "99"), "bits"),
    ("formats-bits-pot", ("formats", "--scheme", "pot", "--bits", "1"), "bits"),
    ("formats-bits-f8", ("formats", "--scheme", "f8", "--bits", "4"), "bits"),
    ("formats-fl-negative", ("formats", "--scheme", "f8", "--bits", "8", "--fl", "-1"), "fl"),
    ("formats-fl-unsigned", ("formats", "--scheme", "f8", "--bits", "8", "--fl", "9",
                             "--unsigned"), "fl"),
    ("formats-scheme", ("formats", "--scheme", "int4", "--bits", "4"), "scheme"),
    ("formats-bits-text", ("formats", "--scheme", "sp2", "--bits", "four"), "bits"),
    ("synth-family", ("synth", "--accel", "tiny", "--family", "ice40"), "family"),
    ("synth-yosys-missing", ("synth", "--accel", "tiny", "--yosys", "{in}/no-yosys"),
     "yosys"),
    ("pim-no-command", ("pim",), "PIM_COMMAND"),
    ("unknown-command", ("simulat",), "simulat"),
]
for name, argv, expect in CLI:
    case("cli", name, argv, expect,
         files={"f.pt": b"not a checkpoint"} if "checkpoint" in name else {})

# ---------------------------------------------------------------------------------------
# Your own model: Python factories and ONNX files
# ---------------------------------------------------------------------------------------


def _onnx(nodes: list, inputs: list, inits: tuple = (), out: tuple = (1, 4, 6, 6)) -> bytes:
    """An ONNX model (opset 17) of ``nodes`` reading ``inputs`` (name, shape) and the
    float ``inits`` (name, shape), its output of shape ``out``."""
    from onnx import TensorProto, helper, numpy_helper

    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs]
    y = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, list(out))
    weights = [numpy_helper.from_array(np.zeros(s, np.float32), n) for n, s in inits]
    graph = helper.make_graph(nodes, "g", ins, [y], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]
                             ).SerializeToString()


def _node(op: str, ins: list[str], out: str, name: str = "", **attrs: object):
    from onnx import helper

    return helper.make_node(op, ins, [out], name=name or out, **attrs)


X4 = [("x", [1, 3, 8, 8])]
W4 = (("w", (4, 3, 3, 3)),)
CONV = _node("Conv", ["x", "w"], "y", "stem")
ONNX_SIM = ("simulate", "--model", "{in}/m.onnx", "--accel", "tiny")
NET = b"import torch\nfrom torch import nn\n\n\ndef make():\n    return %s\n"
FLAT = b"nn.Flatten(), nn.Linear(4 * 6 * 6, %d))"
USER_MODELS: list[tuple[str, tuple[str, ...], str, dict[str, bytes]]] = [
    ("onnx-garbage", ONNX_SIM, "valid ONNX model", {"m.onnx": b"not an onnx model"}),
    ("onnx-empty", ONNX_SIM, "valid ONNX model", {"m.onnx": b""}),
    ("onnx-truncated", ONNX_SIM, "valid ONNX model",
     {"m.onnx": _onnx([CONV], X4, W4)[:-7]}),
    ("onnx-missing", ("simulate", "--model", "{in}/none.onnx", "--accel", "tiny"),
     "none.onnx", {}),
    ("onnx-unsupported-op", ONNX_SIM, "'up'",
     {"m.onnx": _onnx([CONV, _node("ConvTranspose", ["y", "w2"], "z", "up")], X4,
                      (*W4, ("w2", (4, 2, 2, 2))), (1, 2, 7, 7))}),
    ("onnx-custom-domain", ONNX_SIM, "mydomain",
     {"m.onnx": _onnx([CONV, _node("Mystery", ["y"], "z", "odd", domain="mydomain")], X4,
                      W4)}),
    ("onnx-dynamic-input", ONNX_SIM, "static shape",
     {"m.onnx": _onnx([CONV], [("x", ["batch", 3, 8, 8])], W4, ("batch", 4, 6, 6))}),
    ("onnx-two-inputs", ONNX_SIM, "one data input",
     {"m.onnx": _onnx([_node("Add", ["x", "x2"], "y")], [*X4, ("x2", [1, 3, 8, 8])],
                      out=(1, 3, 8, 8))}),
    ("onnx-input-shape-rank", (*ONNX_SIM, "--input-shape", "1,3"), "input-shape",
     {"m.onnx": _onnx([CONV], X4, W4)}),
    ("onnx-shape-mismatch", ONNX_SIM, "shape inference",
     {"m.onnx": _onnx([_node("MatMul", ["x", "w"], "y")], X4, (("w", (5, 2)),),
                      (1, 3, 8, 2))}),
    ("onnx-no-gemm", ONNX_SIM, "Conv, Gemm or MatMul",
     {"m.onnx": _onnx([_node("Relu", ["x"], "y")], X4, out=(1, 3, 8, 8))}),
    ("onnx-channel-mismatch", ONNX_SIM, "input channels",
     {"m.onnx": _onnx([_node("Conv", ["x", "w"], "y")], X4, (("w", (4, 5, 3, 3)),))}),
    ("py-missing", ("simulate", "--model", "{in}/none.py:make", "--accel", "tiny",
                    "--input-shape", "1,3,8,8"), "none.py", {}),
    ("py-no-function", ("simulate", "--model", "{in}/net.py:build", "--accel", "tiny",
                        "--input-shape", "1,3,8,8"), "'build'",
     {"net.py": NET % b"nn.Conv2d(3, 4, 3)"}),
    ("py-not-a-module", ("simulate", "--model", "{in}/net.py:make", "--accel", "tiny",
                         "--input-shape", "1,3,8,8"), "nn.Module", {"net.py": NET % b"3"}),
    ("py-import-fails", ("simulate", "--model", "{in}/net.py:make", "--accel", "tiny",
                         "--input-shape", "1,3,8,8"), "RuntimeError",
     {"net.py": b"raise RuntimeError('broken on purpose')\n"}),
    ("quantize-unsupported-layer", (*QUANT[:1], "--model", "{in}/net.py:make", *QUANT[3:],
                                    "--scheme", "fixed", "--bits", "4", "--out", "{out}/a"),
     "Sigmoid",
     {"net.py": NET % (b"nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sigmoid(), " + FLAT % 10)}),
    ("quantize-wrong-classes", (*QUANT[:1], "--model", "{in}/net.py:make", *QUANT[3:],
                                "--scheme", "fixed", "--bits", "4", "--out", "{out}/a"),
     "10 class logits",
     {"net.py": NET % (b"nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), " + FLAT % 3)}),
    ("quantize-checkpoint-missing", (*QUANT[:1], "--model", "{in}/net.py:make", *QUANT[3:],
                                     "--checkpoint", "{in}/none.pt", "--scheme", "fixed",
                                     "--bits", "4", "--out", "{out}/a"), "none.pt",
     {"net.py": NET % (b"nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), " + FLAT % 10)}),
    ("quantize-width-factory", (*QUANT[:1], "--model", "{in}/net.py:make", *QUANT[3:],
                                "--width", "2", "--scheme", "fixed", "--bits", "4", "--out",
                                "{out}/a"), "--width", {"net.py": NET % b"nn.Identity()"}),
    ("quantize-onnx", (*QUANT[:1], "--model", "{in}/m.onnx", *QUANT[3:], "--scheme",
                       "fixed", "--bits", "4", "--out", "{out}/a"), "m.onnx",
     {"m.onnx": _onnx([CONV], X4, W4)}),
    ("pim-train-model-missing", (*PIM_TRAIN, "--model", "{in}/none.py:make"), "none.py", {}),
    ("pim-train-unsupported-layer", (*PIM_TRAIN, "--model", "{in}/net.py:make"), "Sigmoid",
     {"net.py": NET % (b"nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sigmoid(), " + FLAT % 10)}),
]
for name, argv, expect, files in USER_MODELS:
    case("syntax", name, argv, expect, files=files)

# ---------------------------------------------------------------------------------------
# Output paths: checked before any work
# ---------------------------------------------------------------------------------------

D = {"dir/x": b"", "file.txt": b"mine", "full/notes.txt": b"mine", "ro/.keep": b"",
     "rtl/fpim_tiny.v/x": b""}
OUTPUTS: list[tuple[str, tuple[str, ...], str, bool]] = [
    ("csv-dir", (*SIM, "--csv", "{in}/dir"), "csv", False),
    ("csv-under-file", (*SIM, "--csv", "{in}/file.txt/x.csv"), "csv", False),
    ("csv-empty", (*SIM, "--csv", ""), "csv", False),
    ("csv-readonly", (*SIM, "--csv", "{in}/ro/x.csv"), "csv", True),
    ("csv-readonly-deep", (*SIM, "--csv", "{in}/ro/a/b/x.csv"), "csv", True),
    ("rtl-file", ("rtl", "--accel", "tiny", "--out", "{in}/file.txt"), "out", False),
    ("rtl-under-file", ("rtl", "--accel", "tiny", "--out", "{in}/file.txt/rtl"), "out", False),
    ("rtl-readonly", ("rtl", "--accel", "tiny", "--out", "{in}/ro"), "out", True),
    ("rtl-top-is-dir", ("rtl", "--accel", "tiny", "--out", "{in}/rtl"), "fpim_tiny.v", False),
    ("quantize-file", (*QUANT, "--scheme", "fixed", "--bits", "4", "--out", "{in}/file.txt"),
     "out", False),
    ("quantize-other-files", (*QUANT, "--scheme", "fixed", "--bits", "4", "--out",
                              "{in}/full"), "out", False),
    ("quantize-under-file", (*QUANT, "--scheme", "fixed", "--bits", "4", "--out",
                             "{in}/file.txt/a"), "out", False),
    ("quantize-readonly", (*QUANT, "--scheme", "fixed", "--bits", "4", "--out", "{in}/ro/a"),
     "out", True),
    ("quantize-empty", (*QUANT, "--scheme", "fixed", "--bits", "4", "--out", ""), "out",
     False),
    ("quantize-checkpoint-dir", (*QUANT, "--scheme", "fixed", "--bits", "4", "--out", "{out}",
                                 "--float-checkpoint", "{in}/dir"), "float-checkpoint", False),
    ("quantize-checkpoint-under-file", (*QUANT, "--scheme", "fixed", "--bits", "4", "--out",
                                        "{out}", "--float-checkpoint", "{in}/file.txt/f.pt"),
     "float-checkpoint", False),
    ("quantize-checkpoint-readonly", (*QUANT, "--scheme", "fixed", "--bits", "4", "--out",
                                      "{out}", "--float-checkpoint", "{in}/ro/f.pt"),
     "float-checkpoint", True),
    ("pim-train-out-file", (*PIM_TRAIN, "--out", "{in}/file.txt"), "out", False),
    ("pim-train-out-other-files", (*PIM_TRAIN, "--out", "{in}/full"), "out", False),
    ("pim-train-out-readonly", (*PIM_TRAIN, "--out", "{in}/ro/a"), "out", True),
    ("pim-train-checkpoint-dir", (*PIM_TRAIN, "--float-checkpoint", "{in}/dir"),
     "float-checkpoint", False),
    ("verify-build-dir-file", (*VERIFY, "--build-dir", "{in}/file.txt"), "build-dir", False),
    ("verify-build-dir-readonly", (*VERIFY, "--build-dir", "{in}/ro/b"), "build-dir", True),
]
for name, argv, expect, ro in OUTPUTS:
    case("output", name, argv, expect, files=D, readonly=ro)

# ---------------------------------------------------------------------------------------
# Options that would have no effect
# ---------------------------------------------------------------------------------------

IGNORED: list[tuple[str, tuple[str, ...], str]] = [
    ("simulate-gemm-model", (*SIM, "--gemm"), "--gemm"),
    ("simulate-gemm-artifact", ("simulate", "--artifact", ART, "--accel", "tiny", "--gemm"),
     "--gemm"),
    ("simulate-input-shape-shipped", (*SIM, "--input-shape", "1,3,32,32"), "--input-shape"),
    ("simulate-input-shape-topology", ("simulate", "--topology", "{in}/t.csv", "--accel",
                                       "tiny", "--input-shape", "1,3,8,8"), "--input-shape"),
    ("simulate-input-shape-artifact", ("simulate", "--artifact", ART, "--accel", "tiny",
                                       "--input-shape", "1,1,8,8"), "--input-shape"),
    ("simulate-batch-factory", ("simulate", "--model", "m:f", "--input-shape", "1,3,8,8",
                                "--accel", "tiny", "--batch", "2"), "--batch"),
    ("simulate-sp2-fraction-artifact", ("simulate", "--artifact", ART, "--accel", "tiny",
                                        "--sp2-fraction", "0.5"), "--sp2-fraction"),
    ("simulate-seed-no-functional", (*SIM, "--seed", "3"), "--seed"),
    ("simulate-max-cycles-analytical", (*SIM, "--mode", "analytical", "--max-cycles", "10"),
     "--max-cycles"),
    ("simulate-max-cycles-plain", (*SIM, "--mode", "plain", "--max-cycles", "10"),
     "--max-cycles"),
    ("formats-unsigned-pot", ("formats", "--scheme", "pot", "--bits", "4", "--unsigned"),
     "unsigned"),
    ("formats-unsigned-sp2", ("formats", "--scheme", "sp2", "--bits", "4", "--unsigned"),
     "unsigned"),
    ("formats-unsigned-fixed", ("formats", "--scheme", "fixed", "--bits", "4", "--unsigned"),
     "unsigned"),
    ("formats-fl-pot", ("formats", "--scheme", "pot", "--bits", "4", "--fl", "2"), "fl"),
    ("quantize-image-size-digits", (*QUANT, "--scheme", "fixed", "--bits", "4",
                                    "--image-size", "16", "--out", "{out}/a"), "image-size"),
    ("quantize-image-size-cifar", (*QUANT, "--scheme", "fixed", "--bits", "4", "--data",
                                   "cifar10", "--data-dir", "{in}", "--image-size", "16",
                                   "--out", "{out}/a"), "image-size"),
    ("quantize-sp2-fraction-fixed", (*QUANT, "--scheme", "fixed", "--bits", "4",
                                     "--sp2-fraction", "0.3", "--out", "{out}/a"),
     "--sp2-fraction"),
    ("quantize-msq-rule-sp2", (*QUANT, "--scheme", "sp2", "--bits", "4", "--msq-rule",
                               "variance", "--out", "{out}/a"), "--msq-rule"),
    ("quantize-first-last-f8", (*QUANT, "--scheme", "f8", "--bits", "8", "--first-last-bits",
                                "8", "--out", "{out}/a"), "--first-last-bits"),
    ("quantize-data-dir-digits", (*QUANT, "--scheme", "fixed", "--bits", "4", "--data-dir",
                                  "{in}", "--out", "{out}/a"), "data-dir"),
    ("pim-eval-data-dir-digits", (*PIM_EVAL, "--data-dir", "{in}"), "data-dir"),
    ("pim-eval-seed-no-noise", (*PIM_EVAL, "--seed", "3"), "--seed"),
    ("pim-train-data-dir-digits", (*PIM_TRAIN, "--data-dir", "{in}"), "data-dir"),
    ("verify-layer-no-artifact", (*VERIFY, "--no-artifact", "--layer", "features.3"),
     "--layer"),
    ("verify-artifact-no-artifact", (*VERIFY, "--no-artifact", "--artifact", ART, "--layer",
                                     "features.3"), "--artifact"),
    ("search-packing-4-dsp48e1", ("search", "msq", "--part", "XC7Z020", "--bits", "4",
                                  "--packing", "1", "--packing", "4"), "packing"),
    ("search-packing-2-8bit", ("search", "msq", "--part", "XCZU9EG", "--bits", "8",
                               "--packing", "4"), "packing"),
]
for name, argv, expect in IGNORED:
    case("ignored", name, argv, expect, files={"t.csv": GEMM_HEAD + b"a, 4, 4, 4,\n"})


def counts() -> Counter:
    return Counter(c.category for c in CASES)


if __name__ == "__main__":
    from tests.fuzz.test_generated import EXAMPLES

    table = counts()
    for cat, what in CATEGORIES.items():
        print(f"{cat:12} {table[cat]:4}  {what}")
    print(f"{'table':12} {sum(table.values()):4}  hand-written (tests/fuzz/test_table.py)")
    for kind, n in EXAMPLES.items():
        print(f"{kind:12} {n:4}  hypothesis examples (tests/fuzz/test_generated.py)")
    print(f"{'all':12} {sum(table.values()) + sum(EXAMPLES.values()):4}  malformed inputs")
