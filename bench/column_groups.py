"""Column groups and straddling tiles: what a second weight stream would buy (an estimate).

Issue 21's one unmet line is a layer's geometry: on an output-stationary array whose rows
share one weight stream, a 7x7 layer (N = 49 output pixels) on the XC7Z020's 12 columns
takes ``ceil(49 / 12) = 5`` column tiles per row step and fills 49 of their 60 column slots
(``shape_cap`` 81.7 %): the last tile's idle columns cannot take another row step's work,
whose weights differ. Split the columns into groups (7 + 5, say), give each group its own
weight stream, and a row step's N pixels can be dealt out among the groups' tiles, a
different split at every row step, so that the groups stay busy and end together. Or keep
one tile sequence but let a tile straddle two row steps: the tiles run over the flattened
``F * N`` outputs, ``C`` at a time, the columns left of a per-tile split point on row step
``f``, the others on ``f + 1`` (``ceil(F * N / C)`` tiles instead of ``F * ceil(N / C)``).

This script estimates both dataflows (the groups given by ``--groups``, then straddling). It
is not the engine fpim simulates and emits; no timing rule, simulator or RTL implements it.
For every layer of each model on the preset it takes the simulator's own row steps ``F`` and
column blocks ``J`` (rule R1, from ``sim.timing.shape_cycles``) and computes, for each
dataflow:

* for groups, the fewest tile times any dealing of the layer's ``F`` row steps allows (every
  tile takes ``K`` cycles whatever its width; dynamic programming over the splits of ``N``
  among the groups' tiles near the balanced share), hence the group dataflow's shape cap;
* the weight blocks that must be resident at once (for groups, with the dealing ordered to
  keep them in step: the furthest-apart row steps they work on; for straddling, the row
  steps of a tile; plus the block being loaded), which sizes the weight ring; the current
  engine needs two (``sim.timing.ring_steps``);
* the block RAM of that ring read by ``g`` streams (groups, or row steps of a tile) through
  one port ``g`` words wide that they take turns on (the write port stays free for loads),
  beside the activation buffers (one per group; straddling keeps today's) and the output
  FIFO, by ``sim.resources.map_memory``;
* the cycles when each row step's weight block (all rows, ``K`` steps) must be loaded
  before a tile on that row step starts, through the ring of that many blocks, on the DRAM
  channel's share the activations leave: every row step streams all ``N`` pixels' ``K``
  activations again (the tiles' pixel sets change from step to step, so no activation block
  is reused or resident, R5b), spread over the tile times: :func:`span_with_loads`,
  :func:`straddle_span`;
* an estimated MAC utilisation per compute-bound layer and run: the layer's measured cycles
  scaled by those cycles over its shape cycles (the engine keeps today's fill, drain and
  stalls on top), or today's cycles where that is not faster (the host would choose per
  layer; DRAM-bound layers unchanged), and the FPS that follows.

What it does not count: the LUTs of a second walker, tile sequencer and drain path (the
resource model's walker alone is ``sim.resources.WALKER_LUT``) or of straddling's weight
select in every PE and two row steps' parameters per drained row; that straddling runs row
steps outer (R3's order 1) on every layer of more than one row step; DRAM latency, the order
in which two groups' activation requests would share the channel, K chunks (a block is taken
as the whole ``min(K, k_tile)``) and command boundaries (a layer of ``groups`` GEMMs is
dealt as one).

Run: ``.venv/bin/python bench/column_groups.py [--accel xc7z020] [--models resnet50
resnet18] [--groups 7,5 9,3 6,6]``. Prints estimated figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from fpim.flows.simulate import load_workload, simulate
from sim.config import load_accelerator
from sim.resources import map_memory, top_memories
from sim.timing import ceil_div

#: Per group, tile counts tried on each side of the balanced share ``N / cols``.
SPREAD = 4


def pareto(points: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """The points no other point beats (is at most) in every coordinate."""
    return [p for p in points
            if not any(o != p and all(a <= b for a, b in zip(o, p, strict=True))
                       for o in points)]


def splits(n: int, widths: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Per-group tile counts that cover ``n`` pixels, each group within :data:`SPREAD`
    tiles of the balanced share, keeping only those no other split beats in every group."""
    share = n / sum(widths)
    lo = max(0, math.floor(share) - SPREAD)
    hi = math.ceil(share) + SPREAD
    out: list[tuple[int, ...]] = []
    first = widths[:-1]

    def rec(prefix: tuple[int, ...], covered: int) -> None:
        if len(prefix) == len(first):
            out.append((*prefix, max(0, ceil_div(n - covered, widths[-1]))))
            return
        for t in range(lo, hi + 1):
            rec((*prefix, t), covered + t * first[len(prefix)])

    rec((), 0)
    return pareto(out)


def deal(f: int, n: int, widths: tuple[int, ...]) -> list[tuple[int, ...]]:
    """A dealing of ``f`` row steps of ``n`` pixels with the fewest tile times (the largest
    group's tile count), as the list of per-step splits in the order that keeps the groups
    closest in step."""
    opts = splits(n, widths)
    # frontier: tile-count sums -> the multiset of splits reaching them (as option counts)
    front: dict[tuple[int, ...], tuple[int, ...]] = {(0,) * len(widths): (0,) * len(opts)}
    for _ in range(f):
        nxt: dict[tuple[int, ...], tuple[int, ...]] = {}
        for sums, counts in front.items():
            for i, o in enumerate(opts):
                key = tuple(a + b for a, b in zip(sums, o, strict=True))
                if key not in nxt:
                    nxt[key] = (*counts[:i], counts[i] + 1, *counts[i + 1:])
        # keep the Pareto front, and only sums within reach of the best makespan
        best = min(max(k) for k in nxt)
        front = {k: nxt[k] for k in pareto([k for k in nxt
                                            if max(k) <= best + SPREAD * len(widths)])}
    _, counts = min(front.items(), key=lambda kv: (max(kv[0]), sum(kv[0])))
    left = list(counts)
    order: list[tuple[int, ...]] = []
    acc = [0] * len(widths)
    for _ in range(f):  # greedy: the split that leaves the groups' totals closest
        i = min((i for i, c in enumerate(left) if c),
                key=lambda i: max(a + b for a, b in zip(acc, opts[i], strict=True))
                - min(a + b for a, b in zip(acc, opts[i], strict=True)))
        left[i] -= 1
        order.append(opts[i])
        acc = [a + b for a, b in zip(acc, opts[i], strict=True)]
    return order


def resident_blocks(order: list[tuple[int, ...]]) -> int:
    """Weight blocks needed at once: every group runs its row steps back to back (one time
    unit per tile); the blocks from the earliest row step a group still works on to the
    latest one another has started stay resident, and one more is being loaded."""
    events = []  # (start, end, step) per group
    for g in range(len(order[0])):
        t = 0
        spans = []
        for step, split in enumerate(order):
            if split[g]:
                spans.append((t, t + split[g], step))
                t += split[g]
        events.append(spans)
    times = sorted({s for spans in events for s, _, _ in spans})
    most = 1
    for t in times:
        active = [step for spans in events for s, e, step in spans if s <= t < e]
        if active:
            most = max(most, max(active) - min(active) + 1)
    return most + 1


def span_with_loads(order: list[tuple[int, ...]], k: int, slots: int, block_bytes: int,
                    load_bw: float) -> float:
    """Cycles of a dealing when every row step's weight block must be loaded before a group
    starts it: blocks load one after another at ``load_bw`` bytes a cycle, block ``n`` once
    block ``n - slots`` is released by every group (its ring slot free); the first block is
    in the ring at cycle 0 (prefetched by the GEMM before, as R10b does). Each tile takes
    ``k`` cycles; latency, fill and drain are not counted."""
    groups = len(order[0])
    t = [0.0] * groups
    released: list[float] = []
    channel = 0.0
    for step, split in enumerate(order):
        ready = 0.0
        if step:
            free = released[step - slots] if step >= slots else 0.0
            channel = max(channel, free) + block_bytes / load_bw
            ready = channel
        for g in range(groups):
            if split[g]:
                t[g] = max(t[g], ready) + split[g] * k
        released.append(max(t[g] for g in range(groups) if split[g]))
    return max(t)


def ramb18(width: int, depth: int, read: str = "transparent") -> int:
    """RAMB18 halves of a memory as ``sim.resources.map_memory`` maps it (a load buffer's
    read port is transparent)."""
    return round(2 * map_memory(width, depth, read).bram36)


def straddle(f: int, n: int, cols: int) -> list[tuple[int, int]]:
    """Tiles over the flattened ``f * n`` outputs of ``f`` row steps, ``cols`` at a time:
    per tile its first and last row step."""
    return [(t // n, (min(t + cols, f * n) - 1) // n) for t in range(0, f * n, cols)]


def straddle_span(tiles: list[tuple[int, int]], k: int, slots: int, block_bytes: int,
                  load_bw: float) -> float:
    """:func:`span_with_loads` for straddling tiles: one tile sequence of ``k`` cycles a
    tile, each waiting for the blocks of its row steps; block ``b`` loads once block
    ``b - slots`` is released (after the last tile that uses it)."""
    released: dict[int, float] = {}
    ready = {0: 0.0}
    channel = t = 0.0
    for f0, f1 in tiles:
        for b in range(len(ready), f1 + 1):
            channel = max(channel, released.get(b - slots, 0.0)) + block_bytes / load_bw
            ready[b] = channel
        t = max(t, ready[f1]) + k
        for b in range(f0, f1 + 1):
            released[b] = t
    return t


@dataclass(frozen=True)
class Candidate:
    """A dataflow to estimate: column groups of ``widths``, or straddling tiles (None)."""

    widths: tuple[int, ...] | None

    @property
    def name(self) -> str:
        if self.widths is None:
            return "straddling tiles"
        return "groups " + "+".join(map(str, self.widths))

    def plan(self, steps: int, n: int, cols: int) -> tuple[object, int, int]:
        """A layer's schedule, its tile times and the weight blocks it keeps resident."""
        if self.widths is None:
            tiles = straddle(steps, n, cols)
            return tiles, len(tiles), max(f1 - f0 + 1 for f0, f1 in tiles) + 1
        order = deal(steps, n, self.widths)
        return (order, max(sum(s[g] for s in order) for g in range(len(self.widths))),
                resident_blocks(order))

    def span(self, schedule, k: int, slots: int, block_bytes: int, load_bw: float) -> float:
        fn = straddle_span if self.widths is None else span_with_loads
        return fn(schedule, k, slots, block_bytes, load_bw)

    def streams(self, ring: int) -> int:
        """Weight words read per cycle: one per group, or per row step a tile spans."""
        return len(self.widths) if self.widths else ring - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accel", default="xc7z020", help="preset name or YAML")
    ap.add_argument("--models", nargs="+", default=["resnet50", "resnet18"])
    ap.add_argument("--groups", nargs="+", default=["7,5", "9,3", "6,6"],
                    help="column widths per group, comma-separated, summing to the columns")
    args = ap.parse_args()
    accel = load_accelerator(args.accel)
    e, k_tile = accel.engine, accel.memory.k_tile
    candidates = []
    for text in args.groups:
        try:
            widths = tuple(int(w) for w in text.split(","))
        except ValueError:
            widths = ()
        if len(widths) < 2 or min(widths) < 1 or sum(widths) != e.cols:
            ap.error(f"--groups: {text!r} must be two or more positive widths summing to "
                     f"the preset's {e.cols} columns")
        candidates.append(Candidate(widths))
    candidates.append(Candidate(None))
    runs = {}
    for model in args.models:
        wl, _ = load_workload(accel, model=model)
        r = simulate(accel, wl).result
        runs[model] = (r, r.to_dict()["layers"])
    mems = top_memories(accel)
    fifo18 = ramb18(*mems["out_fifo"])
    x_now = ramb18(*mems["x_buf"])
    part18 = 2 * accel.part.bram36
    now18 = ramb18(*mems["w_buf"]) + x_now + fifo18
    print(f"{args.accel}: {e.dsp_rows}+{e.lut_rows} rows x {e.cols}, k_tile {k_tile}; one "
          f"weight stream: ring of 2 blocks, buffers and FIFO {now18} RAMB18 of {part18}")
    for cand in candidates:
        plans = {model: [(la, *cand.plan(steps_of(la, e.cols), la["n"], e.cols))
                         for la in rows if la["bound"] == "compute"]
                 for model, (_, rows) in runs.items()}
        ring = max([2] + [res for p in plans.values() for *_, res in p])
        g = cand.streams(ring)
        w18 = ramb18(e.rows * e.weight_bits * g, ceil_div(ring * k_tile, g))
        x18 = (x_now if cand.widths is None
               else sum(ramb18(w * e.act_bits, 2 * k_tile) for w in cand.widths))
        total = w18 + x18 + fifo18
        print(f"{cand.name}: weight ring of {ring} blocks read {e.rows * e.weight_bits * g} "
              f"bits wide: {w18} RAMB18; activation buffers {x18}; with the FIFO {total} of "
              f"{part18} RAMB18 ({'fits' if total <= part18 else 'does not fit'})")
        for model, (r, rows) in runs.items():
            est = {la["name"]: la["cycles"] for la in rows}
            low = (1.0, "")
            geometry = 1.0
            for la, schedule, tiles, _ in plans[model]:
                block = ceil_div(e.rows * min(la["k"], k_tile) * e.weight_bits, 8)
                # every row step streams the layer's N pixels' activations again (the tiles'
                # pixel sets change from step to step: no block is reused or resident)
                act = steps_of(la, e.cols) * ceil_div(la["n"] * la["k"] * e.act_bits, 8)
                load_bw = max(1e-3, accel.memory.dram_bytes_per_cycle - act / (tiles * la["k"]))
                span = cand.span(schedule, la["k"], ring, block, load_bw)
                geometry = min(geometry, la["macs"] / (r.pes * tiles * la["k"]))
                # the host would run a layer the new way only where it is faster (a command
                # bit); otherwise the layer keeps today's tiling and cycles
                est[la["name"]] = min(la["cycles"], la["cycles"] * span / la["shape_cycles"])
                low = min(low, (la["macs"] / (r.pes * est[la["name"]]), la["name"]))
            cycles = sum(est.values())
            below = sum(la["macs"] / (r.pes * est[la["name"]]) < 0.9 for la, *_ in plans[model])
            macs = sum(la["macs"] for la in rows)
            print(f"  {model}: est. MAC utilisation {macs / (r.pes * cycles):.1%} (now "
                  f"{r.mac_util():.1%}), est. {r.fps * r.total_cycles / cycles:.2f} FPS (now "
                  f"{r.fps:.2f}); compute-bound layers: lowest shape cap {geometry:.1%}, "
                  f"lowest est. {low[0]:.1%} ({low[1]}), {below} under 90 %")


def steps_of(la: dict, cols: int) -> int:
    """A layer's row steps ``F`` (rule R1), from its shape cycles ``F * J * K``
    (``sim.timing.shape_cycles``, computed by the simulator)."""
    return la["shape_cycles"] // (ceil_div(la["n"], cols) * la["k"])


if __name__ == "__main__":
    main()
