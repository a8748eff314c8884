"""Workloads: the list of ops a simulation runs, and their sources (CSV, artifact, shipped).

A :class:`GemmOp` is one layer as a GEMM ``Y[M x N] = W[M x K] · X[K x N]`` per group
(M = output channels, K = reduction, N = output positions); a grouped or depthwise conv, or
one attention matmul per head, has ``groups`` identical GEMMs. Its ``splits`` say how the
rows of each group divide between fixed point (DSP core) and the LUT scheme (LUT core):
tuples ``(m_fixed, m_lut, count)`` over groups. A :class:`VectorOp` is element-wise work.

Sources:

* SCALE-Sim 2.0.2 topology CSVs (docs/simulator.md): conv format ``Layer name, IFMAP Height, IFMAP
  Width, Filter Height, Filter Width, Channels, Num Filter, Strides,`` (an optional ninth
  column gives a separate horizontal stride), output size ``ceil((H - F + S) / S)``. A row
  that ends with the keyword ``depthwise`` (:data:`DEPTHWISE`, a cell no number can be) is a
  depthwise conv: one group per channel, ``Num Filter`` filters each; the layer's name plays
  no part. GEMM format ``Layer Name, M, N, K,``: SCALE-Sim's ``M`` is the output pixels (our
  N), its ``N`` the filters (our M). fpim's own extension on top: a GEMM row that ends with
  the keyword ``matmul`` (:data:`MATMUL_MARK`) multiplies two activations (e.g. attention),
  so all its rows are fixed point; again the name plays no part. Every row may end with a
  comma; a malformed row raises :class:`TopologyError` naming the file and line.
* a quantized artifact (:func:`sim.ops.from_artifact`): splits from the per-row scheme ids.
* a torch model: :mod:`sim.torch_workload` (imports torch).

CSV workloads carry no schemes; :func:`assign_fraction` splits each layer's rows with
``quant.msq.lut_row_count`` (the row count MSQ would give the LUT scheme).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from quant.errors import ConfigError, check_fraction, check_int_range
from quant.fileio import read_text
from quant.formats import Scheme
from quant.modelspec import FORMS
from quant.msq import lut_row_count

WORKLOAD_DIR = Path(__file__).resolve().parent.parent / "configs" / "workloads"
MATMUL_MARK = "matmul"
#: The last cell of a depthwise conv row (fpim's extension of SCALE-Sim's conv format).
DEPTHWISE = "depthwise"


class TopologyError(ConfigError):
    """A topology CSV row is malformed (the message names the file and line)."""


@dataclass(frozen=True)
class GemmOp:
    """One GEMM layer (see the module docstring).

    Members:
        name: layer name.
        kind: ``conv``, ``linear``, ``matmul`` (activation x activation) or ``gemm``.
        m, n, k: GEMM sizes of one group.
        groups: number of identical GEMMs (depthwise conv: channels; attention: heads).
        splits: ``((m_fixed, m_lut, count), ...)`` over groups, counts summing to
            ``groups``; ``None`` until assigned (CSV workloads).
        source: index of the artifact layer, for functional runs (else -1).
    """

    name: str
    kind: str
    m: int
    n: int
    k: int
    groups: int = 1
    splits: tuple[tuple[int, int, int], ...] | None = None
    source: int = -1

    def __post_init__(self) -> None:
        for f in ("m", "n", "k", "groups"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"layer {self.name!r}: {f} must be a positive integer, "
                                  f"not {v!r}")
        if self.splits is not None:
            if sum(c for _, _, c in self.splits) != self.groups or any(
                    a + b != self.m or a < 0 or b < 0 for a, b, _ in self.splits):
                raise ConfigError(f"layer {self.name!r}: splits must divide {self.m} rows "
                                  f"in each of {self.groups} groups, not {self.splits!r}")

    @property
    def macs(self) -> int:
        return self.groups * self.m * self.n * self.k

    @property
    def rows_fixed(self) -> int:
        return sum(a * c for a, _, c in self.splits or ())

    @property
    def rows_lut(self) -> int:
        return sum(b * c for _, b, c in self.splits or ())


@dataclass(frozen=True)
class VectorOp:
    """Work on the vector unit: ``op`` (softmax, layernorm, ...) over ``elements``.

    Members:
        name: layer name.
        op: the vector op (``sim.timing`` rules R10, R14, R15).
        elements: output elements (``rows * length`` for a row-wise op).
        rows, length: a row-wise op's rows and row length (softmax: queries x groups rows
            of ``keys``; layernorm: tokens of ``features``); 0 and 0 when unknown (torch,
            ONNX workloads: the op is then timed by R10's cost table).
        groups: heads x batch of a softmax between the attention matmuls (R16), else 1.
        pipelined: the softmax runs in R16's pipeline with the matmul before it and the one
            after it (same ``groups``).
    """

    name: str
    op: str
    elements: int
    rows: int = 0
    length: int = 0
    groups: int = 1
    pipelined: bool = False

    def __post_init__(self) -> None:
        for f in ("elements", "rows", "length", "groups"):
            v = getattr(self, f)
            lo = 1 if f == "groups" else 0
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ConfigError(f"layer {self.name!r}: {f} must be an integer of at least "
                                  f"{lo}, not {v!r}")
        if (self.rows > 0) != (self.length > 0) or (
                self.rows and self.rows * self.length != self.elements):
            raise ConfigError(f"layer {self.name!r}: rows x length must be the {self.elements} "
                              f"elements (or both 0), not {self.rows} x {self.length}")
        if self.rows % self.groups:
            raise ConfigError(f"layer {self.name!r}: rows must be a multiple of groups "
                              f"{self.groups}, not {self.rows}")
        if self.pipelined and (self.op != "softmax" or not self.rows):
            raise ConfigError(f"layer {self.name!r}: only a softmax with rows may be "
                              f"pipelined between attention matmuls, not {self.op!r}")

    @property
    def macs(self) -> int:
        return 0


def pool_op(name: str, out_elements: int, window: int) -> VectorOp:
    """A pooling layer's vector work: every output element reads ``window`` inputs."""
    return VectorOp(name, "pool", out_elements * window)


@dataclass(frozen=True)
class Workload:
    """A named list of ops, in execution order, for ``batch`` images (the ops' sizes
    already include the batch: throughput is ``batch`` images per run). ``origin``: how it
    was made (the source options and the SP2 fraction given to schemeless GEMMs), for
    outputs that must be re-run from themselves."""

    name: str
    ops: tuple[GemmOp | VectorOp, ...] = field(default_factory=tuple)
    batch: int = 1
    origin: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_int_range("batch", self.batch, 1, MAX_BATCH)

    @property
    def gemms(self) -> list[GemmOp]:
        return [o for o in self.ops if isinstance(o, GemmOp)]

    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)


@dataclass(frozen=True)
class Attention:
    """A transformer workload's shape as the vector unit and the ViT search see it: tokens
    ``T`` (a softmax row), the head dimension (rows of one head in q, k and v), the longest
    vector row (``row_words``: a softmax row, a token's features or an MLP row) and the
    features ``D`` of a token (a LayerNorm row: the shortest reduction of a per-token
    weight GEMM, qkv's; ``T`` when there is none)."""

    tokens: int
    head_dim: int
    row_words: int
    features: int


def attention_of(wl: Workload) -> Attention | None:
    """Tokens and head dimension from ``wl``'s QK^T matmul (the activation x activation
    GEMM with as many rows as columns: ``T x T`` scores, reduction ``head_dim``); the
    longest vector row is the longest reduction of a per-token weight GEMM (``T`` columns
    per image: qkv's D features, LayerNorm's row; fc2's MLP row, ShiftGELU's) or the tokens
    (a softmax row). None when ``wl`` has no attention (a CNN)."""
    qk = [o for o in wl.gemms if o.kind == "matmul" and o.m == o.n]
    if not qk:
        return None
    tokens = qk[0].m
    rows = [o.k for o in wl.gemms if o.kind != "matmul" and o.n % tokens == 0]
    return Attention(tokens, qk[0].k, max([tokens, *rows]), min(rows, default=tokens))


def split_rows(op: GemmOp, fraction: float) -> tuple[tuple[int, int, int], ...]:
    """Row split of ``op`` with ``fraction`` of the rows on the LUT scheme (matmul: none).

    A group of several rows gives ``lut_row_count(fraction, m)`` rows to the LUT core; groups
    of one row (depthwise) are whole-group decisions: ``lut_row_count(fraction, groups)``
    groups run on the LUT core.
    """
    f = check_fraction("sp2_fraction", fraction)
    if op.kind == "matmul":
        return ((op.m, 0, op.groups),)
    if op.m == 1 and op.groups > 1:
        g_lut = lut_row_count(f, op.groups)
        parts = [(1, 0, op.groups - g_lut), (0, 1, g_lut)]
        return tuple(p for p in parts if p[2] > 0)
    lut = lut_row_count(f, op.m)
    return ((op.m - lut, lut, op.groups),)


def assign_fraction(wl: Workload, fraction: float, force: bool = False) -> Workload:
    """Assign row splits to every GEMM without one (all of them with ``force``)."""
    ops = []
    for o in wl.ops:
        if isinstance(o, GemmOp) and (o.splits is None or force):
            o = replace(o, splits=split_rows(o, fraction))
        ops.append(o)
    return replace(wl, ops=tuple(ops))


#: Largest batch a workload may have.
MAX_BATCH = 1 << 20


def batched(wl: Workload, batch: int) -> Workload:
    """``wl`` (one image) run on ``batch`` images: GEMMs stream ``batch`` times the output
    positions (activation x activation matmuls get ``batch`` times the groups), vector ops
    cover ``batch`` times the elements."""
    check_int_range("batch", batch, 1, MAX_BATCH)
    if wl.batch != 1:
        raise ConfigError(f"batch of workload {wl.name!r} must be given once, not {batch} "
                          f"on top of its own {wl.batch}")
    ops: list[GemmOp | VectorOp] = []
    for o in wl.ops:
        if isinstance(o, VectorOp):
            ops.append(replace(o, elements=o.elements * batch, rows=o.rows * batch,
                               groups=o.groups * batch if o.pipelined else o.groups))
        elif o.kind == "matmul":
            ops.append(replace(o, groups=o.groups * batch,
                               splits=None if o.splits is None else
                               tuple((a, b, c * batch) for a, b, c in o.splits)))
        else:
            ops.append(replace(o, n=o.n * batch))
    return Workload(wl.name, tuple(ops), batch)


# ---------------------------------------------------------------------------------------
# SCALE-Sim CSV
# ---------------------------------------------------------------------------------------

def _cells(line: str, where: str) -> list[str]:
    try:
        cells = next(csv.reader([line]))
    except csv.Error as exc:
        raise TopologyError(f"{where}: a row must be comma-separated cells ({exc})") from None
    cells = [c.strip() for c in cells]
    if cells and cells[-1] == "":
        cells = cells[:-1]  # SCALE-Sim's trailing comma
    return cells


#: Largest number a topology cell may hold.
MAX_CELL = (1 << 31) - 1


def _int_cell(cell: str, what: str, where: str) -> int:
    try:
        v = int(cell)
    except ValueError:
        if not cell.isdecimal():
            raise TopologyError(f"{where}: {what} must be a positive integer, "
                                f"not {cell!r}") from None
        v = MAX_CELL + 1  # more digits than int() reads
    if v < 1:
        raise TopologyError(f"{where}: {what} must be a positive integer, not {v}")
    if v > MAX_CELL:
        shown = cell if len(cell) <= 24 else f"{cell[:20]}... ({len(cell)} digits)"
        raise TopologyError(f"{where}: {what} must be at most {MAX_CELL}, not {shown}")
    return v


CONV_COLUMNS = ("IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
                "Num Filter", "Strides")
GEMM_COLUMNS = ("M", "N", "K")


def parse_topology(text: str, gemm: bool, source: str = "<topology>") -> Workload:
    """Parse SCALE-Sim topology text (conv format, or GEMM format with ``gemm``)."""
    lines = text.splitlines()
    ops: list[GemmOp] = []
    header_seen = False
    names: set[str] = set()
    for no, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{source} line {no}"
        cells = _cells(raw, where)
        if not header_seen:
            header_seen = True
            if cells and cells[0].lower().startswith("layer"):
                continue
            raise TopologyError(f"{where}: the first line must be the header "
                                f"'Layer name, ...', not {raw.strip()!r}")
        keyword = DEPTHWISE if not gemm else MATMUL_MARK
        marked = len(cells) > 1 and cells[-1].lower() == keyword
        if marked:
            cells = cells[:-1]
        depthwise = marked and not gemm
        want = (4,) if gemm else (8, 9)
        if len(cells) not in want or any(c == "" for c in cells):
            cols = f"name, M, N, K[, {MATMUL_MARK}]" if gemm else \
                "name, " + ", ".join(CONV_COLUMNS) + f"[, {DEPTHWISE}]"
            raise TopologyError(f"{where}: a row must have {' or '.join(map(str, want))} "
                                f"non-empty cells ({cols}), not {raw.strip()!r}")
        name = cells[0]
        if name in names:
            raise TopologyError(f"{where}: layer name {name!r} is used twice")
        names.add(name)
        if gemm:
            sm, sn, k = (_int_cell(c, w, where) for c, w in zip(cells[1:], GEMM_COLUMNS,
                                                                   strict=True))
            kind = "matmul" if marked else "gemm"
            ops.append(GemmOp(name, kind, m=sn, n=sm, k=k))
            continue
        vals = [_int_cell(c, w, where) for c, w in zip(cells[1:8], CONV_COLUMNS, strict=True)]
        h, w, fh, fw, ch, nf, sh = vals
        sw = _int_cell(cells[8], "Strides (width)", where) if len(cells) == 9 else sh
        if fh > h or fw > w:
            raise TopologyError(f"{where}: filter {fh}x{fw} must fit the IFMAP {h}x{w}")
        ho = -(-(h - fh + sh) // sh)
        wo = -(-(w - fw + sw) // sw)
        if depthwise:
            ops.append(GemmOp(name, "conv", m=nf, n=ho * wo, k=fh * fw, groups=ch))
        else:
            ops.append(GemmOp(name, "conv", m=nf, n=ho * wo, k=fh * fw * ch))
    if not header_seen:
        raise TopologyError(f"{source}: the file is empty (no header line)")
    if not ops:
        raise TopologyError(f"{source}: no layers after the header")
    return Workload(Path(source).stem, tuple(ops))


def read_topology(path: str | Path, gemm: bool | None = None) -> Workload:
    """Read a SCALE-Sim topology CSV; ``gemm=None`` guesses the format from the header."""
    p = Path(path)
    text = read_text(p, "topology", TopologyError)
    if gemm is None:
        no, first = next(((i, ln) for i, ln in enumerate(text.splitlines(), start=1)
                          if ln.strip()), (1, ""))
        gemm = len(_cells(first, f"{p.name} line {no}")) == 4
    return parse_topology(text, gemm, source=p.name)


def format_topology(wl: Workload, gemm: bool) -> str:
    """SCALE-Sim CSV text for ``wl`` (conv ops written in GEMM form need ``gemm``)."""
    out = io.StringIO()
    if gemm:
        out.write("Layer Name, M, N, K,\n")
        for o in wl.gemms:
            for g in range(o.groups):
                name = o.name if o.groups == 1 else f"{o.name}_g{g}"
                out.write(f"{name}, {o.n}, {o.m}, {o.k},\n")
    else:
        raise ConfigError("format_topology writes the GEMM format only; conv files are "
                          "written by sim.zoo from layer shapes")
    return out.getvalue()


def shipped_workloads() -> list[str]:
    return sorted(p.stem for p in WORKLOAD_DIR.glob("*.csv"))


def load_shipped(name: str) -> Workload:
    """A shipped topology from ``configs/workloads/`` by name (``resnet50``, ``deit_base``);
    a DeiT is the whole network of :func:`sim.zoo.deit_workload` (its vector ops too)."""
    if name.lower() not in shipped_workloads():
        raise ConfigError(f"model must be one of {', '.join(shipped_workloads())}, "
                          f"{FORMS}, not {name!r}")
    if name.lower().startswith("deit_"):
        from sim.zoo import deit_workload  # sim.zoo imports this module

        return deit_workload(name.lower())
    return read_topology(WORKLOAD_DIR / f"{name.lower()}.csv")


# ---------------------------------------------------------------------------------------
# Artifacts
# ---------------------------------------------------------------------------------------

def splits_from_ids(scheme_ids: np.ndarray, groups: int = 1) -> tuple[tuple[int, int, int], ...]:
    """Row split from per-row scheme ids (FIXED → DSP core, SP2/PoT → LUT core)."""
    ids = np.asarray(scheme_ids).reshape(groups, -1)
    lut = (ids != int(Scheme.FIXED)).sum(axis=1)
    m = ids.shape[1]
    cnt = Counter(int(v) for v in lut)
    return tuple((m - b, b, c) for b, c in sorted(cnt.items()))
