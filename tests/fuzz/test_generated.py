"""Hypothesis-generated malformed inputs: preset fields, PIM macro fields, topology rows,
artifact manifests and tensor files, and numeric options of every subcommand.

Each strategy draws only inputs that are malformed by construction (a value outside the
field's type or range, a broken row, a manifest entry of another JSON type), so every draw
must be refused cleanly (tests/fuzz/harness.py) with a line that names the field.
"""

from __future__ import annotations

import json
import math
import string
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.cases import MACRO, PIM_EVAL, PIM_SIM, QUANT, SIM, VERIFY
from tests.fuzz.harness import SHIPPED_ARTIFACT, edited_artifact, leaves, refusal, set_at

#: Examples per test (``python -m tests.fuzz.cases`` reports them with the table).
EXAMPLES = {"preset": 60, "macro": 40, "topology": 40, "manifest": 70, "tensor-bytes": 20,
            "option": 70}


def examples(kind: str):
    return settings(max_examples=EXAMPLES[kind], deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _yaml_text(value: object) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20)
    return text.removesuffix("\n").removesuffix("\n...").strip()


WORD = st.text(string.ascii_letters, min_size=1, max_size=8)
JUNK = st.one_of(WORD, st.lists(st.integers(), max_size=2), st.dictionaries(WORD, WORD,
                                                                             max_size=2))


def not_int(lo: int, hi: int, nullable: bool = False) -> st.SearchStrategy:
    """Anything but an integer in lo..hi (None too unless ``nullable``)."""
    out = [st.integers(max_value=lo - 1), st.integers(min_value=hi + 1), st.booleans(),
           st.floats(allow_nan=True), JUNK]
    return st.one_of(*out, *([] if nullable else [st.none()]))


def not_real(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False
             ) -> st.SearchStrategy:
    """Anything but a finite number in the interval."""
    def outside(f: float) -> bool:
        return not (math.isfinite(f) and (lo < f if lo_open else lo <= f)
                    and (f < hi if hi_open else f <= hi))
    return st.one_of(st.floats().filter(outside), st.booleans(), st.none(), JUNK)


def not_bool() -> st.SearchStrategy:
    return st.one_of(st.integers(), st.floats(), WORD, st.none(), JUNK)


def not_choice(choices: tuple) -> st.SearchStrategy:
    return st.one_of(WORD.filter(lambda w: w not in choices), st.booleans(), st.none(),
                     st.floats(), st.integers().filter(lambda i: i not in choices))


PRESET_FIELDS = {
    "engine.dsp_rows": not_int(0, 4096), "engine.lut_rows": not_int(0, 4096),
    "engine.cols": not_int(1, 4096), "engine.weight_bits": not_int(2, 16),
    "engine.act_bits": not_int(1, 16), "engine.acc_bits": not_int(8, 64),
    "engine.act_signed": not_bool(), "engine.dsp_packing": not_choice((1, 2, 4)),
    "engine.lut_scheme": not_choice(("sp2", "pot")), "memory.k_tile": not_int(1, 1 << 20),
    "memory.dram_bytes_per_cycle": not_int(1, 1 << 20, nullable=True),
    "memory.dram_latency": not_int(0, 1 << 20),
    "memory.weight_bank_kib": not_real(0, math.inf, lo_open=True),
    "memory.act_bank_kib": not_real(0, math.inf, lo_open=True),
    "vector.lanes": not_int(1, 1 << 16), "clock_mhz": not_real(0, 2000, lo_open=True),
    "part.lut": not_int(1, 1 << 30), "part.bram36": not_int(1, 1 << 30),
}


@examples("preset")
@given(st.sampled_from(sorted(PRESET_FIELDS)).flatmap(
    lambda f: st.tuples(st.just(f), PRESET_FIELDS[f])),
       st.sampled_from(("simulate", "rtl", "synth", "verify")))
def test_preset_field(field_value: tuple[str, object], command: str) -> None:
    path, value = field_value
    base = {"simulate": SIM, "rtl": ("rtl", "--accel", "tiny", "--out", "{out}"),
            "synth": ("synth", "--accel", "tiny"), "verify": VERIFY}[command]
    with tempfile.TemporaryDirectory() as d:
        argv = [a.replace("{out}", f"{d}/out") for a in base]
        line = refusal([*argv, "--set", f"{path}={_yaml_text(value)}"], Path(d))
    assert path in line


MACRO_FIELDS = {
    "rows": not_int(1, 1 << 16), "cols": not_int(1, 1 << 16), "adcs": not_int(1, 128),
    "adc_latency": not_int(1, 1 << 16), "macros": not_int(1, 1 << 20),
    "clock_mhz": not_real(0, math.inf, lo_open=True),
    "energy_adc_pj": not_real(0, math.inf), "area_mm2": not_real(0, math.inf, lo_open=True),
    "approximation": not_bool(), "arith.scheme": not_choice(("native", "differential",
                                                             "bit_serial")),
    "arith.group_size": not_int(1, 512), "arith.cell_bits": not_int(1, 8),
    "arith.adc_bits": not_int(1, 16), "arith.range_fraction": not_real(0, 1, lo_open=True),
    "arith.nonlinearity": not_real(0, 1, hi_open=True),
    "arith.noise_lsb": not_real(0, math.inf),
    "arith.adc_step": not_real(0, math.inf), "arith.pot_step": not_bool(),
}


@examples("macro")
@given(st.sampled_from(sorted(MACRO_FIELDS)).flatmap(
    lambda f: st.tuples(st.just(f), MACRO_FIELDS[f])),
       st.sampled_from((PIM_SIM, PIM_EVAL[:5])))
def test_macro_field(field_value: tuple[str, object], base: tuple[str, ...]) -> None:
    path, value = field_value
    data = json.loads(json.dumps(MACRO))
    set_at(data, tuple(path.split(".")), value)
    with tempfile.TemporaryDirectory() as d:
        Path(d, "m.yaml").write_text(yaml.safe_dump(data))
        argv = [a.replace("{art}", str(SHIPPED_ARTIFACT)) for a in base]
        line = refusal([*argv[:4], "--macro", f"{d}/m.yaml"], Path(d))
    assert path.split(".")[-1] in line


GEMM_ROW = st.tuples(st.integers(1, 64), st.integers(1, 64), st.integers(1, 64)).map(
    lambda t: ", ".join(map(str, t)))
BAD_CELL = st.one_of(WORD, st.integers(max_value=0).map(str),
                     st.integers(min_value=1 << 31).map(str),
                     st.floats(0.01, 1e6).filter(lambda f: f != int(f)).map(repr))


@st.composite
def bad_topology(draw: st.DrawFn) -> tuple[bytes, str]:
    """A GEMM-format topology with one malformed row, or bytes that are not UTF-8."""
    if draw(st.booleans()):
        blob = draw(st.binary(min_size=1, max_size=64).filter(_not_utf8))
        return b"Layer Name, M, N, K,\n" + blob, "UTF-8"
    rows = draw(st.lists(GEMM_ROW, min_size=0, max_size=4))
    cells = draw(GEMM_ROW).split(", ")
    if draw(st.booleans()):
        cells[draw(st.integers(0, 2))] = draw(BAD_CELL)
    else:  # a wrong number of cells
        cells = (cells * 2)[:draw(st.sampled_from((0, 1, 2, 4, 5)))]
    at = draw(st.integers(0, len(rows)))
    lines = [f"l{i}, {r}," for i, r in enumerate(rows)]
    lines.insert(at, ", ".join([f"bad{at}", *cells]) + ",")
    text = "Layer Name, M, N, K,\n" + "\n".join(lines) + "\n"
    return text.encode(), f"line {at + 2}"


def _not_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@examples("topology")
@given(bad_topology(), st.booleans())
def test_topology(topology: tuple[bytes, str], search: bool) -> None:
    blob, expect = topology
    with tempfile.TemporaryDirectory() as d:
        Path(d, "t.csv").write_bytes(blob)
        argv = ["search", "msq", "--part", "XC7Z020", "--bits", "4"] if search \
            else ["simulate", "--accel", "tiny", "--gemm"]
        line = refusal([*argv, "--topology", f"{d}/t.csv"], Path(d))
    assert expect in line


MANIFEST = json.loads((SHIPPED_ARTIFACT / "manifest.json").read_text())
#: Every place of the manifest an edit may hit: not the free-form meta, not the hash.
PLACES = [(p, v) for p, v in leaves(MANIFEST) if p[0] not in ("meta", "content_hash")]


def other_type(value: object) -> st.SearchStrategy:
    """JSON values of another type than ``value`` (and non-positive or non-finite numbers
    for a float, which is always a scale)."""
    base = {"str": WORD, "bool": st.booleans(), "int": st.integers(),
            "float": st.floats(allow_nan=False, allow_infinity=False).filter(
                lambda f: f != int(f)), "none": st.none(),
            "list": st.lists(st.integers(1, 9), max_size=3),
            "dict": st.dictionaries(WORD, st.integers(), max_size=2)}
    kind = "bool" if isinstance(value, bool) else "none" if value is None else \
        type(value).__name__
    if kind == "float":  # a scale: no number that is one too
        return st.one_of(*(s for k, s in base.items() if k not in ("float", "int")),
                         st.floats(max_value=0.0), st.sampled_from([math.nan, math.inf]))
    return st.one_of(*(s for k, s in base.items() if k != kind))


@st.composite
def bad_manifest(draw: st.DrawFn) -> tuple[tuple, str, object]:
    """(path, action, value): replace a value by one of another type, delete a key, or add
    an unknown key to a mapping."""
    path, value = draw(st.sampled_from(PLACES))
    action = draw(st.sampled_from(("replace", "delete", "add")))
    if action == "delete" and isinstance(path[-1], str):
        return path, action, None
    if action == "add" and isinstance(value, dict):
        return path, action, draw(WORD.filter(lambda w: w not in value))
    return path, "replace", draw(other_type(value))


@examples("manifest")
@given(bad_manifest(), st.sampled_from(("simulate", "pim")))
def test_manifest(edit: tuple[tuple, str, object], command: str) -> None:
    path, action, value = edit

    def apply(doc: dict) -> None:
        node = doc
        for k in path[:-1]:
            node = node[k]
        if action == "delete":
            del node[path[-1]]
        elif action == "add":
            node[path[-1]][value] = 1
        else:
            node[path[-1]] = value

    with tempfile.TemporaryDirectory() as d:
        art = edited_artifact(Path(d, "a"), manifest=apply)
        argv = ["simulate", "--accel", "tiny"] if command == "simulate" \
            else ["pim", "simulate", "--macro", "sram512x128_adc7"]
        line = refusal([*argv, "--artifact", str(art)], Path(d))
    named = [k.rstrip("s") for k in path if isinstance(k, str)]
    assert any(k in line for k in named) or (action == "add" and str(value) in line), line


@examples("tensor-bytes")
@given(st.data())
def test_tensor_bytes(data: st.DataObject) -> None:
    blob = (SHIPPED_ARTIFACT / "tensors.safetensors").read_bytes()
    if data.draw(st.booleans(), label="truncate"):
        blob = blob[:data.draw(st.integers(0, len(blob) - 1), label="length")]
    else:
        at = data.draw(st.integers(0, len(blob) - 1), label="at")
        blob = blob[:at] + bytes([blob[at] ^ data.draw(st.integers(1, 255))]) + blob[at + 1:]
    with tempfile.TemporaryDirectory() as d:
        art = Path(d, "a")
        art.mkdir()
        (art / "manifest.json").write_bytes((SHIPPED_ARTIFACT / "manifest.json").read_bytes())
        (art / "tensors.safetensors").write_bytes(blob)
        line = refusal(["simulate", "--accel", "tiny", "--artifact", str(art)], Path(d))
    assert any(w in line for w in ("safetensors", "content_hash", "tensor", "layer '")), line


FUNC = (*SIM, "--functional")
ART_SIM = ("simulate", "--artifact", str(SHIPPED_ARTIFACT), "--accel", "tiny")
QUANT_FIXED = (*QUANT, "--scheme", "fixed", "--bits", "4", "--out", "{out}")
EVAL = tuple(a.replace("{art}", str(SHIPPED_ARTIFACT)) for a in PIM_EVAL)
PIM = tuple(a.replace("{art}", str(SHIPPED_ARTIFACT)) for a in PIM_SIM)
#: (command line, option, bad values, a word the error names).
OPTIONS = [
    (FUNC, "--seed", not_int(0, (1 << 32) - 1), "seed"),
    (SIM, "--max-cycles", not_int(1, 1 << 61), "max-cycles"),
    (ART_SIM, "--batch", not_int(1, 1 << 20), "batch"),
    (SIM, "--sp2-fraction", not_real(0, 1), "sp2"),
    (VERIFY[:3], "--cases", not_int(0, 100_000), "cases"),
    (VERIFY, "--seed", not_int(0, (1 << 32) - 1), "seed"),
    ((*PIM, "sram512x128_adc7"), "--batch", not_int(1, 1 << 20), "batch"),
    (EVAL[:6], "--limit", not_int(1, 359), "limit"),
    (EVAL, "--adc-bits", not_int(1, 16), "adc"),
    (EVAL, "--group-size", not_int(1, 512), "group"),
    (EVAL, "--range-fraction", not_real(0, 1, lo_open=True), "range"),
    (EVAL, "--noise-lsb", not_real(0, math.inf), "noise"),
    (QUANT_FIXED, "--width", not_int(1, 64), "width"),
    (QUANT_FIXED, "--epochs", not_int(0, 10_000), "epochs"),
    (QUANT_FIXED, "--batch-size", not_int(1, 65_536), "batch"),
    (QUANT_FIXED, "--pool-extra-bits", not_int(0, 8), "pool"),
    (QUANT_FIXED, "--lr", not_real(0, math.inf, lo_open=True), "lr"),
    (("search", "msq", "--part", "XC7Z020"), "--bits", not_int(3, 8), "bits"),
    (("search", "msq", "--part", "XC7Z020", "--bits", "4"), "--lut-cap", not_real(0, 1),
     "lut"),
    (("formats", "--scheme", "sp2"), "--bits", not_int(3, 8), "bits"),
    (("formats", "--scheme", "f8", "--bits", "8"), "--fl", not_int(0, 7), "fl"),
]


def _arg(value: object) -> str:
    return repr(value) if isinstance(value, float) else json.dumps(value) \
        if not isinstance(value, str) else value


@examples("option")
@given(st.integers(0, len(OPTIONS) - 1).flatmap(
    lambda i: st.tuples(st.just(i), OPTIONS[i][2])))
def test_option(choice: tuple[int, object]) -> None:
    i, value = choice
    argv, option, _, word = OPTIONS[i]
    with tempfile.TemporaryDirectory() as d:
        args = [a.replace("{out}", f"{d}/out") for a in argv]
        line = refusal([*args, f"{option}={_arg(value)}"], Path(d))
    assert word in line, line
