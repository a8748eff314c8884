"""Fixtures shared by the simulator tests."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from quant.artifact import Artifact, Layer, Value
from quant.formats import ActFormat
from quant.msq import msq_assign


def _gemm_tensors(rng, m, k, bits=4):
    rows = msq_assign(rng.normal(size=(m, k)), 0.5, bits)
    return {
        "words": rows.words.astype(np.int32), "scheme_ids": rows.scheme_ids.astype(np.int8),
        "alphas": rows.alphas, "mult": rng.integers(1 << 14, 1 << 15, m).astype(np.int64),
        "shift": np.full(m, 18, np.int64), "bias": rng.integers(-50, 50, m).astype(np.int64),
    }


def make_small_artifact(seed: int = 0) -> Artifact:
    """input 3x8x8 → conv3x3 → conv3x3/2 → conv1x1 → add → avgpool → flatten → fc (4-bit)."""
    rng = np.random.default_rng(seed)
    u4 = ActFormat(4)
    conv = {"weight_bits": 4, "acc_bits": 24}
    layers = (
        Layer("c1", "conv", ("input",), Value(u4, 0.1, (8, 8, 8)),
              {**conv, "kernel": [3, 3], "stride": 1, "padding": 1, "relu": True,
               "gemm": {"M": 8, "K": 27, "N": 64}}, _gemm_tensors(rng, 8, 27)),
        Layer("c2", "conv", ("c1",), Value(u4, 0.1, (8, 4, 4)),
              {**conv, "kernel": [3, 3], "stride": 2, "padding": 1, "relu": True,
               "gemm": {"M": 8, "K": 72, "N": 16}}, _gemm_tensors(rng, 8, 72)),
        Layer("c3", "conv", ("c2",), Value(u4, 0.1, (8, 4, 4)),
              {**conv, "kernel": [1, 1], "stride": 1, "padding": 0, "relu": True,
               "gemm": {"M": 8, "K": 8, "N": 16}}, _gemm_tensors(rng, 8, 8)),
        Layer("a", "add", ("c3", "c2"), Value(u4, 0.1, (8, 4, 4)),
              {"relu": True, "out_shift": 1},
              {"in_mult": np.array([1, 1], np.int64), "in_shift": np.array([0, 0], np.int64)}),
        Layer("p", "avgpool", ("a",), Value(u4, 0.1, (8, 2, 2)),
              {"kernel": [2, 2], "stride": 2, "mult": 1, "shift": 2}),
        Layer("f", "flatten", ("p",), Value(u4, 0.1, (32,))),
        Layer("fc", "linear", ("f",), Value(None, 1e-3, (5,)),
              {"relu": False, "weight_bits": 4, "acc_bits": 24,
               "gemm": {"M": 5, "K": 32, "N": 1}}, _gemm_tensors(rng, 5, 32)),
    )
    return Artifact(input=Value(u4, 1 / 15, (3, 8, 8)), layers=layers, output="fc",
                    meta={"model": "small"})


def with_value(art: Artifact, layer: str, field: str, row: int, value: int) -> Artifact:
    """``art`` with ``<layer>.<field>[row] = value`` (a hand edit; save_artifact rehashes)."""
    def edit(lay: Layer) -> Layer:
        if lay.name != layer:
            return lay
        t = lay.tensors[field].copy()
        t[row] = value
        return dataclasses.replace(lay, tensors={**lay.tensors, field: t})
    return dataclasses.replace(art, layers=tuple(edit(lay) for lay in art.layers))


@pytest.fixture
def small_artifact() -> Artifact:
    return make_small_artifact()
