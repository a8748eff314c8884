"""``fpim report``: valid plots, a self-contained HTML page, files that follow the documented
schema, the numbers of ``fpim simulate --json`` / ``fpim search msq --json``, byte-identical
renders, and one-line refusals before any work."""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

import fpim.flows.report as flow
from fpim.cli import main
from fpim.flows.pim_deploy import evaluate, macro_with
from fpim.flows.synth import Synthesis
from fpim.flows.verify import Verification
from hw.synth import SynthResult
from hw.tb.engine import Outcome
from sim.report import figures, schema
from sim.report.metrics import pareto_flags
from sim.search import Candidate
from tests.cliutil import run

ROOT = Path(__file__).resolve().parent.parent
ARTIFACT = str(ROOT / "configs/artifacts/cnn_msq4_digits")
RUN_PLOTS = ("cycles.png", "roofline.png", "utilisation.png", "resources.png")
MSQ_ARGS = ("--model", "resnet18", "--accel", "xc7z020", "--search", "msq", "--bits", "4",
            "--packing", "2")


def _cli(*argv: str) -> tuple[int, str, str]:
    """``main(argv)`` outside a test function (module fixtures have no capsys)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "cnn"
    code, stdout, err = _cli("report", "--artifact", ARTIFACT, "--accel", "xc7z020",
                             "--pim", "sram512x128_adc7", "--out", str(out))
    assert code == 0, err
    assert stdout.startswith(f"report: {out / 'index.html'}")
    return out


@pytest.fixture(scope="module")
def msq_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("msq") / "msq"
    code, _, err = _cli("report", *MSQ_ARGS, "--out", str(out))
    assert code == 0, err
    return out


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


def _typed(cols: tuple[schema.Column, ...], row: dict[str, str]) -> dict[str, object]:
    """A CSV row converted by the schema (fails on a cell of the wrong type)."""
    out: dict[str, object] = {}
    for c in cols:
        v = row[c.name]
        out[c.name] = None if v == "" and c.kind is not str else c.kind(v)
    return out


# ---- the documented schema ---------------------------------------------------------------

DOC_TABLES = {
    "`layers.csv`": schema.LAYER_COLUMNS, "`pim_layers.csv`": schema.PIM_COLUMNS,
    "`summary.json` of a run": schema.RUN_SUMMARY,
    "`simulation` in a run's `summary.json`": schema.SIMULATION_KEYS,
    "`engines.csv`": schema.ENGINE_COLUMNS, "`fractions.csv`": schema.FRACTION_COLUMNS,
    "`summary.json` of a search": schema.MSQ_SUMMARY,
}


def test_docs_list_every_column_of_the_schema() -> None:
    text = (ROOT / "docs/report.md").read_text()
    for heading, cols in DOC_TABLES.items():
        part = text.split(f"### {heading}\n", 1)
        assert len(part) == 2, heading
        block = part[1].split("\n###", 1)[0]
        rows = re.findall(r"^\| `(\w+)` \| (\w+) \| (.+) \|$", block, re.M)
        assert [(n, t) for n, t, _ in rows] == [(c.name, c.kind.__name__) for c in cols], heading


# ---- a run report ------------------------------------------------------------------------

def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _check_plot(path: Path) -> None:
    data = path.read_bytes()
    assert _png_size(data) == figures.SIZE_PX, path.name
    rgba = imread(io.BytesIO(data), format="png")
    assert rgba.shape == (figures.SIZE_PX[1], figures.SIZE_PX[0], 4)
    pixels = np.ascontiguousarray((rgba * 255).round().astype(np.uint8)).view(np.uint32)[..., 0]
    # axes, text, bars: not a flat or two-colour image
    assert len(np.unique(pixels)) > 50, path.name
    # something is drawn away from the frame too: the middle of the plot is not blank
    h, w = pixels.shape
    assert len(np.unique(pixels[h // 4: 3 * h // 4, w // 4: 3 * w // 4])) > 3, path.name


def test_run_report_plots(run_dir: Path) -> None:
    for name in (*RUN_PLOTS, "pim_energy.png"):
        _check_plot(run_dir / name)
    assert not (run_dir / "verify.png").exists()


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.headings: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        self._in_heading = tag in ("h1", "h2")

    def handle_endtag(self, tag: str) -> None:
        self._in_heading = False

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self.headings.append(data)


def test_html_is_self_contained_and_embeds_every_plot(run_dir: Path) -> None:
    text = (run_dir / "index.html").read_text()
    page = _Page()
    page.feed(text)
    page.close()
    assert not {"script", "link", "iframe", "object", "embed", "base", "a"} & set(page.tags)
    srcs = [v for tag, k, v in page.attrs if k in ("src", "href", "srcset", "action")]
    assert all(v.startswith("data:image/png;base64,") for v in srcs)
    bare = re.sub(r'src="data:image/png;base64,[A-Za-z0-9+/=]*"', "", text)
    assert not re.search(r"(https?:|//|url\(|@import)", bare)
    embedded = sorted(base64.b64decode(v.split(",", 1)[1]) for v in srcs)
    plots = sorted(p.read_bytes() for p in run_dir.glob("*.png"))
    assert embedded == plots and len(plots) == 5
    # the markdown has the same headings and links every plot by relative path
    md = (run_dir / "index.md").read_text()
    assert re.findall(r"^#+ (.+)$", md, re.M) == page.headings
    assert sorted(re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)) == sorted(
        p.name for p in run_dir.glob("*.png"))


def test_run_files_follow_the_schema(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(summary) == [c.name for c in schema.RUN_SUMMARY]
    assert list(summary["simulation"]) == [c.name for c in schema.SIMULATION_KEYS]
    assert summary["schema"] == "report-run/1" and summary["synth"] is None
    assert summary["files"] == sorted(p.name for p in run_dir.iterdir()
                                      if p.name != "summary.json")
    for name, cols in (("layers.csv", schema.LAYER_COLUMNS),
                       ("pim_layers.csv", schema.PIM_COLUMNS)):
        header, rows = _rows(run_dir / name)
        assert header == [c.name for c in cols]
        assert rows and all(_typed(cols, r) for r in rows)


def test_run_report_numbers_are_those_of_simulate(run_dir: Path, capsys) -> None:
    code, out, _ = run(capsys, "simulate", "--artifact", ARTIFACT, "--accel", "xc7z020",
                       "--json")
    want = json.loads(out)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert code == 0 and summary["simulation"] == want
    _, rows = _rows(run_dir / "layers.csv")
    first = schema.LAYER_COLUMNS[:17]  # the LayerResult fields (hidden_cycles: R16)
    # floats exact, not close; simulate's layers add mac_util and shape_cap (also derived
    # columns), bound and of_roofline
    derived = ("mac_util", "bound", "of_roofline", "shape_cap")
    assert [_typed(first, r) for r in rows] == [
        {k: v for k, v in la.items() if k not in derived} for la in want["layers"]]
    for key in ("mac_util", "shape_cap"):
        assert [float(r[key]) for r in rows] == [la[key] for la in want["layers"]]
    code, out, _ = run(capsys, "pim", "simulate", "--artifact", ARTIFACT, "--macro",
                       "sram512x128_adc7", "--json")
    assert code == 0 and summary["pim"] == json.loads(out)
    # derived columns: intensity from the bytes read, throughput at the clock
    for r in rows:
        t = _typed(schema.LAYER_COLUMNS, r)
        if t["unit"] == "engine":
            assert t["ops_per_byte"] == 2 * t["macs"] / t["dram_read_bytes"]
            assert t["dram_read_bytes"] < t["dram_bytes"]
            assert t["gops"] == 2 * t["macs"] / (t["cycles"] / 100e6) / 1e9
    assert summary["ceilings"] == {"compute_gops": 2 * (15 + 49) * 12 * 100e6 / 1e9,
                                   "dram_read_gbytes_per_s": 16 * 100e6 / 1e9}


def test_two_renders_are_byte_identical(run_dir: Path) -> None:
    first = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    code, _, err = _cli("report", "--artifact", ARTIFACT, "--accel", "xc7z020",
                        "--pim", "sram512x128_adc7", "--out", str(run_dir))
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == first


def test_reference_reports_are_current(tmp_path: Path, monkeypatch) -> None:
    """The checked-in reference/resnet50 report is what `make report` writes (CSV, JSON
    and markdown byte for byte; plots of the same size)."""
    ref = ROOT / "reports/reference/resnet50_xc7z020"
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli("report", "--model", "resnet50", "--accel", "xc7z020", "--out",
                        "reports/reference/resnet50_xc7z020")
    assert code == 0, err
    new = tmp_path / "reports/reference/resnet50_xc7z020"
    assert sorted(p.name for p in new.iterdir()) == sorted(p.name for p in ref.iterdir())
    for name in ("layers.csv", "summary.json", "index.md"):
        assert (new / name).read_bytes() == (ref / name).read_bytes(), name
    for name in RUN_PLOTS:
        _check_plot(ref / name)


# ---- --synth and --verify (the tools replaced by records of their shape) -----------------

def test_synth_and_verify_records_reach_the_report(tmp_path: Path, monkeypatch,
                                                   capsys) -> None:
    measured = SynthResult("fpim_tiny", "xc7", {"LUT6": 2000},
                           {"lut": 2525, "ff": 378, "dsp": 16, "bram36": 0}, seconds=18.0)
    model = {"lut": 2522, "ff": 378, "dsp": 16, "bram36": 0}
    monkeypatch.setattr(flow, "synthesize_engine", lambda accel, family, yosys, progress: Synthesis(
        "fpim_tiny", "xc7", "datapath", measured, model, []))
    outcomes = [Outcome("c0", "random: M=3 N=5 K=7", 40, 40, True, None, True, True),
                Outcome("c1", "random: M=9 N=2 K=30", 90, 91, True, None, True, True)]
    monkeypatch.setattr(flow, "verify", lambda accel, n, seed, progress: Verification(
        "fpim_tiny", outcomes, None, tmp_path / "log", 1.0, 2.0))
    code, _, err = run(capsys, "report", "--model", "resnet18", "--accel", "tiny", "--synth",
                       "--verify", "--verify-cases", "2", "--out", str(tmp_path / "r"))
    assert code == 0, err
    s = json.loads((tmp_path / "r/summary.json").read_text())
    assert s["synth"]["measured"]["lut"] == 2525 and "seconds" not in s["synth"]["measured"]
    assert [(c["cycles_sim"], c["cycles_rtl"], c["passed"]) for c in s["verify"]["cases"]] \
        == [(40, 40, True), (90, 91, False)]
    _check_plot(tmp_path / "r/verify.png")
    _check_plot(tmp_path / "r/resources.png")
    md = (tmp_path / "r/index.md").read_text()
    assert "| LUT | 53,200 |" in md and "| 2,522 | 2,525 |" in md
    assert "1 passed, 1 failed on fpim_tiny" in md and "cycles equal in 1 of 2 cases" in md


# ---- a search report ---------------------------------------------------------------------

def test_msq_report_numbers_are_those_of_search(msq_dir: Path, capsys) -> None:
    code, out, _ = run(capsys, "search", "msq", "--part", "XC7Z020", "--bits", "4",
                       "--model", "resnet18", "--packing", "2", "--json")
    summary = json.loads((msq_dir / "summary.json").read_text())
    assert code == 0 and summary["search"] == json.loads(out)
    assert list(summary) == [c.name for c in schema.MSQ_SUMMARY]
    header, engines = _rows(msq_dir / "engines.csv")
    assert header == [c.name for c in schema.ENGINE_COLUMNS]
    e = [_typed(schema.ENGINE_COLUMNS, r) for r in engines]
    assert len(e) == summary["search"]["candidates"]
    best = min(e, key=lambda r: r["cycles"])
    assert {k: best[k] for k in summary["search"]["best"]} == summary["search"]["best"]
    header, fracs = _rows(msq_dir / "fractions.csv")
    assert header == [c.name for c in schema.FRACTION_COLUMNS]
    f = [_typed(schema.FRACTION_COLUMNS, r) for r in fracs]
    mixed = [r for r in e if r["kind"] == "mixed"]
    # each mixed engine's best fraction is the fastest point of its sweep
    for r in mixed:
        sweep = [p for p in f if p["engine"] == r["engine"]]
        assert len(sweep) == 21 and min(p["cycles"] for p in sweep) == r["cycles"]

    def dominates(a: dict, b: dict) -> bool:
        return (a["fps"] >= b["fps"] and a["lut"] <= b["lut"] and a["dsp"] <= b["dsp"]
                and (a["fps"], -a["lut"], -a["dsp"]) != (b["fps"], -b["lut"], -b["dsp"]))

    for r in e:
        assert r["pareto"] == int(not any(dominates(o, r) for o in e))
    assert 0 < sum(r["pareto"] for r in e) < len(e)
    for name in ("fraction.png", "pareto.png"):
        _check_plot(msq_dir / name)


def test_pareto_front_by_hand() -> None:
    def c(fps: float, lut: int, dsp: int) -> Candidate:
        return Candidate(1, 1, 1, 1, 0.5, 100, 90, fps, lut, dsp, 1, 64)

    cands = [c(10, 100, 10),   # front: fastest
             c(10, 100, 12),   # as fast, same LUTs, more DSPs: dominated
             c(10, 120, 10),   # as fast, more LUTs: dominated
             c(8, 50, 10),     # slower but fewer LUTs: front
             c(8, 50, 10),     # an equal twin: neither dominates the other
             c(7, 60, 10),     # slower and more LUTs than (8, 50): dominated
             c(5, 200, 2)]     # fewest DSPs: front
    assert pareto_flags(cands) == [True, False, False, True, True, False, True]


# ---- refusals ----------------------------------------------------------------------------

def _no_work(*args, **kwargs):
    raise AssertionError("work started before the inputs were checked")


@pytest.mark.parametrize("argv, words", [
    (("--model", "resnet18", "--accel", "tiny", "--bogus"), "unrecognized arguments: --bogus"),
    (("--model", "resnet18", "--accel", "tiny", "--bits", "4"), "--bits must come with"),
    (("--model", "resnet18", "--accel", "tiny", "--search", "msq", "--bits", "4", "--synth"),
     "--synth must be left out with --search"),
    (("--model", "resnet18", "--accel", "tiny", "--search", "msq"), "bits must be given"),
    (("--artifact", ARTIFACT, "--accel", "tiny", "--search", "msq", "--bits", "4"),
     "--model or --topology, not --artifact"),
    (("--model", "resnet18", "--accel", "tiny", "--family", "xc7"),
     "--family must come with --synth"),
    (("--model", "resnet18", "--accel", "tiny", "--pim", "sram512x128_adc7"),
     "macro needs an artifact"),
    (("--model", "resnet18", "--accel", "tiny", "--verify", "--verify-cases", "0"),
     "verify_cases must be an integer in 1..100000, not 0"),
    (("--artifact", ARTIFACT, "--accel", "xczu9eg"),
     "weight_bits must match engine.weight_bits 8, not 4"),
    (("--model", "resnet18", "--accel", "tiny", "--search", "msq", "--bits", "9"),
     "bits must be an integer in 3..8"),
    (("--artifact", ARTIFACT, "--accel", "xc7z020", "--pim-accuracy"),
     "--pim-accuracy must come with --pim, not alone"),
    (("--artifact", ARTIFACT, "--accel", "xc7z020", "--pim", "sram512x128_adc7",
      "--pim-limit", "5"), "--pim-limit must come with --pim-accuracy, not alone"),
    (("--artifact", ARTIFACT, "--accel", "xc7z020", "--pim", "sram512x128_adc7",
      "--pim-accuracy", "--pim-limit", "0"), "pim_limit must be an integer in 1..359, not 0"),
    (("--model", "resnet18", "--accel", "tiny", "--pim", "sram512x128_adc7", "--pim-accuracy"),
     "macro needs an artifact"),
])
def test_bad_inputs_one_line_before_any_work(argv, words, tmp_path, monkeypatch,
                                             capsys) -> None:
    monkeypatch.setattr(flow, "simulate", _no_work)
    monkeypatch.setattr(flow, "explore_msq", _no_work)
    monkeypatch.setattr(flow, "accuracy_grid", _no_work)
    code, out, err = run(capsys, "report", *argv, "--out", str(tmp_path / "r"))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "r").exists()


def test_bad_output_directories(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(flow, "simulate", _no_work)
    afile = tmp_path / "file"
    afile.write_text("x")
    cases = [(afile, "out must be a directory, not"),
             (afile / "below", "out must be below a directory"),
             (tmp_path, "out must be a new directory or an earlier report")]
    if Path("/proc/1").is_dir():  # not writable, even for root
        cases.append((Path("/proc/1/report"), "out must be in a writable directory"))
    for out, words in cases:
        code, stdout, err = run(capsys, "report", "--model", "resnet18", "--accel", "tiny",
                                "--out", str(out))
        assert (code, stdout) == (2, "") and err.count("\n") == 1 and words in err, err
    assert afile.read_text() == "x"


def test_out_defaults_to_reports_run(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "report", "--topology", str(ROOT / "configs/workloads/"
                         "resnet18.csv"), "--accel", "tiny", "--mode", "analytical")
    assert code == 0, err
    assert (tmp_path / "reports/resnet18_tiny/index.html").is_file()
    s = json.loads((tmp_path / "reports/resnet18_tiny/summary.json").read_text())
    assert s["command"].endswith("--accel tiny --mode analytical")


# ---- --pim-accuracy: accuracy against ADC noise and bits ---------------------------------

def test_pim_accuracy_against_noise_and_adc_bits(tmp_path: Path) -> None:
    out = tmp_path / "pa"
    argv = ("report", "--artifact", ARTIFACT, "--accel", "xc7z020", "--pim",
            "sram512x128_adc7", "--pim-accuracy", "--pim-limit", "24", "--out", str(out))
    code, stdout, err = _cli(*argv)
    assert code == 0, err
    assert "pim_accuracy.png" in stdout
    _check_plot(out / "pim_accuracy.png")
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == [c.name for c in schema.RUN_SUMMARY]
    p = summary["pim_accuracy"]
    assert (p["macro"], p["data"], p["images"], p["seed"]) == ("sram512x128_adc7", "digits",
                                                               24, 0)
    grid = [(q["adc_bits"], q["noise_lsb"]) for q in p["points"]]
    assert grid == [(b, n) for b in (6, 7, 8) for n in (0.0, 0.25, 0.5)]
    # each point is what fpim pim eval gives for the same macro, noise and images
    for q in (p["points"][0], p["points"][-1]):
        macro = macro_with("sram512x128_adc7", {"adc_bits": q["adc_bits"],
                                                "noise_lsb": q["noise_lsb"]})
        e = evaluate(ARTIFACT, macro, limit=24)
        assert (q["pim_accuracy"], p["digital_accuracy"]) == (e["pim_accuracy"],
                                                              e["digital_accuracy"])
    md = (out / "index.md").read_text()
    assert "## Accuracy on PIM macros" in md and "![accuracy against ADC noise and bits]" in md
    first = {f.name: f.read_bytes() for f in out.iterdir()}
    code, _, err = _cli(*argv)
    assert code == 0, err
    assert {f.name: f.read_bytes() for f in out.iterdir()} == first
