"""Accelerator presets, overrides and the one-line errors for invalid configurations."""

from __future__ import annotations

import pytest

from quant.errors import ConfigError
from sim.arch import PARTS
from sim.config import (
    accelerator_from_dict,
    apply_overrides,
    load_accelerator,
    preset_names,
)
from sim.resources import bram36_blocks, estimate_resources

BASE = {
    "part": "XC7Z020",
    "engine": {"dsp_rows": 2, "lut_rows": 2, "cols": 4},
    "memory": {"k_tile": 16, "weight_bank_kib": 4, "act_bank_kib": 1, "out_bank_kib": 4},
}


@pytest.mark.parametrize("name", ["xc7z020", "xc7z045", "xczu9eg", "tiny"])
def test_presets_load_and_fit_their_part(name):
    acc = load_accelerator(name)
    est = estimate_resources(acc)
    assert est.dsp <= acc.part.dsp and est.lut <= acc.part.lut
    assert est.bram36 <= acc.part.bram36 and est.ff <= acc.part.ff
    assert name in preset_names()


def test_part_facts():
    assert PARTS["XC7Z020"].dsp == 220 and PARTS["XC7Z045"].lut == 218_600
    assert PARTS["XCZU9EG"].bram36 == 912 and PARTS["XCZU9EG"].dsp_type == "DSP48E2"


def test_overrides():
    acc = load_accelerator("tiny", ["engine.cols=8", "memory.dram_bytes_per_cycle=null",
                                    "clock_mhz=250"])
    assert acc.engine.cols == 8 and acc.memory.dram_bytes_per_cycle is None
    assert acc.clock_mhz == 250
    d = apply_overrides({"part": "XC7Z020"}, ["part.dsp=10"])
    assert d["part"] == {"name": "XC7Z020", "dsp": 10}


def _with(section, **kv):
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in BASE.items()}
    d[section] = {**d.get(section, {}), **kv}
    return d


@pytest.mark.parametrize("section,change,message", [
    ("engine", {"cols": 0}, "engine.cols must be an integer in 1..4096, not 0"),
    ("engine", {"dsp_rows": -1}, "engine.dsp_rows must be an integer in 0..4096, not -1"),
    ("engine", {"dsp_rows": 0, "lut_rows": 0}, "must be at least 1"),
    ("engine", {"weight_bits": 9}, "engine.weight_bits must be an integer in 3..8"),
    ("engine", {"weight_bits": 2}, "engine.weight_bits must be an integer in 3..8"),
    ("engine", {"act_bits": 17}, "engine.act_bits must be an integer in 1..16, not 17"),
    ("engine", {"dsp_packing": 3}, "engine.dsp_packing must be one of 1, 2, 4, not 3"),
    ("engine", {"dsp_packing": 4}, "engine.dsp_packing must be 1 or 2 on DSP48E1, not 4"),
    ("engine", {"lut_scheme": "fixed"}, "engine.lut_scheme must be one of sp2, pot"),
    # 8-bit products use one DSP48E1 each (4x4 ones go to LUTs), plus 2 x 20 for requantization
    # and 2 for the controller's load-size multiplies
    ("engine", {"dsp_rows": 20, "cols": 20, "weight_bits": 8, "act_bits": 8, "acc_bits": 24},
     "engine needs 442 DSP but part XC7Z020 has 220"),
    ("engine", {"lut_rows": 100, "cols": 16}, "LUT but part XC7Z020 has 53200"),
    ("memory", {"k_tile": 0}, "memory.k_tile must be an integer in 1..1048576, not 0"),
    ("memory", {"weight_bank_kib": 0.001},
     "memory.weight_bank_kib must be at least 0.03125 to hold one tile"),
    ("memory", {"act_bank_kib": -1}, "memory.act_bank_kib must be a positive number, not -1"),
    ("memory", {"dram_bytes_per_cycle": 0}, "memory.dram_bytes_per_cycle must be an integer"),
    ("memory", {"dram_latency": -5}, "memory.dram_latency must be an integer in"),
    ("engine", {"colz": 3}, "engine has unknown key 'colz'"),
])
def test_invalid_configs(section, change, message):
    with pytest.raises(ConfigError) as exc:
        accelerator_from_dict(_with(section, **change))
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_invalid_part_and_preset(tmp_path):
    with pytest.raises(ConfigError, match="part must be one of XC7Z020, XC7Z045, XCZU9EG"):
        accelerator_from_dict({**BASE, "part": "XC9"})
    with pytest.raises(ConfigError, match="accelerator preset must be one of"):
        load_accelerator("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("engine: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_accelerator(bad)
    with pytest.raises(ConfigError, match="override must look like section.key=value"):
        load_accelerator("tiny", ["engine.cols"])
    with pytest.raises(ConfigError, match="clock_mhz must be a number"):
        accelerator_from_dict({**BASE, "clock_mhz": 0})


def test_bram_aspect_ratios():
    assert bram36_blocks(72, 512) == 1
    assert bram36_blocks(36, 1024) == 1
    assert bram36_blocks(73, 512) == 2
    assert bram36_blocks(1, 32768) == 1
    assert bram36_blocks(8, 100) == 1


@pytest.mark.parametrize("section, change, message", [
    ("engine", {"act_signed": "no"}, "engine.act_signed must be true or false, not 'no'"),
    ("engine", {"act_signed": 5}, "engine.act_signed must be true or false, not 5"),
    ("engine", {"shared_post": 3}, "engine.shared_post must be true or false, not 3"),
    ("engine", {"dsp_packing": True}, "engine.dsp_packing must be one of 1, 2, 4, not True"),
    ("engine", {"dsp_packing": 1.0}, "engine.dsp_packing must be one of 1, 2, 4, not 1.0"),
    ("memory", {"weight_bank_kib": "4"}, "memory.weight_bank_kib must be a positive number"),
])
def test_values_of_the_wrong_type(section, change, message):
    with pytest.raises(ConfigError) as exc:
        accelerator_from_dict(_with(section, **change))
    assert str(exc.value).startswith(message)


def test_required_keys_and_sections():
    engine = {k: v for k, v in BASE["engine"].items() if k != "cols"}
    with pytest.raises(ConfigError, match=r"^engine\.cols is required$"):
        accelerator_from_dict({**BASE, "engine": engine})
    with pytest.raises(ConfigError, match=r"^part\.dsp_type is required$"):
        accelerator_from_dict({**BASE, "part": {"name": "P", "lut": 9, "ff": 9, "dsp": 9,
                                                "bram36": 9}})
    with pytest.raises(ConfigError, match=r"^vector must be a mapping, not \[1\]$"):
        accelerator_from_dict({**BASE, "vector": [1]})
    with pytest.raises(ConfigError, match=r"^name must be a non-empty string, not 5$"):
        accelerator_from_dict({**BASE, "name": 5})
    blank = accelerator_from_dict({**BASE, "memory": BASE["memory"], "vector": None})
    assert blank.vector == accelerator_from_dict(BASE).vector  # `vector:` left blank


def test_preset_file_with_a_byte_order_mark(tmp_path):
    from sim.config import CONFIG_DIR

    p = tmp_path / "mine.yaml"
    p.write_bytes(b"\xef\xbb\xbf" + (CONFIG_DIR / "tiny.yaml").read_bytes())
    assert load_accelerator(p).engine == load_accelerator("tiny").engine
    p.write_bytes((CONFIG_DIR / "tiny.yaml").read_bytes().replace(b"tiny", b"t\xefny"))
    with pytest.raises(ConfigError, match=r"accelerator file .* must be UTF-8 text"):
        load_accelerator(p)
