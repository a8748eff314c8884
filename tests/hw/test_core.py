# amaranth: UnusedElaboratable=no
"""Output-stationary cores against the PE ops of quant.formats, with sim.timing's R4/R4b
schedule.

Tiles are driven back to back exactly as rules R4/R4b schedule them: a K-cycle stream window
whose last step is marked ``last``; the tile's rows are read one per cycle from ``c`` cycles
after the window on, while the next tile already streams; a tile's last window ends no earlier
than the previous tile's drain leaves room for its own (``P - c``) and than that drain's start
plus the capture lead ``s`` of the packing (R4b), the earliest these rules allow, so a drain
register overwritten too early shows as a wrong result.
"""

from __future__ import annotations

import numpy as np
import pytest

from hw.core import OutputStationaryCore
from quant.errors import ConfigError
from quant.formats import ActFormat, weight_format
from sim.timing import capture_lead
from tests.hw.simutil import run_bench

pytestmark = pytest.mark.filterwarnings("error")


def random_tiles(fmt, act, rows, cols, n_tiles, seed):
    rng = np.random.default_rng(seed)
    words = np.flatnonzero(fmt.valid_words)
    big = words[np.argmax(np.abs(fmt.int_level_table[words]))]
    tiles = []
    for i in range(n_tiles):
        r = rows if i == 0 else int(rng.integers(1, rows + 1))
        c = cols if i == 0 else int(rng.integers(1, cols + 1))
        k = int(rng.integers(1, 12))
        w = rng.choice(words, size=(r, k))
        x = rng.integers(act.qmin, act.qmax + 1, size=(k, c))
        if i == 1:  # largest magnitudes everywhere
            w[:] = big
            x[:] = act.qmax if act.qmax >= -act.qmin else act.qmin
        tiles.append((w, x))
    return tiles


def overlapped_plan(tiles, rows: int, cols: int, packing: int, early: int = 0
                    ) -> tuple[list, dict[int, tuple[int, int]]]:
    """The core's edge per cycle ``(w column, x row, valid, first, last)`` for ``tiles`` on the
    R4/R4b schedule (a tile's last window ``early`` cycles before R4b's capture bound allows
    it), and the drains: cycle -> (tile, row) read then."""
    idle = ([0] * rows, [0] * cols, 0, 0, 0)
    plan: list = []
    drains: dict[int, tuple[int, int]] = {}
    done = lead = 0  # P and D + s of the previous tile
    for i, (w, x) in enumerate(tiles):
        r, k = w.shape
        c = x.shape[1]
        for step in range(k):
            if step == k - 1:
                while len(plan) + 1 < max(done - c, lead - early):  # R4b
                    plan.append(idle)
            w_col = [int(w[a, step]) if a < r else 0 for a in range(rows)]
            x_row = [int(x[step, b]) if b < c else 0 for b in range(cols)]
            plan.append((w_col, x_row, 1, int(step == 0), int(step == k - 1)))
        end = len(plan)
        drains.update({end + c + d: (i, d) for d in range(r)})
        assert len(drains) == sum(t[0].shape[0] for t in tiles[:i + 1])  # one drain port
        lead = end + c + capture_lead(r, packing)
        done = end + c + r
    plan += [idle] * (done - len(plan))
    return plan, drains


# (scheme, bits, act, rows, cols, packing); packed cores include a partial last group
# (3 rows in pairs, 3 rows in a quad, 5 rows: two pairs and a lone row).
CONFIGS = [("fixed", 4, ActFormat(4), 2, 4, 1), ("sp2", 4, ActFormat(4), 2, 4, 1),
           ("sp2", 6, ActFormat(8, True), 3, 2, 1), ("pot", 4, ActFormat(8), 3, 3, 1),
           ("fixed", 8, ActFormat(8, True), 1, 1, 1), ("fixed", 8, ActFormat(8), 3, 2, 2),
           ("fixed", 8, ActFormat(8, True), 4, 3, 2), ("fixed", 4, ActFormat(4), 5, 2, 2),
           ("fixed", 4, ActFormat(4), 4, 3, 4), ("fixed", 4, ActFormat(4, True), 3, 2, 4)]


@pytest.mark.parametrize(("scheme", "bits", "act", "rows", "cols", "packing"), CONFIGS,
                         ids=[f"{s}{b}-{a}-{r}x{c}-p{p}" for s, b, a, r, c, p in CONFIGS])
def test_core_tiles_match_reference(scheme, bits, act, rows, cols, packing) -> None:
    fmt = weight_format(scheme, bits)
    tiles, results = run_core(fmt, act, rows, cols, packing)
    n_products = 0
    for (w, x), got in zip(tiles, results, strict=True):
        want = fmt.hw_mul(w[:, :, None], x[None, :, :]).sum(axis=1)
        assert np.array_equal(got, want), (w, x, got, want)
        n_products += w.size * x.shape[1]
    assert n_products >= 200


@pytest.mark.parametrize(("rows", "cols", "packing"), [(2, 4, 1), (4, 3, 2), (4, 3, 4)])
def test_core_one_cycle_before_the_capture_bound_overwrites(rows, cols, packing) -> None:
    """R4b's capture bound is tight: a last window one cycle earlier lets the next tile's
    capture overwrite a drain register in the cycle it is read."""
    fmt = weight_format("fixed", 4)
    tiles, results = run_core(fmt, ActFormat(4), rows, cols, packing, early=1)
    wrong = [not np.array_equal(got, fmt.hw_mul(w[:, :, None], x[None, :, :]).sum(axis=1))
             for (w, x), got in zip(tiles, results, strict=True)]
    assert any(wrong)


SPLITS = [("sp2", 4, ActFormat(4), 3, 5, 1, 2), ("fixed", 4, ActFormat(4), 2, 4, 1, 3),
          ("fixed", 8, ActFormat(8, True), 4, 3, 2, 1), ("pot", 4, ActFormat(8), 2, 2, 1, 1)]


@pytest.mark.parametrize(("scheme", "bits", "act", "rows", "cols", "packing", "split"), SPLITS,
                         ids=[f"{s}{b}-{r}x{c}-p{p}-s{t}" for s, b, _, r, c, p, t in SPLITS])
def test_core_column_groups(scheme, bits, act, rows, cols, packing, split) -> None:
    """R3c: columns from ``split`` on multiply group B's weights (``wb``), the others group
    A's, on the same R4/R4b schedule."""
    fmt = weight_format(scheme, bits)
    rng = np.random.default_rng(cols * 7 + split)
    words = np.flatnonzero(fmt.valid_words)
    tiles, results, b_words = run_core(fmt, act, rows, cols, packing, split=split,
                                       b_words=lambda w: rng.choice(words, size=w.shape))
    for (w, x), wb, got in zip(tiles, b_words, results, strict=True):
        want = np.concatenate([fmt.hw_mul(w[:, :, None], x[None, :, :split]).sum(axis=1),
                               fmt.hw_mul(wb[:, :, None], x[None, :, split:]).sum(axis=1)],
                              axis=1)
        assert np.array_equal(got, want), (w, wb, x, got, want)
    with pytest.raises(ConfigError, match=r"^split must be an integer in 1\.\.2 \(or 0\), "
                                          r"not 3$"):
        OutputStationaryCore(fmt, act, 32, rows, 3, packing, split=3)


def run_core(fmt, act, rows, cols, packing, early=0, split=0, b_words=None):
    """40 random tiles through one core on the R4/R4b schedule: (tiles, drained results);
    with ``split``, each tile's group B weights ``b_words(w)`` too (returned third)."""
    dut = OutputStationaryCore(fmt, act, 32, rows, cols, packing, split)
    tiles = random_tiles(fmt, act, rows, cols, 40, seed=rows * 10 + cols + fmt.bits)
    if split:  # group B's tiles span the whole array: its weights show in its columns
        tiles = [(w, x) if x.shape[1] == cols else (w, np.pad(x, ((0, 0), (0, cols - x.shape[1]))))
                 for w, x in tiles]
    b_tiles = [b_words(w) for w, _ in tiles] if split else []
    plan, drains = overlapped_plan(tiles, rows, cols, packing, early)
    results = [np.zeros((w.shape[0], x.shape[1]), dtype=np.int64) for w, x in tiles]
    b_plan = []
    for wb in b_tiles:  # group B's words in the cycles of each step of its tile
        b_plan += [[int(wb[a, s]) if a < wb.shape[0] else 0 for a in range(rows)]
                   for s in range(wb.shape[1])]
    steps = iter(b_plan)

    async def bench(ctx):
        for t, (w_col, x_row, valid, first, last) in enumerate(plan):
            if split:
                wb_col = next(steps) if valid else [0] * rows
                for i in range(rows):
                    ctx.set(dut.wb[i], wb_col[i])
            for i in range(rows):
                ctx.set(dut.w[i], w_col[i])
            for j in range(cols):
                ctx.set(dut.x[j], x_row[j])
            ctx.set(dut.valid, valid)
            ctx.set(dut.first, first)
            ctx.set(dut.last, last)
            if t in drains:
                tile, d = drains[t]
                ctx.set(dut.drain_row, d)
                c = results[tile].shape[1]
                results[tile][d] = [ctx.get(dut.out[j]) for j in range(c)]
            await ctx.tick()

    run_bench(dut, bench)
    return (tiles, results, b_tiles) if split else (tiles, results)


def test_core_rejects_bad_parameters() -> None:
    with pytest.raises(ConfigError, match=r"^rows must be an integer in 1\.\.4096, not 0$"):
        OutputStationaryCore(weight_format("sp2", 4), ActFormat(4), 24, 0, 4)
    with pytest.raises(ConfigError, match=r"^fmt must be a WeightFormat, not 'sp2'$"):
        OutputStationaryCore("sp2", ActFormat(4), 24, 2, 4)
    with pytest.raises(ConfigError, match=r"^packing must be one of 1, 2, 4, not 3$"):
        OutputStationaryCore(weight_format("fixed", 4), ActFormat(4), 24, 2, 4, 3)
    with pytest.raises(ConfigError, match=r"^packing must be 1 for sp2 weights, not 2$"):
        OutputStationaryCore(weight_format("sp2", 4), ActFormat(4), 24, 2, 4, 2)
