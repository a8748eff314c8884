"""MSQ ratio search: the SP2 fraction and engine split with the most throughput on a part.

Mix and Match (arXiv 2012.04240) picks the SP2 : fixed row ratio from the FPGA's LUT : DSP
budget. :func:`explore_msq` does this with the simulator: for each column count it gives the
DSP core every DSP slice the part has left after post-processing, sweeps the LUT core's
rows up to the LUT budget (BRAM and FF budgets are checked by the resource model; an engine
whose load buffers do not fit the BRAM gets the deepest load block ``memory.k_tile`` that
fits, halving the preset's down to :data:`MIN_K_TILE`), and for
each engine sweeps the SP2 fraction (0 to 1 in steps of 0.05); engines may use at most
``lut_cap`` (default 80%) of the LUTs; every candidate is timed with the ``analytical``
mode (exact compute; memory as its lower bound) and the fastest wins. All of this for each
DSP packing the part allows at the width (1, 2, and 4 on DSP48E2 at <= 4 bits). The
baseline is the best DSP-only engine (no LUT core, all rows fixed point) on the same part,
over the same packings; the result also gives the speedup over the best DSP-only engine
of each packing.

Every engine is a whole :class:`~sim.arch.Accelerator` built on a template (a preset: its
part, memory, clock, vector unit, accumulator width, LUT scheme and activation sign; only
the engine's rows, columns, packing and widths and the buffer banks change), so the
design the search reports is the design :mod:`sim.engine` and :mod:`sim.resources` see
when it is simulated (:func:`design_yaml` writes it as a preset). The space of designs is
:func:`engine_designs`; a new search dimension (buffers, tiling) is a change there.

A workload that brings its own row schemes (``own_schemes``: a quantized artifact, whose
per-layer SP2 and fixed row counts and widths are fixed) is timed as it is: the search then
varies only what the artifact leaves free, the engine (DSP and LUT rows, columns, packing,
load block). An artifact with LUT-scheme rows runs only on engines with a LUT core, so the
recommended design is then always the fastest mixed engine; the DSP-only baseline times the
same shapes with every row fixed point (the network quantized without SP2), for the speedup.
An artifact without LUT-scheme rows gets only DSP-only engines (a LUT core would idle).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from quant.errors import ConfigError, check_choice, check_int_range
from quant.formats import Scheme, weight_format
from quant.ref import required_acc_bits
from sim.arch import Accelerator, FpgaPart, GemmEngine, Memory, allowed_packings, get_part
from sim.config import CONFIG_DIR, load_accelerator, load_part, preset_names, read_yaml
from sim.engine import simulate
from sim.resources import fits
from sim.workload import Workload, assign_fraction, attention_of

#: Column counts the search tries.
COLS = (8, 12, 16, 24, 32, 48, 64)
#: DSP packings the search tries (``engine.dsp_packing``; 4 needs DSP48E2 and <= 4 bits).
PACKINGS = (1, 2, 4)
#: SP2 fractions each mixed engine is timed at.
FRACTIONS = tuple(i / 20 for i in range(21))
#: LUT-core sizes tried per (packing, columns): this many steps up to the largest that fits.
LUT_STEPS = 12
#: Shallowest load block the search gives an engine whose buffers would not fit the BRAM.
MIN_K_TILE = 256


@dataclass(frozen=True)
class Candidate:
    """One engine at its fastest SP2 fraction (``design``: the whole accelerator timed)."""

    dsp_rows: int
    lut_rows: int
    cols: int
    dsp_packing: int
    sp2_fraction: float
    cycles: int
    compute_cycles: int
    fps: float
    lut: int
    dsp: int
    bram36: float
    k_tile: int
    design: Accelerator | None = dataclasses.field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        """The figures (not the design) as plain data."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "design"}


def template_for(part_name: str) -> Accelerator:
    """The shipped preset for ``part_name`` (memory, clock, vector unit), validated once."""
    part = get_part(part_name)
    found = shipped_template(part)
    if found is None:  # pragma: no cover - every shipped part has a preset
        raise ConfigError(f"part must have a shipped preset, not {part_name!r}")
    return found


def plain_engine(e: GemmEngine) -> GemmEngine:
    """``e`` with one column group and a post-processor per core: the searches' designs
    vary rows, columns and packing, not those options (R3c, R4)."""
    return dataclasses.replace(e, group_b_cols=0, shared_post=False)


def shipped_template(part: FpgaPart) -> Accelerator | None:
    """The shipped preset (not ``tiny``) on a part named like ``part``, with ``part``'s
    budget and a :func:`plain_engine`; None if there is none."""
    for name in preset_names():
        if name == "tiny":
            continue
        data = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
        if isinstance(data, dict) and str(data.get("part", "")).upper() == part.name.upper():
            acc = load_accelerator(name)
            return dataclasses.replace(acc, part=part, engine=plain_engine(acc.engine))
    return None


def search_template(spec: str | Path, overrides: list[str] | tuple[str, ...] = ()
                    ) -> Accelerator:
    """The template of a search on ``spec``: a preset YAML (a file with an ``engine``
    section, ``overrides`` applied; it need not fit its part, only the designs must) as it
    is, else the part that ``spec`` names or describes (:func:`sim.config.load_part`) with
    :func:`part_template`."""
    path = Path(spec)
    if path.suffix:
        data = read_yaml(path, "part file")
        if isinstance(data, dict) and "engine" in data:
            return load_accelerator(path, overrides, fit=False)
    if overrides:
        raise ConfigError(f"--set applies only to a preset YAML --part, not --part {spec}")
    return part_template(load_part(spec))


def part_template(part: FpgaPart) -> Accelerator:
    """The template of a search on ``part`` alone: the shipped preset for a part of that
    name, else the dataclass defaults (memory, vector unit, 100 MHz, engine widths)."""
    found = shipped_template(part)
    if found is not None:
        return found
    return Accelerator(f"{part.name.lower()}_defaults", part,
                       GemmEngine(dsp_rows=1, lut_rows=0, cols=COLS[0]))


def with_banks(memory: Memory, e: GemmEngine) -> Memory:
    """``memory`` with each buffer bank grown (whole KiB) to hold one tile (R5) if needed."""
    kt = memory.k_tile
    need = {"weight_bank_kib": e.rows * kt * e.weight_bits,
            "act_bank_kib": e.cols * kt * e.act_bits,
            "out_bank_kib": e.rows * e.cols * e.act_bits}
    return dataclasses.replace(memory, **{k: max(getattr(memory, k), -(-bits // 8192))
                                          for k, bits in need.items()})


#: A fit test: does the accelerator fit its part within a fraction of its LUTs?
Fit = Callable[[Accelerator, float], bool]


def fitted_accel(base: Accelerator, lut_cap: float = 1.0, fit: Fit = fits,
           **engine) -> Accelerator | None:
    """``base`` with engine fields changed, banks grown and the deepest ``k_tile`` (the
    preset's, halved down to :data:`MIN_K_TILE`) with which it fits the part within
    ``lut_cap`` of its LUTs (``fit``, by default :func:`sim.resources.fits`); None if none
    does."""
    e = dataclasses.replace(base.engine, **engine)
    kt = base.memory.k_tile
    while True:
        memory = with_banks(dataclasses.replace(base.memory, k_tile=kt), e)
        acc = dataclasses.replace(base, engine=e, memory=memory)
        if fit(acc, lut_cap):
            return acc
        if kt <= MIN_K_TILE:
            return None
        kt = max(MIN_K_TILE, -(-kt // 2))


def most_dsp_rows(base: Accelerator, lut_cap: float, cols: int, lut_rows: int,
                   start: int, fit: Fit = fits) -> Accelerator | None:
    """The engine with the most DSP rows (at most ``start``) that fits next to ``lut_rows``
    LUT rows; None if none does.

    The DSP slices bind first (the part's count less the post-processing lanes), but LUTs
    or BRAM may bind before them.
    """
    rows = start
    while rows > 0:
        acc = fitted_accel(base, lut_cap, fit, dsp_rows=rows, lut_rows=lut_rows, cols=cols)
        if acc is not None:
            return acc
        rows -= max(1, rows // 16)
    return None


def most_lut_rows(base: Accelerator, lut_cap: float, cols: int, dsp_rows: int,
                  fit: Fit = fits) -> int:
    """The most LUT-core rows that fit next to ``dsp_rows`` DSP rows (0 if none does)."""
    if fitted_accel(base, lut_cap, fit, dsp_rows=dsp_rows, lut_rows=1, cols=cols) is None:
        return 0
    hi = 1
    while fitted_accel(base, lut_cap, fit, dsp_rows=dsp_rows, lut_rows=hi * 2, cols=cols) \
            is not None:
        hi *= 2
    lo_ok, hi_bad = hi, hi * 2
    while hi_bad - lo_ok > 1:
        mid = (lo_ok + hi_bad) // 2
        if fitted_accel(base, lut_cap, fit, dsp_rows=dsp_rows, lut_rows=mid, cols=cols) is not None:
            lo_ok = mid
        else:
            hi_bad = mid
    return lo_ok


@dataclass(frozen=True)
class FractionPoint:
    """One engine timed with one SP2 fraction."""

    sp2_fraction: float
    cycles: int
    fps: float


@dataclass(frozen=True)
class Exploration:
    """Every engine :func:`explore_msq` timed: the mixed ones with their fraction sweeps
    (``sweeps[i]`` belongs to ``mixed[i]``) and the DSP-only ones, each at its best fraction;
    ``base`` is the template as searched (widths, accumulator, memory), ``acc_bits_needed``
    the accumulator the workload needs at ``bits``.
    """

    workload: str
    template: Accelerator
    bits: int
    ideal_memory: bool
    lut_cap: float
    mixed: tuple[Candidate, ...]
    sweeps: tuple[tuple[FractionPoint, ...], ...]
    dsp_only: tuple[Candidate, ...]
    base: Accelerator | None = None
    packings: tuple[int, ...] = ()
    acc_bits_needed: int = 0
    batch: int = 1
    own_schemes: bool = False


def lut_share(wl: Workload) -> float:
    """The share of ``wl``'s GEMM rows (over groups) on the LUT core, by its own splits."""
    gemms = [o for o in wl.gemms if o.splits is not None]
    lut = sum(o.rows_lut for o in gemms)
    total = lut + sum(o.rows_fixed for o in gemms)
    return lut / total if total else 0.0


def _evaluate(wl: Workload, acc: Accelerator, fractions: tuple[float, ...] | None
              ) -> tuple[Candidate, tuple[FractionPoint, ...]]:
    """The engine at its fastest fraction, and every fraction it could run; with
    ``fractions`` None, ``wl`` with its own row splits (its :func:`lut_share`)."""
    best = None
    sweep = []
    if fractions is None:
        r = simulate(wl, acc, "analytical")
        f = lut_share(wl)
        sweep.append(FractionPoint(f, r.total_cycles, r.fps))
        best = (f, r)
        fractions = ()
    for f in fractions:
        if acc.engine.lut_rows == 0 and f > 0:
            continue
        if acc.engine.dsp_rows == 0 and f < 1:
            continue
        r = simulate(assign_fraction(wl, f, force=True), acc, "analytical")
        sweep.append(FractionPoint(f, r.total_cycles, r.fps))
        if best is None or r.total_cycles < best[1].total_cycles:
            best = (f, r)
    assert best is not None
    f, r = best
    res = r.resources
    e = acc.engine
    return (Candidate(e.dsp_rows, e.lut_rows, e.cols, e.dsp_packing, f, r.total_cycles,
                      r.compute_cycles, r.fps, res["lut"], res["dsp"], res["bram36"],
                      acc.memory.k_tile, acc),
            tuple(sweep))


def check_msq_args(bits: int, packings: tuple[int, ...] | None) -> None:
    """Raise :class:`ConfigError` unless ``bits`` and every packing may be searched."""
    check_int_range("bits", bits, 3, 8, "(weights and activations; sp2 needs 3..8)")
    for pk in packings or ():
        check_choice("packing", pk, PACKINGS)


def search_msq(wl: Workload, part: str, bits: int, ideal_memory: bool = False,
               lut_steps: int = LUT_STEPS, lut_cap: float = 0.8,
               packings: tuple[int, ...] | None = None,
               on_step: Callable[[int, int], None] | None = None) -> dict:
    """Best mixed engine and SP2 fraction for ``wl`` on ``part`` at ``bits``, vs DSP-only.

    ``lut_cap`` is the fraction of the part's LUTs the engine may use (headroom for
    routing and the rest of the design). ``packings``: the DSP packings tried for both the
    mixed and the DSP-only engines, each one the part allows at the width (default: all of
    those). ``on_step(done, total)`` is called after each (packing, column count) searched.
    The engines are built on the part's shipped preset (:func:`template_for`).
    """
    check_msq_args(bits, packings)
    return summarize(explore_msq(wl, template_for(part), bits, ideal_memory, lut_steps,
                                 lut_cap, packings, on_step))


def acc_bits_needed(wl: Workload, bits: int) -> int:
    """Accumulator bits the GEMMs of ``wl`` need at ``bits`` (either weight scheme)."""
    max_k = max(o.k for o in wl.gemms)
    w_max = max(weight_format(Scheme.FIXED, bits).max_abs_int,
                weight_format(Scheme.SP2, bits).max_abs_int)
    return min(64, required_acc_bits(max_k, w_max, (1 << bits) - 1))


def search_base(wl: Workload, template: Accelerator, bits: int, ideal_memory: bool = False,
                packings: tuple[int, ...] | None = None, acc_bits: int | None = None,
                own_schemes: bool = False) -> tuple[Accelerator, tuple[int, ...], int]:
    """Check the search's arguments before any work: the template at ``bits`` (memory
    unlimited with ``ideal_memory``), the packings to try, and the accumulator bits the
    workload needs. The template's accumulator is used as it is (one narrower than the
    workload needs is refused, after the packings, unless ``own_schemes``: an artifact's
    accumulator bound is checked on its own weights, :func:`sim.functional.check_artifact`),
    or ``acc_bits`` when given (the caller's own need)."""
    check_msq_args(bits, packings)
    p = template.part
    allowed = list(allowed_packings(p.dsp_type, bits))
    why = ""
    if any(getattr(o, "kind", "") == "matmul" for o in wl.ops):
        allowed, why = [1], f" for {wl.name}, whose attention matmuls need an unpacked DSP core"
    refused = sorted(set(packings or ()) - set(allowed))
    if refused:
        raise ConfigError(f"packing must be one that {p.name} ({p.dsp_type}) allows at "
                          f"{bits} bits{why} ({', '.join(map(str, allowed))}), not "
                          f"{', '.join(map(str, refused))}")
    need = acc_bits_needed(wl, bits) if acc_bits is None else acc_bits
    e = template.engine
    if acc_bits is not None:
        e = dataclasses.replace(e, acc_bits=acc_bits)
    if e.acc_bits < need and not own_schemes:
        raise ConfigError(f"engine.acc_bits of {template.name} must be at least {need} for "
                          f"{wl.name} at {bits} bits (a preset YAML --part with --set "
                          f"engine.acc_bits={need}), "
                          f"not {e.acc_bits}")
    memory = template.memory
    if ideal_memory:
        memory = dataclasses.replace(memory, dram_bytes_per_cycle=None, dram_latency=0)
    # the smallest engine at the width: the designs replace its rows, columns and packing
    engine = dataclasses.replace(plain_engine(e), dsp_rows=1, lut_rows=0, cols=COLS[0],
                                 weight_bits=bits, act_bits=bits, dsp_packing=1)
    base = dataclasses.replace(template, engine=engine, memory=with_banks(memory, engine))
    return base, tuple(sorted(set(packings))) if packings else tuple(allowed), need


def explore_msq(wl: Workload, template: Accelerator, bits: int, ideal_memory: bool = False,
                lut_steps: int = LUT_STEPS, lut_cap: float = 0.8,
                packings: tuple[int, ...] | None = None,
                on_step: Callable[[int, int], None] | None = None,
                own_schemes: bool = False) -> Exploration:
    """Time every engine the MSQ search considers on ``template``'s part, with its memory
    (unlimited with ``ideal_memory``), clock, vector unit and accumulator width; arguments
    as :func:`search_msq`. With ``own_schemes``, ``wl``'s own row splits (an artifact's)
    are timed instead of the fraction sweep (module docstring)."""
    base, tried, need = search_base(wl, template, bits, ideal_memory, packings,
                                    own_schemes=own_schemes)
    has_lut = own_schemes and lut_share(wl) > 0
    mixed_fractions = None if own_schemes else FRACTIONS
    # the DSP-only engines run an artifact without LUT-scheme rows as it is; with some, they
    # are the baseline on the same shapes all fixed point
    only_fractions = None if own_schemes and not has_lut else (0.0,)
    attn = attention_of(wl)  # a transformer's designs carry the vector unit (as simulate's)
    fit = fits if attn is None else functools.partial(fits, attn=attn)
    mixed: list[tuple[Candidate, tuple[FractionPoint, ...]]] = []
    dsp_only: list[Candidate] = []
    steps = [(pack, cols) for pack in tried for cols in COLS]
    for done, (pack, cols) in enumerate(steps, 1):
        only, mixes = engine_designs(base, lut_cap, cols, pack, lut_steps, fit)
        if only is not None:
            dsp_only.append(_evaluate(wl, only, only_fractions)[0])
        if has_lut or not own_schemes:
            mixed.extend(_evaluate(wl, acc, mixed_fractions) for acc in mixes)
        if on_step is not None:
            on_step(done, len(steps))
    if not dsp_only:
        raise ConfigError(f"no engine fits part {template.part.name} at {bits} bits")
    if has_lut and not mixed:
        raise ConfigError(f"no engine with a LUT core (the artifact's {base.engine.lut_scheme} "
                          f"rows need one) fits part {template.part.name} at {bits} bits")
    return Exploration(wl.name, template, bits, ideal_memory, lut_cap,
                       tuple(c for c, _ in mixed), tuple(s for _, s in mixed),
                       tuple(dsp_only), base, tried, need, wl.batch, own_schemes)


def best_designs(x: Exploration) -> tuple[Candidate, Candidate, Candidate]:
    """The fastest mixed engine (the fastest DSP-only one when none fits), the fastest
    DSP-only engine, and the fastest of the two (the design the search recommends; the
    mixed one whenever the workload's own schemes need a LUT core)."""
    best = min(x.mixed or x.dsp_only, key=lambda c: c.cycles)
    base_best = min(x.dsp_only, key=lambda c: c.cycles)
    if x.own_schemes and x.mixed:
        return best, base_best, best
    return best, base_best, best if best.cycles < base_best.cycles else base_best


def assumptions(x: Exploration) -> dict:
    """Everything the search took as given: the template and what it supplies, the search
    grid, the budgets and the timing mode."""
    t = x.base if x.base is not None else x.template
    e, m = t.engine, t.memory
    return {
        "template": x.template.name, "part": dataclasses.asdict(t.part),
        "clock_mhz": t.clock_mhz, "weight_bits": x.bits, "act_bits": x.bits,
        "act_signed": e.act_signed, "lut_scheme": e.lut_scheme,
        "acc_bits": e.acc_bits, "acc_bits_needed": x.acc_bits_needed,
        "memory": dataclasses.asdict(m), "vector_lanes": t.vector.lanes,
        "ideal_memory": x.ideal_memory,
        "lut_cap": x.lut_cap, "dsp_budget": "every DSP slice left after post-processing "
                                            "(one per column per core)",
        "packings": list(x.packings), "cols": list(COLS),
        "sp2_fractions": ([c.sp2_fraction for c in (x.mixed or x.dsp_only)[:1]]
                          if x.own_schemes else list(FRACTIONS)),
        "schemes": _schemes_note(x),
        "lut_core_sizes_per_engine": LUT_STEPS,
        "buffer_banks": "the template's, grown to hold one tile (R5) where needed",
        "mode": "analytical (exact compute; memory stalls as their lower bound)",
        "batch": x.batch,
    }


def _schemes_note(x: Exploration) -> str:
    """How the rows were given their schemes (``assumptions()["schemes"]``)."""
    if not x.own_schemes:
        return ("each engine timed at every SP2 fraction (rows on the LUT core), the best "
                "kept; DSP-only engines all fixed point")
    if x.mixed:
        return ("the artifact's own per-layer rows (fixed and LUT-scheme counts and widths "
                "as quantized; only the engine varies); the recommended design is the fastest "
                "with a LUT core, which the artifact needs; the DSP-only baseline times the "
                "same shapes with every row fixed point (it cannot run the artifact)")
    return ("the artifact's own per-layer rows, all fixed point: DSP-only engines only (a LUT "
            "core would idle); only the engine varies")


def summarize(x: Exploration) -> dict:
    """What ``fpim search msq --json`` prints: the fastest engine, the fastest DSP-only
    engine (also per packing), the speedups, whether mixing pays, the recommended design
    (a preset: :func:`design_yaml`) and every assumption."""
    best, base_best, pick = best_designs(x)
    by_packing = {}
    for pack in sorted({c.dsp_packing for c in x.dsp_only}):
        b = min((c for c in x.dsp_only if c.dsp_packing == pack), key=lambda c: c.cycles)
        by_packing[pack] = {"dsp_only": b.to_dict(),
                            "speedup": b.cycles / best.cycles,
                            "compute_speedup": b.compute_cycles / best.compute_cycles}
    speedup = base_best.cycles / best.cycles
    return {
        "workload": x.workload, "part": x.template.part.name, "bits": x.bits,
        "ideal_memory": x.ideal_memory, "clock_mhz": x.template.clock_mhz,
        "packings": sorted(by_packing),
        "best": best.to_dict(), "dsp_only": base_best.to_dict(),
        "speedup": speedup,
        "compute_speedup": base_best.compute_cycles / best.compute_cycles,
        "mixing_pays": bool(x.mixed) and speedup > 1,
        "recommended": ("mixed" if pick is best and x.mixed and (speedup > 1 or x.own_schemes)
                        else "dsp_only"),
        "own_schemes": x.own_schemes,
        "design": _design_data(pick),
        "by_packing": by_packing,
        "paper_speedup": "2.1x-4.1x (arXiv 2012.04240, XC7Z020/XC7Z045)",
        "candidates": len(x.mixed) + len(x.dsp_only), "lut_cap": x.lut_cap,
        "assumptions": assumptions(x),
    }


def _design_data(c: Candidate) -> dict:
    """The preset data of ``c``'s design (loads back with :func:`sim.config.load_accelerator`),
    named after the template."""
    assert c.design is not None
    data = c.design.to_dict()
    data["name"] = f"{c.design.name}_msq"
    return data


def design_yaml(x: Exploration, header: str = "") -> str:
    """The recommended design of ``x`` as preset YAML, ``header`` as comment lines on top."""
    return preset_yaml(summarize(x)["design"], header)


def preset_yaml(data: dict, header: str = "") -> str:
    """Preset ``data`` as YAML, ``header`` as comment lines on top."""
    lines = "".join(f"# {ln}\n" if ln else "#\n" for ln in header.splitlines())
    return lines + yaml.safe_dump(data, sort_keys=False)


def engine_designs(base: Accelerator, lut_cap: float, cols: int, pack: int,
                   lut_steps: int = LUT_STEPS, fit: Fit = fits
                   ) -> tuple[Accelerator | None, list[Accelerator]]:
    """The designs searched at ``cols`` columns and DSP packing ``pack``: the DSP-only engine
    with the most DSP rows that fits (None if none does) and up to ``lut_steps`` mixed
    engines (LUT cores up to the largest that fits next to the most DSP rows left);
    ``fit`` decides what fits (:func:`sim.resources.fits` by default)."""
    base, acc0 = most_dsp_only(base, lut_cap, cols, pack, fit)
    if acc0 is None:
        return None, []
    # the LUT core's post-processing takes one DSP slice per column from the DSP core
    acc1 = most_dsp_rows(base, lut_cap, cols, 1,
                          min(acc0.engine.dsp_rows,
                              (base.part.dsp - 2 * cols) * pack // cols), fit)
    if acc1 is None:
        return acc0, []
    dsp_rows = acc1.engine.dsp_rows
    lo_ok = most_lut_rows(base, lut_cap, cols, dsp_rows, fit)  # largest LUT core beside it
    mixes = []
    for i in range(1, lut_steps + 1):
        lut_rows = max(1, round(lo_ok * i / lut_steps))
        acc = fitted_accel(base, lut_cap, fit, dsp_rows=dsp_rows, lut_rows=lut_rows, cols=cols)
        if acc is not None:
            mixes.append(acc)
    return acc0, mixes


def most_dsp_only(base: Accelerator, lut_cap: float, cols: int, pack: int, fit: Fit = fits
                  ) -> tuple[Accelerator, Accelerator | None]:
    """``base`` with DSP packing ``pack``, and on it the DSP-only engine with the most DSP
    rows that fits at ``cols`` columns (None if none does): every DSP slice left after the
    post-processing's (one per column) to start with."""
    base = dataclasses.replace(base, engine=dataclasses.replace(base.engine, dsp_packing=pack))
    return base, most_dsp_rows(base, lut_cap, cols, 0, (base.part.dsp - cols) * pack // cols,
                                fit)
