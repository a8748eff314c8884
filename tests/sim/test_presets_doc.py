"""Issue 23: docs/presets.md is generated from the preset dataclasses and is current."""

from __future__ import annotations

import dataclasses

import pytest

from quant.errors import ConfigError
from sim import presets_doc
from sim.arch import GemmEngine


def test_docs_presets_is_current():
    assert presets_doc.DOC.read_text() == presets_doc.render(), \
        "docs/presets.md is stale: run python -m sim.presets_doc"


def test_every_field_is_documented_with_its_default():
    text = presets_doc.render()
    for prefix, cls in presets_doc.ACCEL_SECTIONS + presets_doc.MACRO_SECTIONS:
        for f in dataclasses.fields(cls):
            assert f"| `{prefix}{f.name}` |" in text
    assert "| `engine.acc_bits` | int | 32 | signed accumulator width, bits, 8..64" in text
    assert "| `memory.dram_bytes_per_cycle` | int or null | 8 |" in text


def test_a_field_without_a_docstring_entry_is_refused(monkeypatch):
    monkeypatch.setattr(GemmEngine, "__doc__", GemmEngine.__doc__.replace(
        "        cols: columns", "        colz: columns"))
    with pytest.raises(ConfigError, match=r"GemmEngine\.cols must have a Members: entry"):
        presets_doc.render()
