"""ViT search: the LUT-scheme fraction, engine split, vector lanes and tiling of a vision
transformer accelerator on a part (Auto-ViT-Acc, arXiv 2208.05163; VAQF, arXiv 2201.06618).

Auto-ViT-Acc gives each weight row of a ViT's linears fixed point (DSP core) or a LUT
scheme (PoT in the paper; the template's ``engine.lut_scheme``), with the same split in
every head, and chooses the split and the accelerator's parallelism from the FPGA's
resources. :func:`explore_vit` does this with the simulator (:func:`sim.engine.simulate`
on the whole workload: GEMMs, attention matmuls and vector ops):

* **Fraction.** A design puts ``b`` of every ``head_dim`` weight rows on the LUT core
  (``sim.workload.assign_fraction`` with ``b / head_dim``). The query, key and value rows
  of one head are ``head_dim`` rows of ``qkv`` (docs/vit.md), so every head of q, k and v
  gets exactly ``b`` LUT rows, and a layer of ``n head_dim`` rows gets ``n b``. The
  attention matmuls multiply two activations and stay on the DSP core. ``b`` is found by a
  local search from the balance point ``head_dim Rl / (Rd + Rl)`` (steps of 4 rows, then
  1; :func:`best_split`).
* **Engine split.** For each DSP packing the part allows at the width, each column count
  (``ceil(T / j)``: the tokens ``T`` in ``j`` column blocks with little padding,
  :func:`token_cols`) and each vector-lane count (:data:`LANES`): the DSP-only engine with
  the most DSP rows that fits, and mixed engines with :data:`DSP_SHARES` of the most DSP
  rows that fit beside a LUT core, each with the largest LUT core that fits beside them
  (``sim.search``'s builders).
* **Fit.** A design fits when its engine (:func:`sim.resources.estimate_resources`: the
  datapath, the two load buffers and the control) and its vector unit
  (:func:`sim.resources.vector_unit_cost`) together stay within the part's DSP, FF and
  BRAM36 and within ``lut_cap`` of its LUTs (:func:`vit_fits`): the caps of ``fpim search
  msq``. There is no separate K/V buffer: timing rule R11b loads a head's K (QK^T) and V
  (A.V) through the weight buffer, block by block, so the fit checks instead that its word
  holds those blocks (:func:`sim.resources.matmul_block_violation`).
* **Accumulator.** Mixed engines get the narrowest accumulator the workload needs with
  both schemes' weights, DSP-only engines the narrowest it needs with fixed-point weights
  (a fixed-only design would not carry the LUT scheme's wider products); ``acc_bits``
  gives every engine one wider width instead.
* **Tiling and finalists.** Every engine above is timed in ``analytical`` mode (exact
  compute, memory stalls as their lower bound). The :data:`FINALISTS` fastest mixed
  engines and the fastest DSP-only one are then timed in ``cycle`` mode at each load-block
  depth ``memory.k_tile`` of :data:`K_TILES` that fits, and kept at their fastest; the best
  design and the baseline are the fastest there.
* **Frame-rate target** (VAQF's loop): given ``fps_target``, each design on the Pareto
  front (FPS against LUT and DSP) is shrunk (its DSP and LUT rows scaled together, by
  bisection, in ``cycle`` mode) to the fewest rows that still meet the target; the
  smallest of those (the least fraction of its tightest resource) is the answer.

Designs are whole :class:`~sim.arch.Accelerator` objects built on a template (a preset),
so the design reported is the design ``fpim simulate --accel`` reproduces.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

from quant.errors import ConfigError, check_fraction, check_int_range, check_real
from quant.formats import ActFormat, Scheme, weight_format
from quant.ref import required_acc_bits
from sim.arch import Accelerator
from sim.engine import simulate
from sim.resources import (
    BlockCost,
    ResourceEstimate,
    accel_vector_unit,
    estimate_resources,
    matmul_block_violation,
    with_vector_unit,
)
from sim.results import RunResult
from sim.search import (
    Fit,
    fitted_accel,
    most_dsp_only,
    most_dsp_rows,
    most_lut_rows,
    search_base,
    with_banks,
)
from sim.workload import Attention, Workload, assign_fraction, attention_of

#: Vector-unit lane counts tried. With the calibrated vector unit (about 6,920 LUT and 30
#: DSP slices per lane at 8 bits, sim.resources.vector_unit_costs) 64 lanes fit no part the
#: search knows and the XC7Z020 holds at most a few.
LANES = (2, 4, 8, 16, 32)
#: Column blocks per token row: a design's columns are ``ceil(T / j)`` for these ``j``.
COL_BLOCKS = (2, 3, 4, 5, 6, 8, 12)
#: Fewest and most columns tried.
MIN_COLS, MAX_COLS = 8, 128
#: DSP rows of a mixed engine, as shares of the most that fit beside a LUT core.
DSP_SHARES = (1.0, 0.6, 0.3)
#: Load-block depths tried on the finalists.
K_TILES = (64, 128, 256, 512, 1024, 2048, 4096)
#: Mixed engines carried from the analytical sweep to the tiling sweep and cycle mode.
FINALISTS = 6
#: Largest steps of the fraction's local search (rows per head), halved to 1.
FRACTION_STEP = 2
#: Published figures the comparison quotes (docs/vit.md).
REFERENCE = ("Auto-ViT-Acc (arXiv 2208.05163), DeiT-B on ZCU102: 56.8 FPS (FP32 FPGA "
             "baseline 10.0 FPS); W8A8 as quoted by P2-ViT (arXiv 2405.19915): fixed-only "
             "0.435 GOPS/DSP, fixed+PoT 0.759 GOPS/DSP")


def attention_shape(wl: Workload) -> Attention:
    """``wl``'s attention (:func:`sim.workload.attention_of`); refused when it has none."""
    attn = attention_of(wl)
    if attn is None:
        raise ConfigError(f"workload {wl.name!r} must have attention (an activation x "
                          "activation matmul of T x T scores) for the ViT search, not none")
    return attn


def token_cols(tokens: int) -> tuple[int, ...]:
    """Column counts tried: ``ceil(tokens / j)`` for ``j`` in :data:`COL_BLOCKS` (the
    tokens in ``j`` column blocks), within :data:`MIN_COLS`..:data:`MAX_COLS`."""
    out = {-(-tokens // j) for j in COL_BLOCKS}
    ok = sorted(c for c in out if MIN_COLS <= c <= MAX_COLS)
    return tuple(ok) or (max(1, min(tokens, MAX_COLS)),)


def vit_acc_bits(wl: Workload, bits: int, lut_scheme: str, act_signed: bool
                 ) -> tuple[int, int]:
    """Accumulator bits ``wl``'s GEMMs need at ``bits`` (weights and activations): with the
    LUT scheme's weights as well as fixed point (mixed engines), and with fixed point only
    (DSP-only engines); an attention matmul's operands are ``bits``-bit activations, either
    of them unsigned (the softmax output), in both."""
    weights = [o.k for o in wl.gemms if o.kind != "matmul"] or [1]
    x_max = ActFormat(bits, act_signed).max_abs
    w_fix = weight_format(Scheme.FIXED, bits).max_abs_int
    w_lut = weight_format(Scheme.parse(lut_scheme), bits).max_abs_int
    a_max = (1 << bits) - 1
    mm = max([required_acc_bits(o.k, a_max, a_max) for o in wl.gemms if o.kind == "matmul"]
             or [0])
    return (min(64, max(mm, required_acc_bits(max(weights), max(w_fix, w_lut), x_max))),
            min(64, max(mm, required_acc_bits(max(weights), w_fix, x_max))))


#: Engine estimates by (part, engine, memory): the search builds the same engine for every
#: lane count and load-block depth it tries.
_ESTIMATES: dict[tuple, ResourceEstimate] = {}


def _engine_estimate(acc: Accelerator) -> ResourceEstimate:
    key = (acc.part, acc.engine, acc.memory.k_tile)
    if key not in _ESTIMATES:
        if len(_ESTIMATES) > 1 << 16:
            _ESTIMATES.clear()
        _ESTIMATES[key] = estimate_resources(acc)
    return _ESTIMATES[key]


def design_blocks(acc: Accelerator, attn: Attention) -> dict[str, BlockCost]:
    """The design's blocks and their resources: the GEMM engine with its buffers (the
    weight buffer also carries the attention matmuls' K and V, R11b) and control, and the
    vector unit."""
    e = _engine_estimate(acc)
    return {
        "engine": BlockCost(e.lut, e.ff, e.dsp, e.bram36),
        "vector": accel_vector_unit(acc, attn),
    }


def attention_violation(acc: Accelerator, attn: Attention) -> str | None:
    """Why the weight buffer cannot carry a head's K (``T x head_dim``, QK^T) or V
    (``head_dim x T``, A.V) as R11b loads them, or None
    (:func:`sim.resources.matmul_block_violation`)."""
    return (matmul_block_violation(acc, attn.tokens, attn.head_dim)
            or matmul_block_violation(acc, attn.head_dim, attn.tokens))


def design_resources(acc: Accelerator, attn: Attention) -> dict[str, int]:
    """LUT, FF, DSP and BRAM36 of the whole design: the engine with the vector unit
    (:func:`sim.resources.with_vector_unit`, as `fpim simulate` counts it)."""
    est = with_vector_unit(_engine_estimate(acc), accel_vector_unit(acc, attn))
    return {r: getattr(est, r) for r in ("lut", "ff", "dsp", "bram36")}


def vit_fits(acc: Accelerator, lut_cap: float, attn: Attention) -> bool:
    """True if the whole design (:func:`design_resources`) fits its part with at most
    ``lut_cap`` of its LUTs and its weight buffer carries the attention's K and V blocks
    (:func:`attention_violation`)."""
    tot, p = design_resources(acc, attn), acc.part
    return (tot["lut"] <= lut_cap * p.lut and tot["ff"] <= p.ff and tot["dsp"] <= p.dsp
            and tot["bram36"] <= p.bram36 and attention_violation(acc, attn) is None)


@dataclass(frozen=True)
class VitCandidate:
    """One design timed at its LUT rows per head ``lut_per_head`` (of ``head_dim``)."""

    dsp_rows: int
    lut_rows: int
    cols: int
    dsp_packing: int
    lanes: int
    k_tile: int
    acc_bits: int
    lut_per_head: int
    head_dim: int
    mode: str
    cycles: int
    compute_cycles: int
    fps: float
    gops: float
    mac_util: float
    lut: int
    ff: int
    dsp: int
    bram36: int
    design: Accelerator = dataclasses.field(compare=False, repr=False)

    @property
    def fraction(self) -> float:
        return self.lut_per_head / self.head_dim

    @property
    def gops_per_dsp(self) -> float:
        return self.gops / self.dsp if self.dsp else 0.0

    @property
    def gops_per_klut(self) -> float:
        return self.gops / (self.lut / 1000) if self.lut else 0.0

    def size(self, lut_cap: float) -> float:
        """The fraction of its part the design needs: its tightest resource (LUTs against
        ``lut_cap`` of the part's)."""
        p = self.design.part
        return max(self.lut / (lut_cap * p.lut), self.ff / p.ff, self.dsp / p.dsp,
                   self.bram36 / p.bram36)

    def to_dict(self) -> dict:
        """The figures (not the design) as plain data."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if f.name != "design"}
        d.update(lut_fraction=self.fraction, gops_per_dsp=self.gops_per_dsp,
                 gops_per_klut=self.gops_per_klut)
        return d


def _candidate(r: RunResult, acc: Accelerator, b: int, attn: Attention) -> VitCandidate:
    e = acc.engine
    tot = design_resources(acc, attn)
    return VitCandidate(e.dsp_rows, e.lut_rows, e.cols, e.dsp_packing, acc.vector.lanes,
                        acc.memory.k_tile, e.acc_bits, b, attn.head_dim, r.mode,
                        r.total_cycles, r.compute_cycles, r.fps, r.gops, r.mac_util(),
                        tot["lut"], tot["ff"], tot["dsp"], tot["bram36"], acc)


class Timer:
    """Times designs on one workload and counts the simulations per mode."""

    def __init__(self, wl: Workload, attn: Attention) -> None:
        self.wl, self.attn = wl, attn
        self.count = {"analytical": 0, "cycle": 0}
        self._split: dict[int, Workload] = {}

    def workload(self, b: int) -> Workload:
        """The workload with ``b`` LUT rows in every ``head_dim`` rows."""
        if b not in self._split:
            self._split[b] = assign_fraction(self.wl, b / self.attn.head_dim, force=True)
        return self._split[b]

    def time(self, acc: Accelerator, b: int, mode: str) -> VitCandidate:
        self.count[mode] += 1
        return _candidate(simulate(self.workload(b), acc, mode), acc, b, self.attn)


def best_split(timer: Timer, acc: Accelerator, mode: str = "analytical"
               ) -> VitCandidate:
    """``acc`` at its fastest LUT rows per head: 0 without a LUT core, else a local search
    from the balance point ``head_dim Rl / (Rd + Rl)`` (the fixed and LUT rows of a
    weight GEMM take as many row steps), moving while a neighbour ``step`` rows away is
    faster, ``step`` from :data:`FRACTION_STEP` halved down to 1."""
    e, hd = acc.engine, timer.attn.head_dim
    if e.lut_rows == 0:
        return timer.time(acc, 0, mode)
    seen: dict[int, VitCandidate] = {}

    def at(b: int) -> VitCandidate:
        if b not in seen:
            seen[b] = timer.time(acc, b, mode)
        return seen[b]

    b = min(hd, max(1, round(hd * e.lut_rows / e.rows)))
    step = FRACTION_STEP
    while step >= 1:
        moved = True
        while moved:
            moved = False
            for nb in (b - step, b + step):
                if 1 <= nb <= hd and at(nb).cycles < at(b).cycles:
                    b, moved = nb, True
                    break
        step //= 2
    return at(b)


@dataclass(frozen=True)
class VitExploration:
    """Everything :func:`explore_vit` timed: the analytical sweep (each engine at its best
    split), the finalists in cycle mode (``finalists``; the DSP-only one last), and the
    search's inputs."""

    workload: str
    template: Accelerator
    bits: int
    lut_cap: float
    attn: Attention
    sweep: tuple[VitCandidate, ...]
    finalists: tuple[VitCandidate, ...]
    packings: tuple[int, ...]
    cols: tuple[int, ...]
    lanes: tuple[int, ...]
    acc_bits: tuple[int, int]
    simulations: dict
    timer: Timer = dataclasses.field(compare=False, repr=False)


def check_vit_args(lut_cap: float, lanes: tuple[int, ...]) -> None:
    """Raise :class:`ConfigError` unless the cap and lane counts may be searched."""
    check_fraction("lut_cap", lut_cap)
    if lut_cap <= 0:
        raise ConfigError("lut_cap must be above 0, not 0")
    for n in lanes:
        check_int_range("lanes", n, 1, 1 << 16)


def vit_bases(wl: Workload, template: Accelerator, bits: int,
              packings: tuple[int, ...] | None = None, acc_bits: int | None = None
              ) -> tuple[Accelerator, Accelerator, tuple[int, ...], tuple[int, int]]:
    """Check the search's arguments before any work (``sim.search.search_base``): the
    templates of the mixed and the DSP-only engines (each with its accumulator,
    :func:`vit_acc_bits`, or both with ``acc_bits``, at least the mixed engines' need),
    the packings and both accumulator widths."""
    attention_shape(wl)
    e = template.engine
    need = vit_acc_bits(wl, bits, e.lut_scheme, e.act_signed)
    if acc_bits is not None:
        check_int_range("acc_bits", acc_bits, need[0], 64,
                        f"(what {wl.name} needs at {bits} bits with {e.lut_scheme} rows, up to "
                        f"64)")
        need = (acc_bits, acc_bits)
    # every engine starts from the deepest load block and gets the deepest that fits
    memory = dataclasses.replace(template.memory, k_tile=max(K_TILES))
    deep = dataclasses.replace(template, memory=with_banks(memory, template.engine))
    mixed, tried, _ = search_base(wl, deep, bits, False, packings, acc_bits=need[0])
    fixed, _, _ = search_base(wl, deep, bits, False, packings, acc_bits=need[1])
    return mixed, fixed, tried, need


def _with_lanes(acc: Accelerator, lanes: int) -> Accelerator:
    return dataclasses.replace(acc, vector=dataclasses.replace(acc.vector, lanes=lanes))


def _mixes(mixed: Accelerator, lut_cap: float, cols: int, pack: int, fit: Fit
           ) -> list[Accelerator]:
    """The mixed engines of one (packing, columns, lanes): :data:`DSP_SHARES` of the most
    DSP rows that fit beside a LUT core, each with the largest LUT core beside them."""
    base, top = most_dsp_only(mixed, lut_cap, cols, pack, fit)
    if top is None:
        return []
    # the LUT core's post-processing takes one DSP slice per column from the DSP core
    first = most_dsp_rows(base, lut_cap, cols, 1,
                          min(top.engine.dsp_rows, (base.part.dsp - 2 * cols) * pack // cols),
                          fit)
    if first is None:
        return []
    mixes, seen = [], set()
    for share in DSP_SHARES:
        rd = max(1, round(first.engine.dsp_rows * share))
        if rd in seen:
            continue
        seen.add(rd)
        rl = most_lut_rows(base, lut_cap, cols, rd, fit)
        acc = fitted_accel(base, lut_cap, fit, dsp_rows=rd, lut_rows=rl, cols=cols) \
            if rl else None
        if acc is not None:
            mixes.append(acc)
    return mixes


def _tiled(timer: Timer, c: VitCandidate, lut_cap: float) -> VitCandidate:
    """``c`` timed in ``cycle`` mode at the load-block depth of :data:`K_TILES` that fits and
    runs fastest there (at ``c``'s split; ``c``'s own depth on a tie). Cycle mode, not the
    analytical bound: a shallow ring (R6) lets loads run only a block or two ahead, which the
    bound does not see since R7's requests overlap their latency."""
    best = timer.time(c.design, c.lut_per_head, "cycle")
    for kt in K_TILES:
        if kt == c.k_tile:
            continue
        acc = _with_k_tile(c.design, kt)
        if not vit_fits(acc, lut_cap, timer.attn):
            continue
        t = timer.time(acc, c.lut_per_head, "cycle")
        if t.cycles < best.cycles:
            best = t
    return best


def _with_k_tile(acc: Accelerator, k_tile: int) -> Accelerator:
    """``acc`` with load blocks ``k_tile`` deep (its banks grown to hold a tile)."""
    memory = dataclasses.replace(acc.memory, k_tile=k_tile)
    return dataclasses.replace(acc, memory=with_banks(memory, acc.engine))


def _largest(lo: int, hi: int, ok: Callable[[int], bool]) -> int:
    """The largest ``n`` in ``lo..hi`` with ``ok(n)`` (``ok`` monotone: true up to some
    ``n``, false above); ``lo - 1`` if none."""
    if not ok(lo):
        return lo - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _rows_like(design: Accelerator, dsp_rows: int) -> dict:
    """Engine rows with ``dsp_rows`` DSP rows and LUT rows in ``design``'s ratio."""
    e = design.engine
    lut = max(1, round(e.lut_rows * dsp_rows / e.dsp_rows)) if e.lut_rows else 0
    return {"dsp_rows": dsp_rows, "lut_rows": lut, "cols": e.cols}


def _rescaled(design: Accelerator, lanes: int, lut_cap: float, fit: Fit
              ) -> Accelerator | None:
    """``design`` with ``lanes`` vector lanes and the most DSP rows (LUT rows in its ratio)
    that fit beside them, from the deepest load block; None if none does."""
    e = design.engine
    base = _with_k_tile(_with_lanes(design, lanes), max(K_TILES))
    hi = (design.part.dsp - (2 if e.lut_rows else 1) * e.cols) * e.dsp_packing // e.cols
    if hi < 1:
        return None

    def build(rd: int) -> Accelerator | None:
        return fitted_accel(base, lut_cap, fit, **_rows_like(design, rd))

    rd = _largest(1, hi, lambda r: build(r) is not None)
    return build(rd) if rd >= 1 else None


def _leaders(cands: list[VitCandidate]) -> list[VitCandidate]:
    """The :data:`FINALISTS` fastest mixed designs and the fastest DSP-only one."""
    by_speed = sorted(cands, key=lambda c: c.cycles)
    mixed = [c for c in by_speed if c.lut_per_head > 0][:FINALISTS]
    return [*mixed, next(c for c in by_speed if c.lut_per_head == 0)]


def explore_vit(wl: Workload, template: Accelerator, bits: int, lut_cap: float = 0.8,
                packings: tuple[int, ...] | None = None, lanes: tuple[int, ...] = LANES,
                on_step: Callable[[int, int], None] | None = None,
                acc_bits: int | None = None) -> VitExploration:
    """Search ``wl`` (a transformer) on ``template``'s part at ``bits`` (see the module
    docstring). ``lut_cap``: the fraction of the part's LUTs the design may use;
    ``packings``: the DSP packings tried (default: every one the part allows at the width);
    ``lanes``: the vector-lane counts tried; ``on_step(done, total)`` after each (packing,
    columns) of the sweep and each design of the later stages; ``acc_bits``: the
    accumulator of every engine (default: the narrowest each needs, :func:`vit_bases`)."""
    check_vit_args(lut_cap, lanes)
    attn = attention_shape(wl)
    mixed, fixed, tried, need = vit_bases(wl, template, bits, packings, acc_bits)
    cols_tried = token_cols(attn.tokens)
    timer = Timer(wl, attn)

    def fit(acc: Accelerator, cap: float) -> bool:
        return vit_fits(acc, cap, attn)

    sweep: list[VitCandidate] = []
    steps = [(p, c) for p in tried for c in cols_tried]
    total = len(steps) + 2 * (FINALISTS + 1)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if on_step is not None:
            on_step(done, total)

    # 1. engine split and fraction: the DSP-only engine beside each vector unit, the mixed
    #    engines beside the one that made it fastest
    for pack, cols in steps:
        onlys = []
        for n in lanes:
            _, only = most_dsp_only(_with_lanes(fixed, n), lut_cap, cols, pack, fit)
            if only is not None:
                onlys.append(timer.time(only, 0, "analytical"))
        sweep.extend(onlys)
        n = min(onlys, key=lambda c: c.cycles).lanes if onlys else lanes[len(lanes) // 2]
        sweep.extend(best_split(timer, acc)
                     for acc in _mixes(_with_lanes(mixed, n), lut_cap, cols, pack, fit))
        step()
    if not any(c.lut_per_head == 0 for c in sweep):
        raise ConfigError(f"no design fits part {template.part.name} at {bits} bits within "
                          f"{lut_cap:g} of its LUTs")
    # 2. vector lanes: the leaders rebuilt beside each other vector unit
    for c in _leaders(sweep):
        for n in lanes:
            if n == c.lanes:
                continue
            acc = _rescaled(c.design, n, lut_cap, fit)
            if acc is not None:
                sweep.append(best_split(timer, acc))
        step()
    # 3. tiling, then cycle mode
    finalists = []
    for c in _leaders(sweep):
        finalists.append(_tiled(timer, c, lut_cap))
        step()
    return VitExploration(wl.name, template, bits, lut_cap, attn, tuple(sweep),
                          tuple(finalists), tried, cols_tried, tuple(lanes), need,
                          timer.count, timer)


def pareto(cands: tuple[VitCandidate, ...] | list[VitCandidate]) -> list[VitCandidate]:
    """The designs no other design beats on FPS, LUT and DSP at once (at least as good on
    all three, better on one), fastest first."""
    front = []
    for c in cands:
        if not any(o.fps >= c.fps and o.lut <= c.lut and o.dsp <= c.dsp
                   and (o.fps, -o.lut, -o.dsp) != (c.fps, -c.lut, -c.dsp) for o in cands):
            front.append(c)
    uniq = {(c.fps, c.lut, c.dsp): c for c in front}
    return sorted(uniq.values(), key=lambda c: (-c.fps, c.lut, c.dsp))


def best_designs(x: VitExploration) -> tuple[VitCandidate, VitCandidate, VitCandidate]:
    """The fastest mixed finalist (cycle mode; the DSP-only one when no mixed design fits),
    the DSP-only finalist, and the faster of the two (the recommended design)."""
    mixed = [c for c in x.finalists if c.lut_per_head > 0]
    base = x.finalists[-1]
    best = min(mixed, key=lambda c: c.cycles) if mixed else base
    return best, base, best if best.cycles < base.cycles else base


def _shrunk(timer: Timer, c: VitCandidate, fps: float, lut_cap: float
            ) -> VitCandidate | None:
    """``c``'s design with the fewest DSP rows (its LUT rows in the same ratio) that still
    runs at ``fps`` in cycle mode; None if ``c`` itself does not."""
    runs: dict[int, VitCandidate | None] = {}

    def at(rd: int) -> VitCandidate | None:
        if rd not in runs:
            acc = fitted_accel(c.design, lut_cap,
                               lambda a, cap: vit_fits(a, cap, timer.attn),
                               **_rows_like(c.design, rd))
            runs[rd] = None if acc is None else timer.time(acc, c.lut_per_head, "cycle")
        return runs[rd]

    def misses(rd: int) -> bool:
        t = at(rd)
        return t is None or t.fps < fps

    rows = c.design.engine.dsp_rows
    last_miss = _largest(1, rows, misses)  # more rows never run slower (sim.timing R2)
    return None if last_miss == rows else at(last_miss + 1)


def meet_target(x: VitExploration, fps: float) -> tuple[VitCandidate | None, int]:
    """VAQF's loop: the smallest design (:meth:`VitCandidate.size`) that runs at ``fps``
    in cycle mode, shrunk from each design of the Pareto front that reaches it, and how
    many were shrunk; None if none reaches it."""
    check_real("fps_target", fps, 0, math.inf, lo_open=True)
    front = [c for c in pareto(x.sweep) if c.fps >= fps]
    met = [s for s in (_shrunk(x.timer, c, fps, x.lut_cap) for c in front) if s is not None]
    if not met:
        return None, len(front)
    return min(met, key=lambda c: (c.size(x.lut_cap), -c.fps)), len(front)


def assumptions(x: VitExploration) -> dict:
    """What the search took as given: the template, the grid and the budgets."""
    t = x.template
    e, m = t.engine, t.memory
    return {
        "template": t.name, "part": dataclasses.asdict(t.part), "clock_mhz": t.clock_mhz,
        "weight_bits": x.bits, "act_bits": x.bits, "act_signed": e.act_signed,
        "lut_scheme": e.lut_scheme, "acc_bits_mixed": x.acc_bits[0],
        "acc_bits_dsp_only": x.acc_bits[1], "tokens": x.attn.tokens,
        "head_dim": x.attn.head_dim, "vector_row_words": x.attn.row_words,
        "memory": dataclasses.asdict(m), "vector_costs": dict(t.vector.costs),
        "lut_cap": x.lut_cap,
        "budget": "engine (its weight buffer carrying the attention's K and V blocks, R11b) + "
                  "vector unit within the part's DSP, FF and BRAM36 and lut_cap of its LUTs",
        "packings": list(x.packings), "cols": list(x.cols), "lanes": list(x.lanes),
        "dsp_shares": list(DSP_SHARES), "k_tiles": list(K_TILES),
        "fraction": f"b LUT rows in every {x.attn.head_dim} (per head of q, k, v), local "
                    f"search from the balance point",
        "finalists": FINALISTS,
        "modes": "sweep analytical (memory stalls as their lower bound); finalists, "
                 "target and best in cycle mode",
    }


def summarize(x: VitExploration, fps_target: float | None = None) -> dict:
    """What ``fpim search vit --json`` prints: the fastest mixed design, the DSP-only
    baseline, the speedup, the recommended design (the faster of the two; with
    ``fps_target`` the smallest that meets it) as a preset, the Pareto front and the
    assumptions."""
    best, base, pick = best_designs(x)
    out = {
        "workload": x.workload, "part": x.template.part.name, "bits": x.bits,
        "clock_mhz": x.template.clock_mhz, "lut_scheme": x.template.engine.lut_scheme,
        "best": best.to_dict(), "dsp_only": base.to_dict(),
        "speedup": base.cycles / best.cycles,
        "mixing_pays": best is not base and best.cycles < base.cycles,
        "blocks": {k: v.to_dict() for k, v in design_blocks(best.design, x.attn).items()},
        "pareto": [c.to_dict() for c in pareto(x.sweep)],
        "candidates": len(x.sweep), "simulations": dict(x.simulations),
        "reference": REFERENCE, "assumptions": assumptions(x),
    }
    if fps_target is not None:
        t, tried = meet_target(x, fps_target)
        out["target"] = {"fps": fps_target, "met": t is not None, "front_designs": tried,
                         "design": None if t is None else t.to_dict(),
                         "size": None if t is None else t.size(x.lut_cap)}
        out["simulations"] = dict(x.simulations)
        if t is not None:
            pick = t
    out["recommended"] = pick.to_dict()
    data = pick.design.to_dict()
    data["name"] = f"{x.template.name}_vit"
    out["design"] = data
    return out
