"""``fpim pim simulate`` on a small artifact."""

from __future__ import annotations

import json

from fpim.cli import main
from quant.artifact import save_artifact
from tests.quant.test_artifact import tiny_artifact


def test_pim_simulate_table_and_json(tmp_path, capsys) -> None:
    save_artifact(tiny_artifact(), tmp_path / "a")
    assert main(["pim", "simulate", "--artifact", str(tmp_path / "a"),
                 "--macro", "sram512x128_adc7"]) == 0
    out = capsys.readouterr().out
    assert "c1" in out and "fc" in out and "total:" in out and "(approximation)" in out
    assert main(["pim", "simulate", "--artifact", str(tmp_path / "a"), "--macro",
                 "sram512x128_adc7", "--batch", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in data["layers"]] == ["c1", "c2", "fc"]
    assert data["layers"][0]["n"] == 36 * 4
    assert data["totals"]["cycles"] == sum(row["cycles"] for row in data["layers"]) > 0


def test_pim_simulate_errors(tmp_path, capsys) -> None:
    save_artifact(tiny_artifact(), tmp_path / "a")
    assert main(["pim", "simulate", "--artifact", str(tmp_path / "a"),
                 "--macro", "nope"]) == 2
    assert "macro must be a preset name" in capsys.readouterr().err
    assert main(["pim", "simulate", "--artifact", str(tmp_path / "a"), "--macro",
                 "sram512x128_adc7", "--batch", "0"]) == 2
    assert capsys.readouterr().err == ("fpim pim: error: batch must be an integer in "
                                       "1..1048576, not 0\n")
