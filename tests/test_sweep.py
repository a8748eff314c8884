"""fpim sweep: the spec is checked before any task, results on a real LocalCluster (2 worker
processes) equal a serial run, a killed worker or an interrupted client loses nothing, and
the cache computes each result once."""

from __future__ import annotations

import functools
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import cloudpickle
import pytest
import yaml

from fpim.flows.sweep import plan_sweep, run_sweep
from fpim.flows.sweep_results import pareto_front, sweep_plots
from fpim.flows.sweep_spec import load_spec, spec_from_dict
from fpim.flows.sweep_tasks import simulate_point
from quant.artifact import load_artifact
from quant.errors import ConfigError
from tests.cliutil import run
from tests.test_report import _check_plot

ROOT = Path(__file__).resolve().parent.parent
# the workers unpickle this module's stage functions by value (it is not importable there)
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def small_spec(tag: int, **extra: object):
    """16 simulate points on two parts (one of which cannot take 25 columns: infeasible);
    ``tag`` (the DRAM latency) keeps each test's tasks apart on the shared cluster."""
    data = {"name": f"t{tag}", "stages": ["simulate"],
            "axes": {"accel": ["xc7z020", "xczu9eg"], "model": ["resnet18", "mobilenet_v2"],
                     "engine.cols": [12, 25], "fraction": [0.25, 0.75],
                     "memory.dram_latency": tag},
            **extra}
    return spec_from_dict(data, ROOT)


def _task_id(accel, wl) -> str:
    return hashlib.sha256(repr((accel, wl)).encode()).hexdigest()[:16]


def counting_simulate(marker_dir: str, pause: float, accel, wl, art, mode, *upstream):
    """The real simulate stage, leaving one file per execution and taking ``pause`` s."""
    Path(marker_dir, f"{_task_id(accel, wl)}.{uuid.uuid4().hex}").touch()
    time.sleep(pause)
    return simulate_point(accel, wl, art, mode, *upstream)


def dying_once(marker_dir: str, accel, wl, art, mode, *upstream):
    """:func:`counting_simulate`, but the first execution kills its worker process."""
    Path(marker_dir, f"{_task_id(accel, wl)}.{uuid.uuid4().hex}").touch()
    died = Path(marker_dir, "died")
    if not died.exists():
        died.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.2)
    return simulate_point(accel, wl, art, mode, *upstream)


def failing_for_resnet18(accel, wl, art, mode, *upstream):
    if wl.name.startswith("resnet18"):
        raise ConfigError("workload resnet18 must not be simulated here, not this time")
    return simulate_point(accel, wl, art, mode, *upstream)


def flaky_once(marker_dir: str, accel, wl, art, mode, *upstream):
    """Raises a non-fpim error on its first execution per task (Dask retries it)."""
    mark = Path(marker_dir, _task_id(accel, wl))
    if not mark.exists():
        mark.touch()
        raise RuntimeError("transient failure")
    return simulate_point(accel, wl, art, mode, *upstream)


def fake_synth(marker_dir: str, accel, family, yosys):
    Path(marker_dir, uuid.uuid4().hex).touch()
    e = accel.engine
    return {"synth_lut": 10 * e.pes, "synth_ff": e.pes, "synth_dsp": e.dsp_rows * e.cols,
            "synth_carry": 0, "model_datapath_lut": 0, "yosys_seconds": 0.0}, None


def fake_float(marker_dir: str, model, width, data, float_cfg):
    Path(marker_dir, f"float.{uuid.uuid4().hex}").touch()
    return {"float_accuracy": 97.0}, b"float weights"


def fake_accuracy(marker_dir: str, model, width, data, qat_cfg, float_cfg, train_cfg,
                  float_state):
    """The shipped 4-bit MSQ artifact stands for the QAT result (it fits the tiny engine)."""
    assert float_state == b"float weights"
    Path(marker_dir, f"accuracy.{uuid.uuid4().hex}").touch()
    return ({"float_accuracy": 97.0, "fakequant_accuracy": 96.0, "quant_accuracy": 96.5,
             "agreement": 99.0, "sp2_rows": 1, "rows": 2},
            load_artifact(ROOT / "configs/artifacts/cnn_msq4_digits"))


def markers(d: Path) -> list[str]:
    return sorted(p.name.split(".")[0] for p in d.iterdir())


def settled(d: Path, quiet: float = 1.5) -> int:
    """The number of files in ``d`` once none has appeared for ``quiet`` seconds."""
    n, since = len(markers(d)), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.1)
        if len(markers(d)) != n:
            n, since = len(markers(d)), time.monotonic()
    return n


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def serial_tables(tmp_path_factory) -> dict[int, tuple[str, str]]:
    """results.csv and pareto.csv of a serial run per tag."""
    out: dict[int, tuple[str, str]] = {}
    for tag in (1, 2, 3):
        d = tmp_path_factory.mktemp(f"serial{tag}")
        run_sweep(small_spec(tag), d, workers=0)
        out[tag] = ((d / "results.csv").read_text(), (d / "pareto.csv").read_text())
    return out


def tables(d: Path) -> tuple[str, str]:
    return (d / "results.csv").read_text(), (d / "pareto.csv").read_text()


# ---------------------------------------------------------------------------------------
# the spec
# ---------------------------------------------------------------------------------------

BAD = [
    ({"engine.colz": [1, 2]}, None, "axis must be one of .*not 'engine.colz'"),
    ({"engine.cols": {"from": 8, "to": 4, "step": 1}}, None,
     "axes.engine.cols range is empty: from 8 is above to 4"),
    ({"engine.cols": []}, None, "axes.engine.cols must have at least one value"),
    ({"engine.cols": [4, "x"]}, None, "axes.engine.cols values must be an integer, not 'x'"),
    ({"accel": "xc7z0200"}, None, r"axes.accel \(a preset, or a YAML file\) must be one of"),
    ({"model": None}, None, "axes.model values must be model names, not None"),
    ({}, {"stages": ["accuracy", "simulate"]},
     r"axes.model \(a model to train for stage accuracy\) must be one of .*not 'resnet18'"),
    ({}, {"constraints": {"fits": False}}, "constraints.fits must be true or {lut_cap: F}"),
    ({}, {"constraints": {"min_accuracy": 90}},
     "constraints.min_accuracy and max_accuracy_drop need stage accuracy"),
    ({}, {"constraints": {"fits": {"lut_cap": 1.5}}},
     r"constraints.fits.lut_cap must be a number in \[0, 1\], not 1.5"),
    ({}, {"synth": {"family": "xc7"}}, "synth options are given but stage synth is not"),
    ({"engine.cols": 5000}, None, "no point of sweep t9 can be built; point 0: "),
    ({"macro.adc_bits": [5, 6]}, None, "axes.macro.adc_bits needs stage pim, which is not"),
    ({"macro": "sram"}, {"stages": ["pim"]}, "macro must be a preset name"),
    ({"macro": "sram512x128_adc7"}, {"stages": ["pim"]},
     "stage pim needs an artifact: stage accuracy or axes.artifact, not model"),
    ({"macro.adc_bit": 5, "macro": "sram512x128_adc7"}, {"stages": ["pim"]},
     "axis must be one of .*not 'macro.adc_bit'"),
]


@pytest.mark.parametrize(("axes", "top", "message"), BAD)
def test_a_bad_spec_fails_before_any_task(tmp_path, axes, top, message) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    data = {"name": "t9", "stages": ["simulate"],
            "axes": {"accel": "xc7z020", "model": "resnet18", **axes}, **(top or {})}
    fn = functools.partial(counting_simulate, str(marks), 0.0)
    with pytest.raises(ConfigError, match=message):
        run_sweep(spec_from_dict(data, ROOT), tmp_path / "out", workers=0,
                  functions={"simulate": fn})
    assert not (tmp_path / "out").exists() and markers(marks) == []


def test_the_cli_prints_one_line_for_a_bad_spec(tmp_path, capsys) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("stages: [simulate]\naxes: {accel: tiny, model: resnet18, engine.x: 1}\n")
    code, out, err = run(capsys, "sweep", str(spec), "--workers", "0", "--out",
                         str(tmp_path / "o"))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("fpim sweep: error: axis must be one of ") and "'engine.x'" in err
    assert not (tmp_path / "o").exists()


def test_ranges_and_shipped_specs() -> None:
    spec = spec_from_dict({"stages": ["simulate"], "axes": {
        "accel": "tiny", "model": "resnet18", "fraction": {"from": 0, "to": 1, "step": 0.1},
        "engine.cols": {"from": 2, "to": 8, "step": 3}}})
    axes = {a.name: a.values for a in spec.axes}
    assert axes["fraction"] == tuple(i / 10 for i in range(11))
    assert axes["engine.cols"] == (2, 5, 8) and len(spec) == 33
    quick = load_spec(ROOT / "configs/sweeps/quick.yaml")
    assert 900 <= len(quick) <= 1500 and quick.stages == ("simulate",)
    codesign = load_spec(ROOT / "configs/sweeps/codesign.yaml")
    assert codesign.stages == ("accuracy", "simulate", "synth")


def test_points_share_tasks_and_the_graph_has_the_dependencies() -> None:
    spec = spec_from_dict(yaml.safe_load((ROOT / "configs/sweeps/codesign.yaml").read_text()),
                          ROOT / "configs/sweeps")
    plan = plan_sweep(spec)
    by_stage: dict[str, list] = {}
    for t in plan.tasks.values():
        by_stage.setdefault(t.stage, []).append(t)
    n = len(plan.points)  # parts x bits x fractions
    assert n == 12 and {s: len(v) for s, v in by_stage.items()} == {
        "float": 1, "accuracy": 6, "simulate": n, "synth": 4}
    keys = list(plan.tasks)
    for t in plan.tasks.values():
        assert all(keys.index(d) < keys.index(t.key) for d in t.deps)  # dependencies first
    assert all(t.deps == (by_stage["float"][0].key,) for t in by_stage["accuracy"])
    for p in plan.points:
        assert plan.tasks[p.tasks["simulate"]].deps == (p.tasks["accuracy"],)
    # the part changes nothing accuracy depends on: both parts share each accuracy task
    acc = {(p.values["engine.weight_bits"], p.values["fraction"]): set() for p in plan.points}
    for p in plan.points:
        acc[(p.values["engine.weight_bits"], p.values["fraction"])].add(p.tasks["accuracy"])
    assert all(len(k) == 1 for k in acc.values())


def test_pareto_front_keeps_only_undominated_rows_per_workload() -> None:
    rows = [{"point": i, "model": m, "status": s, "fps": f, "lut": lut}
            for i, (m, s, f, lut) in enumerate([
                ("a", "ok", 10.0, 100), ("a", "ok", 5.0, 50), ("a", "ok", 4.0, 60),
                ("a", "infeasible", 99.0, 1), ("b", "ok", 1.0, 1000), ("a", "ok", 10.0, 100)])]
    front = pareto_front(rows, [("fps", "max"), ("lut", "min")], ("model",))
    assert [r["point"] for r in front] == [0, 5, 1, 4]


# ---------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------

def test_a_local_cluster_gives_exactly_the_serial_results(client, serial_tables,
                                                          tmp_path) -> None:
    r = run_sweep(small_spec(1), tmp_path, client=client)
    assert tables(tmp_path) == serial_tables[1]
    assert r.status == {"ok": 12, "infeasible": 4} and r.computed == r.tasks == 12
    rows = [x for x in r.rows if x["status"] == "infeasible"]
    assert {(x["accel"], x["engine.cols"]) for x in rows} == {("xc7z020", 25)}
    assert all("must be at least" in x["reason"] or "LUT" in x["reason"] for x in rows)
    again = run_sweep(small_spec(1), tmp_path, client=client)  # a re-run: all cached
    assert (again.computed, again.cached) == (0, 12) and tables(tmp_path) == serial_tables[1]


def test_a_killed_worker_loses_no_point(client, serial_tables, tmp_path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    stored: list[str] = []
    fn = functools.partial(dying_once, str(marks))
    r = run_sweep(small_spec(2), tmp_path / "out", client=client,
                  functions={"simulate": fn}, on_result=lambda t, rec: stored.append(t.key))
    assert r.status == {"ok": 12, "infeasible": 4} and r.failed_tasks == 0
    assert sorted(stored) == sorted(set(stored)) and len(stored) == r.tasks == 12
    assert tables(tmp_path / "out") == serial_tables[2]
    ran = [m for m in markers(marks) if m != "died"]
    # every task ran; the one whose worker died ran again (with any task of its batch that
    # had finished on that worker, whose result died with it)
    assert len(set(ran)) == 12 and 12 < len(ran) <= 12 + 2
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the worker


def test_an_interrupted_sweep_resumes_with_only_the_missing_tasks(client, serial_tables,
                                                                  tmp_path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    fn = functools.partial(counting_simulate, str(marks), 0.05)
    stored: list[str] = []

    def interrupt(task, rec) -> None:
        stored.append(task.key)
        if len(stored) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(small_spec(3), tmp_path / "out", client=client,
                  functions={"simulate": fn}, on_result=interrupt)
    assert len(list((tmp_path / "out/cache/simulate").iterdir())) == 5
    before = settled(marks)  # a running task that was cancelled still finishes
    with pytest.raises(ConfigError, match="holds a sweep of another spec; pass --resume"):
        run_sweep(small_spec(4), tmp_path / "out", workers=0)
    r = run_sweep(small_spec(3), tmp_path / "out", client=client, resume=True,
                  functions={"simulate": fn})
    assert (r.computed, r.cached) == (12 - 5, 5)
    assert len(markers(marks)) - before == 12 - 5
    assert tables(tmp_path / "out") == serial_tables[3]


def test_failures_are_results_and_transient_errors_are_retried(client, tmp_path) -> None:
    spec = small_spec(5)
    r = run_sweep(spec, tmp_path / "a", workers=0, functions={"simulate": failing_for_resnet18})
    bad = [x for x in r.rows if x["model"] == "resnet18" and x["status"] != "infeasible"]
    assert bad and all(x["status"] == "failed" and x["reason"] == (
        "simulate: ConfigError: workload resnet18 must not be simulated here, not this time")
        for x in bad)
    assert r.failed_tasks == len(bad) and r.status["ok"] == 12 - len(bad)
    again = run_sweep(spec, tmp_path / "a", workers=0, functions={"simulate":
                                                                  failing_for_resnet18})
    assert again.computed == 0  # a deterministic failure is a cached result
    marks = tmp_path / "marks"
    marks.mkdir()
    flaky = functools.partial(flaky_once, str(marks))
    r = run_sweep(spec, tmp_path / "b", client=client, functions={"simulate": flaky})
    assert r.status == {"ok": 12, "infeasible": 4} and r.failed_tasks == 0  # retried
    marks = tmp_path / "marks2"  # serially there is no retry: failed, and not cached
    marks.mkdir()
    flaky = functools.partial(flaky_once, str(marks))
    r = run_sweep(spec, tmp_path / "c", workers=0, functions={"simulate": flaky})
    assert r.failed_tasks == 12 and {x["reason"] for x in r.rows if x["status"] == "failed"
                                     } == {"simulate: RuntimeError: transient failure"}
    again = run_sweep(spec, tmp_path / "c", workers=0, functions={"simulate": flaky})
    assert again.computed == 12 and again.status == {"ok": 12, "infeasible": 4}


def test_points_sharing_a_synthesis_run_it_once(client, tmp_path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    spec = spec_from_dict({"name": "s", "stages": ["synth"], "axes": {
        "accel": "tiny", "part": ["XC7Z020", "XC7Z045", "XCZU9EG"], "engine.cols": [2, 4]}})
    r = run_sweep(spec, tmp_path / "out", client=client,
                  functions={"synth": functools.partial(fake_synth, str(marks))})
    assert r.points == 6 and r.tasks == r.computed == 4  # two xc7 parts share a synthesis
    assert len(markers(marks)) == 4 and r.status == {"ok": 6}


def test_accuracy_feeds_simulate_and_its_artifact_is_cached(client, tmp_path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    fns = {"float": functools.partial(fake_float, str(marks)),
           "accuracy": functools.partial(fake_accuracy, str(marks))}
    spec = spec_from_dict({"name": "acc", "stages": ["accuracy", "simulate"], "axes": {
        "accel": "tiny", "part": ["XC7Z020", "XC7Z045"], "memory.dram_latency": [4, 8],
        "fraction": 0.5, "model": "cnn"}, "constraints": {"min_accuracy": 96.6}})
    r = run_sweep(spec, tmp_path / "out", client=client, functions=fns)
    assert markers(marks) == ["accuracy", "float"]  # once each, for the four points
    assert (r.points, r.tasks) == (4, 2 + 4)
    assert {(x["status"], x["reason"]) for x in r.rows} == {
        ("infeasible", "accuracy 96.5 % is below the floor 96.6 %")}
    assert all(x["quant_accuracy"] == 96.5 and x["accuracy_drop"] == 0.5 and x["fps"] > 0
               for x in r.rows)
    acc = next((tmp_path / "out/cache/accuracy").glob("*/manifest.json"))
    assert load_artifact(acc.parent).layers  # the payload is kept next to its record
    for p in (tmp_path / "out/cache/simulate").iterdir():
        p.unlink()
    again = run_sweep(spec, tmp_path / "out", client=client, functions=fns)
    assert (again.computed, again.cached) == (4, 2) and again.rows == r.rows
    assert markers(marks) == ["accuracy", "float"]  # the cached artifact was used


def test_a_real_ptq_accuracy_feeds_the_simulation(tmp_path) -> None:
    spec = spec_from_dict({"name": "ptq", "stages": ["accuracy", "simulate"], "axes": {
        "accel": "tiny", "fraction": [0.0, 0.5], "model": "cnn"},
        "accuracy": {"method": "ptq", "float_epochs": 1}})
    r = run_sweep(spec, tmp_path, workers=0)
    assert (r.tasks, r.status) == (1 + 2 + 2, {"ok": 2})
    for row in r.rows:  # integer accuracy of the artifact, then its frame rate on the engine
        assert 0 < row["quant_accuracy"] <= 100 and row["fps"] > 0
    arts = [load_artifact(p.parent) for p in (tmp_path / "cache/accuracy").glob("*/manifest.json")]
    assert sorted(a.meta["sp2_fraction"] for a in arts) == [0.0, 0.5]
    assert all(a.meta["qat_config"]["bits"] == 4 for a in arts)  # the engine's weight bits
    with pytest.raises(ConfigError, match="accuracy.epochs must be an integer in 0..0 for ptq"):
        spec_from_dict({"stages": ["accuracy"], "axes": {"accel": "tiny", "model": "cnn"},
                        "accuracy": {"method": "ptq", "epochs": 2}})


def test_pim_macro_axes_on_an_artifact(tmp_path) -> None:
    spec = spec_from_dict({"name": "pim", "stages": ["simulate", "pim"], "axes": {
        "accel": "tiny", "artifact": "configs/artifacts/cnn_msq4_digits",
        "macro": "sram512x128_adc7", "macro.scheme": ["native", "bit_serial"],
        "macro.adc_bits": [5, 7]}, "pim": {"limit": 16}}, ROOT)
    r = run_sweep(spec, tmp_path, workers=0)
    assert r.tasks == 1 + 4  # one simulation serves the four macros
    native = [x for x in r.rows if x["macro.scheme"] == "native"]
    assert all(x["status"] == "failed" and x["reason"].startswith(
        "pim: ConfigError: w_bits must be at most 2 for native cells of 1 bits") for x in native)
    serial = [x for x in r.rows if x["macro.scheme"] == "bit_serial"]
    assert all(x["status"] == "ok" and x["pim_cycles"] > 0 for x in serial)
    low, high = sorted(serial, key=lambda x: x["macro.adc_bits"])
    assert low["pim_accuracy"] <= high["pim_accuracy"]  # a coarser ADC loses accuracy
    assert low["pim_digital_accuracy"] == high["pim_digital_accuracy"]


def test_the_cli_runs_a_sweep(tmp_path, capsys) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: cli\nstages: [simulate]\n"
                    "axes: {accel: tiny, model: resnet18, engine.cols: [2, 4]}\n")
    code, out, err = run(capsys, "sweep", str(spec), "--workers", "0", "--out",
                         str(tmp_path / "o"))
    assert code == 0, err
    assert "sweep cli: 2 points (2 ok); 2 tasks: 2 computed (0 failed), 0 cached" in out
    assert "Pareto front (" in out
    assert (tmp_path / "o/results.csv").read_text().count("\n") == 3
    assert f"plots: {tmp_path / 'o/fps_vs_lut.png'}, {tmp_path / 'o/fps_vs_dsp.png'}" in out


def test_quant_sim_hw_import_without_dask() -> None:
    code = ("import sys, pkgutil, importlib\n"
            "sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
            "for pkg in ('quant', 'sim', 'hw'):\n"
            "    p = importlib.import_module(pkg)\n"
            "    for m in pkgutil.walk_packages(p.__path__, pkg + '.'):\n"
            "        if 'torch' not in m.name and not m.name.startswith('hw.tb'):\n"
            "            importlib.import_module(m.name)\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_a_sweep_plots_fps_against_lut_and_dsp_with_the_pareto_front(tmp_path) -> None:
    spec = small_spec(6)
    r = run_sweep(spec, tmp_path, workers=0)
    names = ["fps_vs_lut.png", "fps_vs_dsp.png"]
    assert r.plots == [str(tmp_path / n) for n in names]
    assert all(p in r.files for p in r.plots)
    for n in names:
        _check_plot(tmp_path / n)
    again = sweep_plots(spec, r.rows, r.pareto)  # a second render: the same bytes
    assert again == {n: (tmp_path / n).read_bytes() for n in names}
    assert sweep_plots(spec, r.rows, [])["fps_vs_lut.png"] != again["fps_vs_lut.png"]


def test_a_sweep_with_accuracies_plots_accuracy_against_the_fraction(tmp_path) -> None:
    spec = spec_from_dict({"name": "accplot", "stages": ["accuracy", "simulate"], "axes": {
        "accel": "tiny", "engine.weight_bits": [3, 4], "fraction": [0.25, 0.5, 0.75],
        "model": "cnn"}})
    rows = [{"point": i, "accel": "tiny", "engine.weight_bits": b, "fraction": f,
             "model": "cnn", "status": "ok", "fps": 100.0 + i, "lut": 1000 + 10 * i,
             "dsp": 4, "quant_accuracy": 90.0 + b + 4 * f}
            for i, (b, f) in enumerate((b, f) for b in (3, 4) for f in (0.25, 0.5, 0.75))]
    plots = sweep_plots(spec, rows, rows[:1])
    assert sorted(plots) == ["accuracy_vs_fraction.png", "fps_vs_dsp.png", "fps_vs_lut.png"]
    for name, png in plots.items():
        (tmp_path / name).write_bytes(png)
        _check_plot(tmp_path / name)
    one_line = [{**r, "engine.weight_bits": 4} for r in rows]
    assert sweep_plots(spec, one_line, [])["accuracy_vs_fraction.png"] \
        != plots["accuracy_vs_fraction.png"]
    no_acc = [{**r, "quant_accuracy": None} for r in rows]
    assert "accuracy_vs_fraction.png" not in sweep_plots(spec, no_acc, [])
