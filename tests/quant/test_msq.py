"""Per-row scale search and MSQ row assignment."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.errors import ConfigError, ShapeError
from quant.formats import Scheme, weight_format
from quant.msq import head_row_groups, lut_row_count, msq_assign, msq_assign_grouped
from quant.rows import QuantizedRows, quantize_rows, row_errors, search_alpha

seeds = st.integers(0, 2**31 - 1)


def random_weights(seed: int, m: int, k: int) -> np.ndarray:
    """Rows of mixed character: Gaussian, uniform and Laplacian, at different scales."""
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, 3, size=m)
    scale = rng.uniform(0.01, 2.0, size=(m, 1))
    w = np.where(kinds[:, None] == 0, rng.normal(size=(m, k)),
                 np.where(kinds[:, None] == 1, rng.uniform(-1, 1, size=(m, k)),
                          rng.laplace(size=(m, k))))
    return w * scale


@settings(max_examples=30, deadline=None)
@given(seeds, st.sampled_from([("fixed", 4), ("sp2", 4), ("pot", 4), ("sp2", 8)]))
def test_alpha_search_never_worse_than_max_scaling(seed, fmt_id) -> None:
    w = random_weights(seed, 6, 40)
    fmt = weight_format(*fmt_id)
    alpha, err = search_alpha(w, fmt)
    base = row_errors(w, fmt, np.max(np.abs(w), axis=1))
    assert np.all(err <= base)
    assert np.allclose(err, row_errors(w, fmt, alpha), rtol=0, atol=0)


def test_zero_rows_are_exact() -> None:
    w = np.zeros((2, 5))
    w[1] = [0.1, -0.2, 0.3, 0.0, 0.05]
    q = quantize_rows(w, "sp2", 4)
    assert q.alphas[0] == 1.0 and np.all(q.words[0] == 0)
    assert np.all(q.dequantize()[0] == 0)


@pytest.mark.parametrize(("fraction", "rows", "expected"),
                         [(0, 7, 0), (1, 7, 7), (0.5, 7, 4), (0.5, 6, 3), (0.25, 6, 2),
                          (0.2, 10, 2), (0.05, 10, 1), (0.04, 10, 0)])
def test_lut_row_count_rounds_half_up(fraction, rows, expected) -> None:
    assert lut_row_count(fraction, rows) == expected


@settings(max_examples=20, deadline=None)
@given(seeds, st.sampled_from(["mse", "variance"]))
def test_fraction_0_and_1_are_pure_schemes(seed, rule) -> None:
    w = random_weights(seed, 5, 30)
    for frac, scheme in ((0.0, "fixed"), (1.0, "sp2")):
        got = msq_assign(w, frac, 4, rule=rule)
        pure = quantize_rows(w, scheme, 4)
        assert np.array_equal(got.words, pure.words)
        assert np.array_equal(got.scheme_ids, pure.scheme_ids)
        assert np.array_equal(got.alphas, pure.alphas)


@settings(max_examples=25, deadline=None)
@given(seeds, st.integers(1, 6), st.floats(0, 1))
def test_mse_rule_is_optimal_among_assignments_with_same_count(seed, m, frac) -> None:
    w = random_weights(seed, m, 24)
    got = msq_assign(w, frac, 4, rule="mse")
    n = lut_row_count(frac, m)
    assert got.count(Scheme.SP2) == n
    total = np.sum((w - got.dequantize()) ** 2)
    fix, sp2 = quantize_rows(w, "fixed", 4), quantize_rows(w, "sp2", 4)
    e_fix = np.sum((w - fix.dequantize()) ** 2, axis=1)
    e_sp2 = np.sum((w - sp2.dequantize()) ** 2, axis=1)
    for subset in itertools.combinations(range(m), n):
        mask = np.zeros(m, dtype=bool)
        mask[list(subset)] = True
        other = e_sp2[mask].sum() + e_fix[~mask].sum()
        assert total <= other * (1 + 1e-12)


def test_variance_rule_gives_sp2_to_concentrated_rows() -> None:
    rng = np.random.default_rng(1)
    uniform = rng.uniform(-1, 1, size=(3, 200))
    peaked = rng.laplace(size=(3, 200)) * 0.1
    w = np.vstack([uniform, peaked])
    got = msq_assign(w, 0.5, 4, rule="variance")
    assert got.scheme_ids.tolist() == [0, 0, 0, 1, 1, 1]


def test_pot_as_lut_scheme() -> None:
    w = random_weights(3, 8, 16)
    got = msq_assign(w, 0.5, 4, lut_scheme="pot")
    assert set(got.scheme_ids.tolist()) == {int(Scheme.FIXED), int(Scheme.POT)}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [({"sp2_fraction": 1.5}, ConfigError, "sp2_fraction must be a number in [0, 1], not 1.5"),
     ({"sp2_fraction": -0.1}, ConfigError, "sp2_fraction must be a number in [0, 1], not -0.1"),
     ({"rule": "random"}, ConfigError, "rule must be one of mse, variance, not 'random'"),
     ({"bits": 2}, ConfigError, "bits must be an integer in 3..8 for sp2, not 2"),
     ({"lut_scheme": "fixed"}, ConfigError, "lut_scheme must be one of sp2, pot, not 'fixed'")],
)
def test_msq_bad_arguments(kwargs, error, message) -> None:
    args = {"w": np.ones((4, 4)), "sp2_fraction": 0.5, "bits": 4} | kwargs
    with pytest.raises(error) as info:
        msq_assign(**args)
    assert str(info.value) == message


def test_bad_weight_matrices() -> None:
    with pytest.raises(ShapeError, match=r"2-D matrix .* not shape \(4,\)"):
        msq_assign(np.ones(4), 0.5, 4)
    with pytest.raises(ConfigError, match="weights must be finite"):
        msq_assign(np.array([[1.0, np.inf]]), 0.5, 4)


def test_quantized_rows_validation() -> None:
    with pytest.raises(ShapeError, match="scheme_ids and alphas must have shape"):
        QuantizedRows(np.zeros((2, 3), np.int64), np.zeros(3, np.int8), np.ones(2), 4)
    with pytest.raises(ConfigError, match="for sp2"):
        QuantizedRows(np.zeros((1, 3), np.int64), np.ones(1, np.int8), np.ones(1), 9)


def test_head_row_groups() -> None:
    # qkv of 2 heads of d = 3: q0 q1 k0 k1 v0 v1
    assert head_row_groups(18, 2, 3) == ((0, 3), (3, 6), (6, 9), (9, 12), (12, 15), (15, 18))
    assert head_row_groups(7, 1) == ((0, 7),)
    with pytest.raises(ShapeError, match="rows must be a multiple of parts x heads = 6, not 10"):
        head_row_groups(10, 2, 3)
    with pytest.raises(ConfigError, match="heads must be an integer in 1..4, not 0"):
        head_row_groups(4, 0)


@settings(max_examples=25, deadline=None)
@given(seeds, st.integers(1, 4), st.integers(1, 3), st.integers(1, 5), st.floats(0, 1),
       st.sampled_from(["mse", "variance"]), st.sampled_from(["sp2", "pot"]))
def test_grouped_msq_splits_every_group_alike(seed, heads, parts, d, frac, rule, lut) -> None:
    m = heads * parts * d
    w = random_weights(seed, m, 9)
    groups = head_row_groups(m, heads, parts)
    q = msq_assign_grouped(w, groups, frac, 4, rule, lut)
    for a, b in groups:
        alone = msq_assign(w[a:b], frac, 4, rule, lut)
        assert np.array_equal(q.scheme_ids[a:b], alone.scheme_ids)
        assert np.array_equal(q.words[a:b], alone.words)
        assert np.array_equal(q.alphas[a:b], alone.alphas)
    assert q.count(Scheme.parse(lut)) == len(groups) * lut_row_count(frac, d)
    whole = msq_assign(w, frac, 4, rule, lut)  # one group is plain MSQ
    one = msq_assign_grouped(w, [(0, m)], frac, 4, rule, lut)
    assert np.array_equal(one.scheme_ids, whole.scheme_ids)
    assert np.array_equal(one.words, whole.words)


@pytest.mark.parametrize("groups", [[], [(0, 2)], [(0, 2), (3, 4)], [(0, 3), (2, 4)],
                                    [(2, 4), (0, 2)], [(0, 0), (0, 4)], [(0, 5)], [3], None])
def test_grouped_msq_refuses_groups_that_do_not_partition(groups) -> None:
    with pytest.raises(ConfigError, match="^groups must be"):
        msq_assign_grouped(np.ones((4, 3)), groups, 0.5, 4)
