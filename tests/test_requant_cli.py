"""The levels agree at the requantizer's edge: an artifact the engine cannot requantize (a
multiplier wider than the post-processor's, a left shift) is refused alike by ``fpim simulate``
(both modes) and ``fpim verify``, with exit status 2 and one line naming the layer, the
field, the value and the allowed range, before any build or simulation."""

from __future__ import annotations

from pathlib import Path

import pytest

from quant.artifact import load_artifact, save_artifact
from tests.cliutil import run
from tests.sim.conftest import with_value

SHIPPED = Path(__file__).resolve().parents[1] / "configs" / "artifacts" / "cnn_msq4_digits"
LAYER = "features.3"


@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("mult", 70000, "0..65535 (the engine's 16-bit unsigned multiplier)"),
    ("shift", -1, "0..31 (right shifts only; a left shift by L is mult * 2**L)"),
])
def test_simulate_and_verify_refuse_alike(field, value, allowed, tmp_path, capsys,
                                          monkeypatch) -> None:
    art = tmp_path / "edited"
    save_artifact(with_value(load_artifact(SHIPPED), LAYER, field, 0, value), art)
    load_artifact(art)  # a valid artifact: quant.ref computes it, the engine cannot

    def no_build(*args, **kwargs):
        raise AssertionError("fpim verify built the RTL of an artifact it must refuse")

    monkeypatch.setattr("fpim.flows.verify.build_accel", no_build)
    line = f"error: layer '{LAYER}': {field}[0] must be in {allowed}, not {value}"
    for argv in (("simulate", "--artifact", str(art), "--functional"),
                 ("simulate", "--artifact", str(art)),
                 ("verify", "--artifact", str(art), "--layer", LAYER, "--cases", "1")):
        code, out, err = run(capsys, argv[0], "--accel", "tiny", *argv[1:])
        assert (code, out) == (2, ""), argv
        assert err == f"fpim {argv[0]}: {line}\n", argv
