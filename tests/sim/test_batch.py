"""Issue 23: FPS is images per second for every workload source, the batch beside it."""

from __future__ import annotations

import json

import pytest

from fpim.cli import main


def _run(capsys, *argv: str) -> dict:
    assert main(["simulate", *argv, "--accel", "tiny", "--mode", "analytical", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _images_per_second(d: dict) -> float:
    """Images per second from the run's own GOPS and the MACs of one image."""
    return d["gops"] * 1e9 / (2 * d["macs"] / d["batch"])


@pytest.mark.parametrize("source", [("--model", "resnet18"),
                                    ("--topology", "configs/workloads/deit_base.csv")])
def test_batch_of_a_shipped_model_or_topology(capsys, source):
    one = _run(capsys, *source)
    four = _run(capsys, *source, "--batch", "4")
    assert one["batch"] == 1 and four["batch"] == 4
    assert four["macs"] == 4 * one["macs"]
    for d in (one, four):
        assert d["fps"] == pytest.approx(d["batch"] * 1e3 / d["latency_ms"])
        assert d["fps"] == pytest.approx(_images_per_second(d))
    # a batch streams more columns through the same weights: images/s cannot drop
    assert four["fps"] >= one["fps"]


def test_batch_of_an_artifact(capsys, tmp_path, small_artifact):
    from quant.artifact import save_artifact

    save_artifact(small_artifact, tmp_path / "a")
    d = _run(capsys, "--artifact", str(tmp_path / "a"), "--batch", "3")
    assert d["batch"] == 3
    assert d["fps"] == pytest.approx(_images_per_second(d))


def test_batch_of_a_torch_model_is_its_input_shape(capsys):
    pytest.importorskip("torch")
    d = _run(capsys, "--model", "tests.sim.test_torch_workload:Attn", "--input-shape",
             "4,3,8,8")
    assert d["batch"] == 4
    assert d["fps"] == pytest.approx(4e3 / d["latency_ms"])
    assert d["fps"] == pytest.approx(_images_per_second(d))


def test_batch_text_states_images_per_second(capsys):
    assert main(["simulate", "--model", "resnet18", "--accel", "tiny", "--mode", "analytical",
                 "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "per batch of 2" in out and "FPS (images/s)" in out


def test_batched_workload_refuses_a_second_batch():
    from quant.errors import ConfigError
    from sim.workload import batched, load_shipped

    wl = batched(load_shipped("resnet18"), 2)
    with pytest.raises(ConfigError, match="batch of workload 'resnet18' must be given once"):
        batched(wl, 2)
    with pytest.raises(ConfigError, match=r"^batch must be an integer in 1\.\.1048576, not 0"):
        batched(load_shipped("resnet18"), 0)
