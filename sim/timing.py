"""The timing rules of the mixed-scheme GEMM engine: the one definition sim and RTL follow.

``docs/timing.md`` repeats these rules with worked examples; this docstring is normative.
The simulator's ``cycle`` mode (:func:`schedule_cycles`, a numba kernel that steps the
tile schedule) and ``analytical`` mode (:func:`analytical_cycles`, closed forms of the same
rules) implement them; the RTL controller (``hw``) must produce the same cycle counts.

Notation
--------
A GEMM ``Y[M x N] = W[M x K] · X[K x N]``. ``Mf`` of its weight rows are fixed point (run on
the DSP core), ``Ml`` are SP2/PoT (run on the LUT core), ``Mf + Ml = M``. The engine has
``Rd`` DSP-core rows, ``Rl`` LUT-core rows, ``C`` columns and a load block depth ``KT``
(``memory.k_tile``). A layer with ``groups`` (a depthwise or grouped conv, or one GEMM per
attention head) is ``groups`` independent GEMMs run one after another.

R1 Folds. ``Fd = ceil(Mf / Rd)``, ``Fl = ceil(Ml / Rl)`` (0 when the core has no rows of
   the layer; a layer with rows for a core of 0 rows is an error), ``F = max(Fd, Fl)``.
   Column blocks: ``J = ceil(N / C)``; block ``j`` has ``c_j = min(C, N - j*C)`` columns.
   K chunks: ``Q = ceil(K / KT)``; chunk ``q`` has ``k_q = min(KT, K - q*KT)`` steps.

R2 Balanced row steps. Both cores run ``F`` row steps. In step ``f`` the DSP core takes
   ``a_f = Mf // F + (1 if f < Mf % F else 0)`` consecutive fixed rows (starting at fixed
   row ``f*(Mf // F) + min(f, Mf % F)``, rows in layer order), the LUT core likewise
   ``b_f`` rows from ``Ml``. ``a_f <= Rd`` and ``b_f <= Rl`` because ``F >= Fd, Fl``.
   The step's row count (its drain, R4) is ``r_f = max(a_f, b_f) >= 1`` (``a_f + b_f``
   with a shared post-processor).
   (Spreading rows over all ``F`` steps, rather than filling the first folds, is what makes
   cycles monotone in the array size; the host computes ``F`` and the four quotients and
   remainders and writes them into the command registers.)

R3 Tiling. Either ``for j: for f:`` (order 0, column blocks outer) or ``for f: for j:``
   (order 1, row steps outer) over output tiles ``(j, f)``; each output tile streams chunks
   ``q = 0..Q-1`` ("chunk tile" ``(j, f, q)``). The host picks, per GEMM, a *tiling*: the
   order that loads fewer DRAM bytes under R5 without residency (ties: order 0), and the
   inner loop's operand resident (R5b) whenever R5b allows it in that order and the inner
   loop has more than one iteration (else nothing is re-read). Residency
   only removes loads of the inner operand, so it never loads more bytes nor issues a
   request later than the same order without it; choosing the order by its resident bytes
   instead would cut more bytes but can move the outer operand's loads into one exposed
   burst (measured: xc7z020 ResNet-50 2 % slower). The host writes both into the command
   (:func:`gemm_tiling`, the one function the analytical mode, the cycle mode and the
   host's command use; :data:`TILINGS` lists the four tilings). Both cores work on the
   same output tile in lockstep: same columns, same activation chunk, each its own rows.

R3c Dealt tiles (an engine with column group B, ``engine.group_b_cols`` ``CB > 0``: columns
   ``0 .. CA-1`` form group A, ``CA = C - CB``, columns ``CA .. C-1`` group B, whose weights
   enter the array at column ``CA`` from a second weight stream). For a GEMM with ``Q == 1``
   the host may write a *deal* instead of R3's tiling: per row step ``f`` the number ``n_f``
   (``0 <= n_f <= N``) of the step's output positions group A computes, positions ``0 ..
   n_f-1`` in tiles of ``CA`` (the last one partial), group B the rest ``n_f .. N-1`` in
   tiles of ``CB``. Each group walks its tiles in row-step order; *dealt tile* ``t`` pairs
   group A's ``t``-th tile with group B's ``t``-th (a group whose tiles ran out idles), so
   there are ``T = max(T_A, T_B)`` tiles (:func:`deal_sequence`), all in lockstep: one
   window of ``K`` steps, both groups presenting the same step ``i`` each cycle, group A's
   rows from row step ``f_A``'s weight block, group B's from ``f_B``'s, each group with its
   own step's rows. R4/R4b hold with the dealt tile's ``c_t = CA + c_B`` (``c_A`` without
   a group B tile: the drain waits for the rightmost used column) and, for its rows, the
   larger DSP row count ``a_t = max(a_{f_A}, a_{f_B})`` and LUT row count ``b_t`` of the
   groups present (``r_t = max(a_t, b_t)``, or ``a_t + b_t`` with a shared post-processor;
   both groups drain the same row of a core in the same cycle). Loads: weight
   block ``f`` (all ``a_f + b_f`` rows, ``K`` steps) is loaded by the first tile that uses
   it, into bank ``f mod 3`` of the weight ring (R6: ``S_n = n * KT``; a grouped engine's
   rings, :func:`ring_steps`, are three banks of ``KT`` words in every tiling), and
   released at the end of the window of the last tile after which both groups are past it
   (released blocks stay a prefix). Each dealt tile loads its own activation block of ``K``
   words, ``c_A + c_B`` activations each (R5; never reused, never resident). A deal is
   legal (:func:`deal_fits`) when the first tile's row steps are 0 and each later tile's
   ``max(f_A, f_B)`` is at most one more than every earlier tile's (a tile loads at most one
   weight block, in row-step order), at every tile ``max(f_A, f_B) - min(f_A, f_B) <= 2``
   (else the next block could never be loaded), and a group's consecutive tiles are at most
   two row steps apart (its walker looks two steps ahead). Each tile's loads are then one
   request as in R5-R8: its new weight block, if any, and its activation block. The host
   deals a GEMM (:func:`choose_deal`, inside :func:`gemm_tiling`) when ``K`` is at least
   ``C`` plus the longest drain (``max(Rd, Rl)``, ``Rd + Rl`` with a shared
   post-processor: every tile then costs ``K``, R4b), the deal takes fewer tiles than
   ``F * J`` and
   ``L`` plus its blocks' R7 transfers back to back fit in ``T * K`` cycles; a dealt GEMM
   neither prefetches nor is preloaded (R10b).

R4 Output tile. A tile's stream phase is its chunks' stream windows back to back; chunk
   ``q``'s window is ``k_q`` cycles, during which the buffers present one K step per cycle
   (one weight word per used row, one activation word per used column); the PE array skews
   them internally (PE ``(i, l)`` does the step presented in cycle ``t`` in cycle
   ``t + i + l``). Each PE has a drain register: one cycle after its last MAC of the tile
   it copies the finished accumulator into it (a capture flag travels with the last step),
   so the accumulator is free for the next tile at once. Let ``E`` be the end of the
   tile's last window. The drain starts at ``D = E + c_j`` (by then row 0's drain
   registers hold the whole row, and each later row is complete one cycle after the one
   above) and takes ``r_f`` cycles: in cycle ``D + i`` each core shifts row ``i``'s ``c_j``
   drain registers into its post-processing unit (the cores drain in parallel, ``r_f =
   max(a_f, b_f)``). With one post-processor shared by the cores (``engine.shared_post``)
   the DSP core's rows go first and the LUT core's after them: DSP row ``i`` in cycle ``D +
   i``, LUT row ``i`` in cycle ``D + a_f + i``, so ``r_f = a_f + b_f`` (:func:`drain_rows`).
   The tile is done at ``P = E + h`` with ``h = r_f + c_j``.

R4b Overlap. The next output tile's first window may start at ``E``, right after this
   tile's last window, so its fill and its MACs overlap this tile's drain, and its own
   stream may end while this tile still drains (two tiles in flight: the controller holds a
   second drain descriptor). Its last window, of ``k_{Q-1}`` cycles, ends at ``E'`` no
   earlier than both

   * ``P - c'`` (``c'`` its columns): its drain, from ``D' = E' + c'``, starts after this
     one is done (one drain port per core), and
   * ``D + s_t``: no PE captures its result before this tile's drain read that register.
     Row ``i`` is read in cycle ``D + i``; the next tile's capture writes row ``i``, column
     ``l`` at the end of cycle ``E' + g(i) + l`` with ``g(i) = i`` on the LUT core and on an
     unpacked DSP core and ``g(i) = i // p`` on a DSP core packing ``p`` rows to a
     multiplier (``engine.dsp_packing``; a packed group captures its rows together). So
     ``E' >= D + max_i (i - g(i))`` over the rows drained: ``s_t = (a_f - 1) - (a_f - 1) // p``
     for a tile with ``a_f >= 1`` DSP rows, else 0 (0 for ``p = 1``). With a shared
     post-processor LUT row ``i`` is read in cycle ``D + a_f + i`` and captured at ``E' +
     i + l``, so a tile with LUT rows has ``s_t = max((a_f - 1) - (a_f - 1) // p, a_f)``
     (:func:`capture_lead`).

   Without stalls, tile ``t`` of the GEMM's ``T = J*F`` tiles (in loop order, ``c_t``,
   ``r_t``, ``s_t`` its columns, rows and capture lead; ``t+1`` the next tile in that order)
   ends its stream at ``E_0 = K``, ``E_{t+1} = E_t + u_t`` with::

       u_t = max(K, c_t + max(r_t - c_{t+1}, s_t))

   and the GEMM ends when the last tile (``(J-1, F-1)`` in both orders, ``r_last`` the
   drain of ``Mf // F`` and ``Ml // F`` rows) is done. Its **compute cycles** are::

       sum_{t < T-1} u_t + K + c_{J-1} + r_last

   so a GEMM whose ``K >= u`` costs ``T*K + c_{J-1} + r_last``: one fill and drain. A tile
   with a short reduction (depthwise convs, small attention heads) costs ``max(K, r_t,
   c_t + s_t)`` when the next tile is as wide: the drain's one row per cycle, or the skew
   of its columns, instead of ``K``. The loop order enters only through ``c_{t+1}`` (the
   narrower last column block). A wider array can be slower on a short reduction: a ragged
   last column block still costs ``max(K, c_j)`` per tile (e.g. ``Mf = 43``, ``Ml = 1``,
   ``N = 25``, ``K = 7`` on 1 + 10 rows: 12 columns cost more than 11; the earlier
   ``r_t + c_t`` rule had the same effect).

R5 Loads. A chunk tile needs weight block ``(f, q)`` (``(a_f + b_f) * k_q`` weights of
   ``weight_bits``) and activation block ``(j, q)`` (``k_q * c_j`` activations of
   ``act_bits``); a block's size in bytes is ``ceil(elements * bits / 8)``. A block is
   loaded when the chunk tile's block differs from the previous chunk tile's block of the
   same buffer (the first chunk tile of a GEMM loads both); otherwise the resident block is
   reused. So with ``Q > 1`` every chunk tile loads both blocks; with ``Q == 1`` the block
   indexed by the outer loop is loaded once per outer iteration and the other one on every
   tile (once in total if its loop has length 1), unless it is resident (R5b).

R5b Residency. With ``Q == 1`` the inner loop's operand (order 0: the weights, ``F``
   blocks; order 1: the activations, ``J`` blocks) may be *resident* when all its blocks fit
   one ring: ``F*K <= 2*KT`` words (order 0) or ``J*K <= 2*KT`` (order 1) (a block is
   ``K`` words whatever its rows or columns, R6; :func:`resident_fits`). Then its blocks are
   loaded during the first outer iteration only (block ``n`` of the inner loop, the ``n``-th
   loaded into that buffer, at ring word ``S_n = n*K``), are never released before the GEMM
   ends, and later outer iterations read block ``n`` from word ``n*K`` again: no load and no
   DRAM request. Each weight and each activation block is then loaded once. The other
   operand's buffer works as in R5/R6.

R6 Rings. Each buffer is a ring of ``2 * KT`` words (``3 * KT`` on an engine with column
   group B, R3c: :func:`ring_steps`), one word per K step (a weight word
   holds one step of every row, an activation word one step of every column). Blocks take
   consecutive words in load order: the ``n``-th block loaded into a buffer starts at word
   ``S_n mod 2KT``, ``S_n`` the steps of the blocks before it. Its load may start only once
   every earlier block whose words it would overwrite is released, i.e. once the released
   blocks of that buffer (always a prefix: blocks are released in load order) hold at least
   ``S_n + k_q - 2KT`` steps. A block is released at the end of the stream window of the
   last chunk tile that used it. (Blocks of ``KT`` steps are the two banks of a double
   buffer: block ``n`` waits for block ``n - 2``; blocks of ``k_q < KT`` steps let more
   loads run ahead of the windows, which is what hides R7's latency on short reductions.)
   A resident buffer (R5b) loads ``J`` (or ``F``) blocks of ``K`` steps, ``S_n + K = (n+1)*K
   <= 2*KT``, so its room condition holds at once for every load, although no block of it is
   released; it loads nothing after the first outer iteration.

R7 DRAM. One read channel serves load requests in chunk-tile order (weight block before
   activation block of the same chunk tile). A block's data occupies the channel for
   ``ceil(bytes / B)`` cycles and arrives ``L`` cycles after its request
   (``memory.dram_bytes_per_cycle`` ``B`` and ``memory.dram_latency`` ``L``; no transfer
   cycles with unlimited bandwidth): the request is accepted at ``a = max(e' - L, room,
   a' + 1)``, ``e'`` the completion of the previous block (0 for the first), ``room`` the
   time R6 allows and ``a'`` the previous request's acceptance (one request a cycle; a
   chunk tile's activation block joins its weight block's request, without the ``+ 1``),
   and the block completes at ``e = a + L + ceil(bytes / B)``. Several requests can
   be outstanding (in-order data, like AXI reads), so the latency is paid once per run of
   back-to-back requests rather than once per block. Requests are issued as early as these
   rules allow (prefetch). A resident block's later reads (R5b) issue no request.
   Words: a block's transfer is spread over its ``k_q`` words (one K step each, R6), word
   ``i`` due in cycle ``a + L + ceil((i + 1) * T / k_q)``, ``T = ceil(bytes / B)`` (all in
   cycle ``a + L`` with unlimited bandwidth; :func:`word_arrival`), and each buffer takes
   one word per cycle, in load order: word ``i`` is written in cycle ``w_i = max(due_i,
   w_{i-1} + 1)`` (``w_{-1}`` the buffer's previous word). So the first word is written in
   ``f = max(due_0, p + 1)``, ``p`` the cycle of the buffer's previous word, word ``i`` in
   ``max(due_i, f + i)`` and the last in ``l = max(e, f + k_q - 1)``. The channel is free
   for the next block at ``e`` as above: the words of one buffer wait for each other, not
   the channel.

R8 Stalls. A window presents its steps in order, at most one per cycle, and step ``i`` no
   earlier than the cycle its word is written (R7) into each block the chunk tile loads (a
   word can be presented in the cycle it is written: cut-through; a reused or resident
   block is complete). It starts (step 0) at the latest of: the end of the previous window
   (of this or the previous output tile; cycle 0 for the first), the arrival of word 0 of
   each block it loads, and, for the last chunk of an output tile, ``max(P - c_j, D + s) -
   k_q`` of the previous output tile (R4b); a step whose word has not arrived holds the
   array (a bubble). As ``due_i - i`` is monotone in ``i`` (non-increasing when ``T <= k_q``,
   non-decreasing when ``T >= k_q``), ``w_i - i = max(due_i - i, f)`` is largest at the
   first or the last word, so only they can hold a window: started at ``s``, it ends at
   ``E = max(s + k_q, l + 1)`` over the last words ``l`` of the blocks it loads. A
   GEMM's cycles are ``P`` of its last tile; its stall cycles are its cycles minus its
   compute cycles, the delay the memory adds (never negative: every time in these rules is
   a maximum of sums, and loads only raise the terms).

R9 Output write-back goes through a separate write channel and the double-buffered output
   buffer; it is counted in DRAM bytes (``ceil(M*N*act_bits/8)``) but never stalls.

R10 Boundaries. Every GEMM starts at cycle 0 with empty buffers (the command interface
   runs one GEMM at a time) but for the one weight block R10b carries over; a run's cycles
   are the sum over its GEMMs and vector ops (R16 is the one overlap). A vector op without
   a pipeline of rule R13-R15 (the element-wise ``add``, ``pool`` and ops of torch/ONNX
   workloads) takes ``ceil(elements * cost / lanes)`` cycles with ``cost`` from
   :class:`sim.arch.VectorUnit`'s table (throughput only; this rule is unchanged so that
   CNN results stay as shipped).

R10b Weight prefetch. A GEMM command may carry the shape of the next command's first weight
   block (row step 0, chunk 0: ``a_0 + b_0`` rows, :func:`first_block_rows`, of ``k_0 =
   min(KT, K)`` steps, R5 bytes at ``weight_bits``). The loader requests it after the GEMM's
   last request, one cycle after that one's acceptance at the earliest, as the next block of
   the weight ring: R6 (its room counts every block of the GEMM, a resident one released at
   the end of the GEMM's last window) and R7 (accepted at ``max(e' - L, room, a_last + 1)``,
   its words written after the ring's previous ones). The GEMM is done at the later of its
   last drain's end (R8) and one cycle after the block's last word. The next command, marked
   *preloaded*, starts with that block in its ring (where the ring's write position left it;
   its counters and position carry over, the activation ring starts empty): it requests no
   weight block for its first chunk tile, and that block's words count as written before
   cycle 0 (R8). Its bytes count as the prefetching GEMM's (its command reads them, during
   its cycles). The host prefetches only between two GEMM ops that follow each other in the
   workload, each one GEMM (``groups = 1``) with weights (not a matmul, R11), and only when
   the block's last word is written before the GEMM's last drain ends, so a prefetch never
   lengthens a GEMM (:func:`schedule_cycles` decides it while it steps the run). Groups,
   matmuls and the first GEMM of a run start empty as in R10.

Attention on the engine
-----------------------

R11 Activation x activation GEMMs (op ``matmul``: QK^T and A.V, ``Y[M x N] = op(a)[M x K]
   . b[K x N]`` per group, ``groups`` = heads x batch). (a) Every row is fixed point and runs
   on the DSP core (``Mf = M``, ``Ml = 0``; an engine without DSP rows cannot run it). (b)
   Operand ``op(a)`` of a group takes the weight role: it is loaded per group through the
   same buffer ring and DRAM channel as a weight block (R5-R7), with blocks of
   ``a_f * k_q`` words of ``act_bits`` (not ``weight_bits``); operand ``b`` streams as the
   activations (R5 at ``act_bits``). There is no separate K/V buffer: a block takes ``k_q <=
   KT`` words of the weight ring, its ``a_f`` values of ``act_bits`` in the DSP rows'
   ``Rd * weight_bits`` bits of each word (room whenever ``act_bits <= weight_bits``;
   ``sim.resources.matmul_block_violation``). Each group is one GEMM command timed by R1-R8
   from an empty buffer (R10), so a matmul costs ``groups`` times one group. (c) Both operands enter
   the PEs at ``act_bits`` bits, signed or unsigned (the softmax output is unsigned): the
   DSP PE's ports for a matmul are ``act_bits + 1`` bits signed. (d) The output leaves the
   engine unrequantized (the post-processor's bypass: ``acc_bits``-bit accumulators,
   written back at ``acc_bits``, R9) because its requantizer is a 31-bit dyadic multiplier
   the engine's 16-bit post-processor cannot apply: the vector unit's input requantizer
   applies it, in the softmax that reads QK^T (R14) or in a ``requant`` op (R15).

The vector unit
---------------

R12 Lanes. The vector unit has ``L = vector.lanes`` lanes. A *pass* streams ``n`` words of a
   row through the lanes in ``ceil(n / L)`` beats, one beat per cycle, and its result (a
   lane-reduced scalar, or the written outputs) is complete a fixed *drain depth* after
   the last beat. Row-level scalar work (a division, a square root) runs in one scalar unit
   after its pass has drained. Every depth and latency is a named constant of this module
   (:data:`VECTOR_DEPTHS`); none depends on ``L``, so more lanes are never slower. The unit
   runs one op at a time and, within a row-wise op, one row at a time; its operands stream
   from and to DRAM without stalls (like R9).

R13 Scalar units. A division (``INT32_MAX // s``, or LayerNorm's ``round_div(sum, C)``
   whose quotient is below ``2**16``) is a radix-2 restoring divider, one quotient bit per
   cycle: :data:`DIV_CYCLES`. The integer square root (``isqrt(var)``, ``var < 2**63``) is
   the digit-by-digit method, one root bit per cycle: :data:`SQRT_CYCLES`; it computes
   ``math.isqrt``, which the reference's Newton iteration equals (quant.ops.intmath).

R14 Row-wise ops, per row of length ``n`` with ``b = ceil(n / L)``:

   * ``softmax`` (rows = queries x groups, ``n`` = keys): pass 1 max (input requantizer,
     lane max tree) ``b + REQ_DEPTH + REDUCE_DEPTH``; pass 2 exp and sum (``e`` kept in the
     row buffer) ``b + REQ_DEPTH + EXP_DEPTH + REDUCE_DEPTH``; reciprocal ``DIV_CYCLES``;
     pass 3 ``(e * f) >> (31 - p)`` and write ``b + MUL_DEPTH``. Row: ``3b + SOFTMAX_LATENCY``.
   * ``layernorm`` (rows = tokens, ``n`` = features C): pass 1 sum ``b + REDUCE_DEPTH``;
     mean ``DIV_CYCLES``; pass 2 ``y = x - mean``, sum of ``y*y`` ``b + SQUARE_DEPTH +
     REDUCE_DEPTH``; ``SQRT_CYCLES``; reciprocal ``DIV_CYCLES``; pass 3 normalize, affine,
     requantize and write ``b + LN_OUT_DEPTH``. Row: ``3b + LAYERNORM_LATENCY``.

   An op of ``R`` rows takes ``R * (3b + latency)`` cycles.

R15 Element-wise pipelines, one pass over the op's ``E`` output elements:
   ``ceil(E / L) + depth``: ``gelu`` (two exps, a per-lane pipelined divider of
   :data:`DIV_CYCLES` stages, the product and the requantizer) ``GELU_DEPTH``,
   ``pos_embed`` (branch scaling, table add, requantizer) ``POS_EMBED_DEPTH``, ``requant``
   (a matmul's dyadic requantizer, R11d) ``REQ_DEPTH``.

R16 Attention pipeline. A softmax marked ``pipelined`` sits between the QK^T matmul that
   produces it and the A.V matmul that reads it, all three with the same ``G`` groups
   (heads x batch); group ``g``'s softmax reads only group ``g``'s scores. The engine runs
   QK^T of groups ``0..G-1``, then A.V of groups ``0..G-1``; the vector unit runs softmax
   ``g`` once QK^T ``g`` is done and softmax ``g-1`` is done; A.V ``g`` starts once the
   engine is free and softmax ``g`` is done. With ``s``, ``v``, ``c`` the cycles of one
   group (R1-R11, R14) the three ops end after::

       max(G (s + c), s + v + G c, s + v + (G - 1) max(s, v) + c)

   cycles. The per-layer table gives QK^T ``G s``, A.V ``G c`` and the softmax the rest
   (its exposed cycles; ``hidden_cycles`` = ``G v`` minus that). No other vector op
   overlaps the engine: every other op reads the whole output of the op before it.

Analytical mode evaluates R4/R4b in closed form (:func:`compute_cycles`); with unlimited
bandwidth it equals the cycle mode exactly (tested). With finite bandwidth it returns the
lower bound ``max(compute + the first window's delay (R8: L, the first weight block's
transfer, then the first activation word or the activation block's last word less the
window), L + all transfers back to back + 1 + c_{J-1} + r_last)``,
which the cycle mode's count never undercuts (tested).

Plain output-stationary mode (``mode="plain"``) is a cross-check against other systolic
simulators: one core of ``R = Rd + Rl`` rows, every row on it, full-array fill and drain
per tile without overlap and no memory model: ``ceil(M/R) * ceil(N/C) * (2R + C + K - 2)``
(the OS count of SCALE-Sim's paper, arXiv 1811.02883).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

#: Status codes of :func:`schedule_cycles` (column ``STATUS`` of a result row).
DONE = 0
CYCLE_LIMIT = 1

#: Columns of a cycle-kernel result row (int64), the one layout the ``@njit`` kernels write
#: (numba compiles module-level ints as constants); Python reads rows as
#: :class:`ScheduleResult`.
RESULT_COLUMNS = 10
(STATUS, CYCLES, STALL, DRAM_READ, COLUMN_BLOCK, ROW_STEP, K_CHUNK, PREFETCH_LAST, PREFETCH,
 PRELOADED) = range(RESULT_COLUMNS)

#: R10b: what a GEMM row may do with the next row's first weight block (``chain`` of
#: :func:`schedule_cycles`): nothing, prefetch it when that ends before this GEMM does (the
#: host's rule), or prefetch it whatever it costs (a testbench forcing the RTL's general case).
CHAIN_NONE, CHAIN_HOST, CHAIN_FORCE = 0, 1, 2

#: Stand-in for "no cycle limit".
NO_LIMIT = np.iinfo(np.int64).max // 4


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class GemmShape:
    """One GEMM of a layer as the timing rules see it."""

    m_fixed: int
    m_lut: int
    n: int
    k: int

    @property
    def m(self) -> int:
        return self.m_fixed + self.m_lut


def row_steps(m_fixed: int, m_lut: int, dsp_rows: int, lut_rows: int) -> int:
    """``F`` of rule R1 (the caller has checked each core with rows exists)."""
    fd = (m_fixed + dsp_rows - 1) // dsp_rows if m_fixed > 0 else 0
    fl = (m_lut + lut_rows - 1) // lut_rows if m_lut > 0 else 0
    return max(fd, fl)


#: :func:`row_steps` compiled for the cycle kernels (Python callers keep the plain function:
#: a call into numba costs more than the arithmetic).
_row_steps = numba.njit(cache=True)(row_steps)


@numba.njit(cache=True)
def ring_steps(k_tile: int, group_b: int = 0) -> int:
    """Words (K steps) of a load buffer's ring (rule R6): two blocks of ``k_tile`` steps,
    three banks of them on an engine with column group B (``group_b`` columns > 0, R3c)."""
    return (3 if group_b > 0 else 2) * k_tile


#: Columns of a dealt-tile row (:func:`deal_sequence`): group A's row step (-1: no tile),
#: columns and first output position, then group B's.
DEAL_COLUMNS = 6
(DEAL_FA, DEAL_CA, DEAL_PA, DEAL_FB, DEAL_CB, DEAL_PB) = range(DEAL_COLUMNS)


@numba.njit(cache=True)
def _deal_group(seq: np.ndarray, n: int, deal: np.ndarray, width: int, col: int,
                group_b: bool) -> None:
    """Fill one group's columns of :func:`deal_sequence` (``col``: its first column)."""
    t = 0
    for f in range(deal.shape[0]):
        p = deal[f] if group_b else 0
        stop = n if group_b else deal[f]
        while p < stop:
            seq[t, col] = f
            seq[t, col + 1] = min(width, stop - p)
            seq[t, col + 2] = p
            p += width
            t += 1


@numba.njit(cache=True)
def deal_sequence(n: int, deal: np.ndarray, ca: int, cb: int) -> np.ndarray:
    """R3c: the dealt tiles of a GEMM of ``n`` output positions whose row step ``f`` gives
    ``deal[f]`` positions to group A (``ca`` columns) and the rest to group B (``cb``
    columns), in order: one int64 row of :data:`DEAL_COLUMNS` per tile."""
    ta = 0
    tb = 0
    for f in range(deal.shape[0]):
        ta += (deal[f] + ca - 1) // ca
        tb += (n - deal[f] + cb - 1) // cb
    seq = np.zeros((max(ta, tb), DEAL_COLUMNS), dtype=np.int64)
    seq[:, DEAL_FA] = -1
    seq[:, DEAL_FB] = -1
    _deal_group(seq, n, deal, ca, DEAL_FA, False)
    _deal_group(seq, n, deal, cb, DEAL_FB, True)
    return seq


def deal_fits(seq: np.ndarray) -> bool:
    """R3c: whether a deal (its :func:`deal_sequence`) is legal: every dealt tile's row
    steps lie within three consecutive weight blocks (the ring's banks, so that each block
    can be loaded), each tile needs at most one weight block the tiles before it did
    not (the first tile block 0), and neither group skips two row steps in a row."""
    fa, fb = seq[:, DEAL_FA], seq[:, DEAL_FB]
    both = (fa >= 0) & (fb >= 0)
    top = np.maximum(fa, fb)
    skips = all(np.all(np.diff(f[f >= 0]) <= 2) for f in (fa, fb))
    return bool(np.all(np.abs(fa[both] - fb[both]) <= 2) and top[0] == 0
                and np.all(np.diff(top) <= 1) and skips)


def check_deal(deal: Sequence[int], n: int, k: int, nf: int, cols: int, k_tile: int,
               group_b: int) -> None:
    """R3c's limits on a deal the host writes: a grouped engine, ``K <= KT``, one entry per
    row step, each in ``0..N``, legal (:func:`deal_fits`); ValueError naming the one broken."""
    if group_b <= 0:
        raise ValueError("a deal needs an engine with column group B (engine.group_b_cols > 0)")
    if k > k_tile:
        raise ValueError(f"a dealt GEMM needs K <= k_tile {k_tile}, not {k}")
    if len(deal) != nf:
        raise ValueError(f"deal has {len(deal)} entries for {nf} row steps")
    for f, v in enumerate(deal):
        if not 0 <= v <= n:
            raise ValueError(f"deal[{f}] must be in 0..{n} (N), not {v}")
    if not deal_fits(deal_sequence(n, np.array(deal, dtype=np.int64), cols - group_b,
                                   group_b)):
        raise ValueError(f"deal {tuple(deal)}: a tile's row steps are more than 2 apart "
                         "(three weight banks) or it needs two new weight blocks (R3c)")


@functools.lru_cache(maxsize=4096)
def choose_deal(n: int, nf: int, ca: int, cb: int) -> tuple[int, ...] | None:
    """R3c, the host's deal for ``nf`` row steps of ``n`` output positions on groups of
    ``ca`` and ``cb`` columns: the legal deal (:func:`deal_fits`) with the fewest dealt
    tiles, then the smallest distance between the groups' row steps (1 leaves a bank free
    to load ahead), found by dynamic programming over the row steps on the difference of
    the groups' tile counts; None when no legal deal takes fewer tiles than ``nf * J``.

    Per row step only splits no other beats in both groups' tile counts are tried: group A
    takes ``t_A`` tiles (``n_f = min(n, t_A * ca)`` positions), group B the fewest tiles
    covering the rest."""
    opts: list[tuple[int, int, int]] = []  # (t_A, t_B, n_f)
    for ta in range(ceil_div(n, ca) + 1):
        tb = ceil_div(max(0, n - ta * ca), cb)
        if not opts or tb < opts[-1][1]:
            opts.append((ta, tb, min(n, ta * ca)))
    best: tuple[tuple[int, int], tuple[int, ...]] | None = None
    for bound in range(0, 2 * max(ca, cb) + 1):
        # layer[d] = (A's tiles so far, the deal) for B's tiles = A's - d, |d| <= bound
        layer: dict[int, tuple[int, tuple[int, ...]]] = {0: (0, ())}
        for _ in range(nf):
            nxt: dict[int, tuple[int, tuple[int, ...]]] = {}
            for d, (pa, deal) in sorted(layer.items()):
                for ta, tb, n_f in opts:
                    d2 = d + ta - tb
                    if abs(d2) <= bound and (d2 not in nxt or pa + ta < nxt[d2][0]):
                        nxt[d2] = (pa + ta, (*deal, n_f))
            layer = nxt
        for d, (pa, deal) in sorted(layer.items()):
            seq = deal_sequence(n, np.array(deal, dtype=np.int64), ca, cb)
            if not deal_fits(seq):
                continue
            both = (seq[:, DEAL_FA] >= 0) & (seq[:, DEAL_FB] >= 0)
            span = int(np.max(np.abs(seq[both, DEAL_FA] - seq[both, DEAL_FB]), initial=0))
            key = (max(pa, pa - d), span)
            if best is None or key < best[0]:
                best = (key, deal)
    if best is None or best[0][0] >= nf * ceil_div(n, ca + cb):
        return None
    return best[1]


@numba.njit(cache=True)
def drain_rows(a: int, b: int, shared: bool) -> int:
    """``r`` of rule R4: the drain cycles of a tile with ``a`` DSP-core and ``b`` LUT-core
    rows: the cores drain in parallel, or (``shared``: one post-processor,
    ``engine.shared_post``) the DSP core's rows and then the LUT core's."""
    return a + b if shared else max(a, b)


@numba.njit(cache=True)
def capture_lead(a: int, packing: int, b: int = 0, shared: bool = False) -> int:
    """``s_t`` of rule R4b: how many cycles after a tile's drain started the next tile's last
    window may end, for a tile with ``a`` DSP-core rows packed ``packing`` to a multiplier
    (row ``i`` of the DSP core is captured ``i // packing`` cycles after row 0, but drained
    ``i`` cycles after it) and ``b`` LUT-core rows, drained after the DSP core's when
    ``shared`` (LUT row ``i`` is captured ``i`` cycles after row 0 but drained ``a + i``);
    0 for an unpacked core or a tile without DSP rows and a parallel drain."""
    lead = (a - 1) - (a - 1) // packing if a > 0 else 0
    return max(lead, a) if shared and b > 0 else lead


@numba.njit(cache=True)
def tile_cost(k: int, r: int, s: int, c: int, c_next: int) -> int:
    """R4b: cycles from the end of a tile's stream to the end of the next tile's stream
    without stalls, for a tile of ``r`` rows (capture lead ``s``), ``c`` columns, followed by
    a tile of ``c_next`` columns."""
    return max(k, c + max(r - c_next, s))


def compute_cycles(g: GemmShape, dsp_rows: int, lut_rows: int, cols: int, order: int,
                   packing: int, shared: bool = False) -> int:
    """Compute cycles of one GEMM (rules R4/R4b in closed form) in loop ``order`` (R3) on an
    engine whose DSP core packs ``packing`` rows to a multiplier and whose cores share one
    post-processor when ``shared`` (``engine.shared_post``)."""
    f = row_steps(g.m_fixed, g.m_lut, dsp_rows, lut_rows)
    steps = [(drain_rows(a, b, shared), capture_lead(a, packing, b, shared), n)
             for a, b, n in _step_classes(g.m_fixed, g.m_lut, f)]
    full, last_c = min(cols, g.n), g.n - (ceil_div(g.n, cols) - 1) * cols
    jn = ceil_div(g.n, cols)
    r_last, s_last = steps[-1][0], steps[-1][1]
    k = g.k
    total = 0
    if order == 0:  # for j: for f: (j, f) -> (j, f+1) in a block, (j, F-1) -> (j+1, 0)
        for c, nc in _col_sizes(g.n, cols):
            within = sum(tile_cost(k, r, s, c, c) * n for r, s, n in steps)
            total += nc * (within - tile_cost(k, r_last, s_last, c, c))
        if jn >= 2:
            total += ((jn - 2) * tile_cost(k, r_last, s_last, full, full)
                      + tile_cost(k, r_last, s_last, full, last_c))
    else:  # for f: for j: (f, j) -> (f, j+1) in a step, (f, J-1) -> (f+1, 0)
        for r, s, n in steps:
            across = (((jn - 2) * tile_cost(k, r, s, full, full)
                       + tile_cost(k, r, s, full, last_c)) if jn >= 2 else 0)
            total += n * (across + tile_cost(k, r, s, last_c, full))
        total -= tile_cost(k, r_last, s_last, last_c, full)
    return total + k + last_c + r_last


def shape_cycles(g: GemmShape, dsp_rows: int, lut_rows: int, cols: int, *,
                 group_b: int = 0, k_tile: int = 0) -> int:
    """The fewest cycles the array's shape allows GEMM ``g``: its ``F * J`` output tiles (R1,
    R2) at ``K`` cycles each (R4: a tile's windows present one K step a cycle; R4b: the next
    tile's windows start no sooner than this one's end), before any fill, drain or stall;
    on an engine with column group B (``group_b`` columns) and ``K <= k_tile`` the fewer
    tiles of the best legal deal (R3c, :func:`choose_deal`) if fewer. No schedule under
    R1-R10b is shorter (``compute_cycles`` and ``dealt_compute_cycles`` are at least this),
    so a layer's MAC utilisation is at most its MACs over the PEs times these cycles."""
    f = row_steps(g.m_fixed, g.m_lut, dsp_rows, lut_rows)
    tiles = f * ceil_div(g.n, cols)
    if group_b > 0 and g.k <= k_tile:
        deal = choose_deal(g.n, f, cols - group_b, group_b)
        if deal is not None:
            tiles = min(tiles, len(deal_sequence(g.n, np.array(deal, dtype=np.int64),
                                                 cols - group_b, group_b)))
    return tiles * g.k


def plain_os_cycles(m: int, n: int, k: int, rows: int, cols: int) -> int:
    """Plain output-stationary count: ``ceil(M/R) * ceil(N/C) * (2R + C + K - 2)``."""
    return ceil_div(m, rows) * ceil_div(n, cols) * (2 * rows + cols + k - 2)


def transfer_cycles(nbytes: int, bw: int | None) -> int:
    """R7: cycles one block of ``nbytes`` occupies the DRAM channel (``bw`` None:
    unlimited bandwidth, 0 cycles)."""
    return 0 if bw is None else ceil_div(nbytes, bw)


class DramChannel:
    """Rule R7 as the Python testbenches serve the top's load requests: one channel, a
    request accepted once ``cycle >= e' - L``, each block complete ``L + transfer`` cycles
    after it is accepted, blocks back to back in request order, each word of a block in the
    cycle :func:`word_arrival` gives (:meth:`word_cycles`)."""

    def __init__(self, bw: int | None, lat: int) -> None:
        self.bw = bw
        self.lat = lat
        self.end = 0  # completion of the previous block (e' of R7)

    def accepts(self, cycle: int) -> bool:
        """Whether a request shown in ``cycle`` is accepted in it."""
        return cycle >= self.end - self.lat

    def serve(self, cycle: int, nbytes: int) -> tuple[int, int]:
        """Accept one block of ``nbytes`` requested in ``cycle`` (the second block of a
        request is accepted in the same cycle, after the first): ``(start, completion)``,
        ``start`` the cycle R7 accepts it."""
        start = max(cycle, self.end - self.lat)
        self.end = start + self.lat + transfer_cycles(nbytes, self.bw)
        return start, self.end

    def word_cycles(self, start: int, nbytes: int, steps: int) -> list[int]:
        """The cycles in which the ``steps`` words of a block of ``nbytes`` accepted in
        ``start`` are written (R7; the last is the block's completion)."""
        bw = 0 if self.bw is None else self.bw
        return [start + word_arrival(i, steps, nbytes, bw, self.lat) for i in range(steps)]


def _block_bytes(elems: int, bits: int) -> int:
    return ceil_div(elems * bits, 8)


def write_back_bytes(m: int, n: int, act_bits: int, groups: int = 1) -> int:
    """R9: DRAM bytes written for the outputs of ``groups`` GEMMs of ``m x n``."""
    return groups * _block_bytes(m * n, act_bits)


@dataclass(frozen=True)
class GemmTiming:
    """Cycles of one GEMM: ``cycles = compute + stall``; ``dram_bytes`` read + written."""

    cycles: int
    compute: int
    stall: int
    dram_read: int
    dram_write: int


@dataclass(frozen=True)
class ScheduleResult:
    """One row of the cycle kernel's output, by name (see the column constants above).

    Members:
        status: :data:`DONE`, or :data:`CYCLE_LIMIT` when the run reached its limit here.
        cycles: cycles of the row's GEMMs (R8); at the limit, the end of the chunk window
            where the kernel stopped (of one GEMM).
        stall: stall cycles (R8) included in ``cycles``.
        dram_read: bytes of weight and activation blocks loaded (R5).
        column_block, row_step, k_chunk: at the limit, the chunk tile ``(j, f, q)`` where
            the kernel stopped; when :func:`_gemm_schedule` finishes, the counts ``J``,
            ``F``, ``Q``; 0 in a finished row of :func:`schedule_cycles`.
        prefetch_last: R10b, the cycle of the last word of the next GEMM's first weight
            block when the row was timed with its prefetch (-1: without).
        prefetch: the row's command prefetches it (R10b).
        preloaded: the row's first weight block was prefetched by the row before.
    """

    status: int
    cycles: int
    stall: int
    dram_read: int
    column_block: int
    row_step: int
    k_chunk: int
    prefetch_last: int = -1
    prefetch: bool = False
    preloaded: bool = False

    @classmethod
    def from_row(cls, row: np.ndarray | Sequence[int]) -> ScheduleResult:
        """The record of one result row (:data:`RESULT_COLUMNS` integers)."""
        return cls(status=int(row[STATUS]), cycles=int(row[CYCLES]), stall=int(row[STALL]),
                   dram_read=int(row[DRAM_READ]), column_block=int(row[COLUMN_BLOCK]),
                   row_step=int(row[ROW_STEP]), k_chunk=int(row[K_CHUNK]),
                   prefetch_last=int(row[PREFETCH_LAST]), prefetch=bool(row[PREFETCH]),
                   preloaded=bool(row[PRELOADED]))


def _chunk_sizes(k: int, kt: int) -> list[tuple[int, int]]:
    """(size, count) of the K chunks."""
    q = ceil_div(k, kt)
    last = k - (q - 1) * kt
    return [(kt, q - 1), (last, 1)] if q > 1 else [(last, 1)]


def _col_sizes(n: int, c: int) -> list[tuple[int, int]]:
    j = ceil_div(n, c)
    last = n - (j - 1) * c
    return [(c, j - 1), (last, 1)] if j > 1 else [(last, 1)]


def _step_rows(m_fixed: int, m_lut: int, f: int, shared: bool = False
               ) -> list[tuple[int, int, int]]:
    """(a_f + b_f, r_f, count) over the F steps, grouped (rules R2, R4)."""
    return [(a + b, drain_rows(a, b, shared), n)
            for a, b, n in _step_classes(m_fixed, m_lut, f)]


def _step_classes(m_fixed: int, m_lut: int, f: int) -> list[tuple[int, int, int]]:
    """(a_f, b_f, count) over the F steps in step order, grouped (rule R2)."""
    qa, ra = divmod(m_fixed, f)
    qb, rb = divmod(m_lut, f)
    cuts = sorted({0, ra, rb, f})
    return [(qa + (1 if lo < ra else 0), qb + (1 if lo < rb else 0), hi - lo)
            for lo, hi in itertools.pairwise(cuts) if hi > lo]


@dataclass(frozen=True)
class Tiling:
    """A GEMM's tiling (R3): loop ``order`` (0: ``for j: for f:``, 1: ``for f: for j:``) and
    whether the inner loop's operand is ``resident`` (R5b), or (R3c, ``order`` 0 and not
    resident) a ``deal``: group A's output positions in each row step."""

    order: int
    resident: bool
    deal: tuple[int, ...] = ()

    @property
    def dealt(self) -> bool:
        """R3c: the GEMM runs as dealt tiles (``deal``: group A's positions per row step)."""
        return bool(self.deal)


#: R3: the four tilings a command can carry (the host's choice is :func:`gemm_tiling`; the
#: testbenches force the others).
TILINGS = (Tiling(0, False), Tiling(1, False), Tiling(0, True), Tiling(1, True))


def resident_fits(order: int, f: int, jn: int, k: int, k_tile: int, group_b: int = 0
                  ) -> bool:
    """R5b: whether the inner loop's blocks of a GEMM with ``F = f``, ``J = jn`` and
    reduction ``k`` may be resident in loop ``order`` (``Q == 1`` and ``F*K`` (order 0) or
    ``J*K`` (order 1) words within one ring, :func:`ring_steps` of an engine whose column
    group B has ``group_b`` columns)."""
    inner = f if order == 0 else jn
    return k <= k_tile and inner * k <= ring_steps(k_tile, group_b)


def _reps(t: Tiling, f: int, jn: int, qn: int) -> tuple[int, int]:
    """Times each weight block ``(f, q)`` and each activation block ``(j, q)`` is loaded
    (R5/R5b) in tiling ``t``."""
    if qn > 1:
        return jn, f
    if t.resident:  # R5b: the inner operand's blocks once, the outer's once per iteration
        return 1, 1
    if t.order == 0:  # j outer: activations once per j, weights every tile unless F == 1
        return (jn if f > 1 else 1), 1
    return 1, (f if jn > 1 else 1)


def _tiling(f: int, jn: int, qn: int, k: int, k_tile: int, steps: list, chunks: list,
            colsz: list, weight_bits: int, act_bits: int, group_b: int = 0) -> Tiling:
    """R3: the order with fewer R5 bytes without residency (ties: order 0), resident where
    R5b allows it in that order and the inner loop repeats."""
    w_set = sum(_block_bytes(rows * kq, weight_bits) * cf * cq
                for rows, _, cf in steps for kq, cq in chunks)
    x_set = sum(_block_bytes(kq * cj, act_bits) * cj_n * cq
                for cj, cj_n in colsz for kq, cq in chunks)
    totals = []
    for order in (0, 1):
        wr, xr = _reps(Tiling(order, False), f, jn, qn)
        totals.append(w_set * wr + x_set * xr)
    order = 0 if totals[0] <= totals[1] else 1
    inner = f if order == 0 else jn
    return Tiling(order, inner > 1 and resident_fits(order, f, jn, k, k_tile, group_b))


def gemm_tiling(g: GemmShape, dsp_rows: int, lut_rows: int, cols: int, k_tile: int,
                weight_bits: int, act_bits: int, *, group_b: int = 0,
                bw: int | None = None, lat: int = 0, shared: bool = False) -> Tiling:
    """R3 tiling of one GEMM (what the host writes into the command: order and residency,
    or R3c's deal on an engine whose column group B has ``group_b`` columns; the deal's
    condition reads the DRAM bandwidth ``bw`` and latency ``lat``, which every caller on
    such an engine passes, and the longest drain, ``shared``: R4)."""
    f = row_steps(g.m_fixed, g.m_lut, dsp_rows, lut_rows)
    steps = _step_rows(g.m_fixed, g.m_lut, f)
    normal = _tiling(f, ceil_div(g.n, cols), ceil_div(g.k, k_tile), g.k, k_tile, steps,
                     _chunk_sizes(g.k, k_tile), _col_sizes(g.n, cols), weight_bits,
                     act_bits, group_b)
    if group_b == 0 or g.k > k_tile or g.k < drain_rows(dsp_rows, lut_rows, shared) + cols:
        return normal
    deal = choose_deal(g.n, f, cols - group_b, group_b)
    if deal is None:
        return normal
    seq = deal_sequence(g.n, np.array(deal, dtype=np.int64), cols - group_b, group_b)
    if dealt_transfer_cycles(seq, steps, g.k, weight_bits, act_bits, bw) + lat > len(seq) * g.k:
        return normal
    return Tiling(0, False, deal)


def dealt_transfer_cycles(seq: np.ndarray, steps: list, k: int, weight_bits: int,
                          act_bits: int, bw: int | None) -> int:
    """R7: the transfer cycles of every block a dealt GEMM (R3c) loads: each row step's
    weight block once (``steps`` as :func:`_step_rows` lists them), one activation block
    per dealt tile."""
    w = sum(transfer_cycles(_block_bytes(rows * k, weight_bits), bw) * n for rows, _, n in steps)
    if bw is None:
        return w
    x_bytes = (k * (seq[:, DEAL_CA] + seq[:, DEAL_CB]) * act_bits + 7) // 8
    return w + int(((x_bytes + bw - 1) // bw).sum())


def dealt_compute_cycles(g: GemmShape, dsp_rows: int, lut_rows: int, cols: int,
                         group_b: int, deal: Sequence[int], packing: int,
                         shared: bool = False) -> int:
    """Compute cycles of a dealt GEMM (R3c with R4/R4b, summed over its dealt tiles)."""
    seq = deal_sequence(g.n, np.array(deal, dtype=np.int64), cols - group_b, group_b)
    return _dealt_compute(seq, *_quotients(g, dsp_rows, lut_rows), cols - group_b, g.k,
                          packing, shared)[0]


def _quotients(g: GemmShape, dsp_rows: int, lut_rows: int) -> tuple[int, int, int, int]:
    """R2's ``divmod(Mf, F)`` and ``divmod(Ml, F)`` (``a_f``, ``b_f`` of every row step)."""
    f = row_steps(g.m_fixed, g.m_lut, dsp_rows, lut_rows)
    return (*divmod(g.m_fixed, f), *divmod(g.m_lut, f))


@numba.njit(cache=True)
def dealt_tile(row: np.ndarray, qa: int, ra: int, qb: int, rb: int, ca: int, packing: int,
               shared: bool) -> tuple[int, int, int]:
    """R3c: ``(c_t, r_t, s_t)`` of a dealt tile (a :func:`deal_sequence` row) of a GEMM
    whose row steps have ``a_f = qa + (f < ra)`` and ``b_f = qb + (f < rb)`` rows, on
    group A's ``ca`` columns: R4/R4b on the larger DSP and the larger LUT row count of the
    groups present."""
    a = 0
    b = 0
    for fcol in (DEAL_FA, DEAL_FB):
        f = row[fcol]
        if f >= 0:
            a = max(a, qa + (1 if f < ra else 0))
            b = max(b, qb + (1 if f < rb else 0))
    c = ca + row[DEAL_CB] if row[DEAL_FB] >= 0 else row[DEAL_CA]
    return c, drain_rows(a, b, shared), capture_lead(a, packing, b, shared)


@numba.njit(cache=True)
def _dealt_compute(seq: np.ndarray, qa: int, ra: int, qb: int, rb: int, ca: int, k: int,
                   packing: int, shared: bool) -> tuple[int, int, int]:
    """R4/R4b summed over the dealt tiles ``seq``: ``(compute cycles, c_t, r_t)`` of the
    GEMM and its last tile."""
    total = 0
    c, r, s = dealt_tile(seq[0], qa, ra, qb, rb, ca, packing, shared)
    for t in range(1, seq.shape[0]):
        c_next, r_next, s_next = dealt_tile(seq[t], qa, ra, qb, rb, ca, packing, shared)
        total += tile_cost(k, r, s, c, c_next)
        c, r, s = c_next, r_next, s_next
    return total + k + c + r, c, r


def analytical_cycles(g: GemmShape, dsp_rows: int, lut_rows: int, cols: int, k_tile: int,
                      weight_bits: int, act_bits: int, bw: int | None, lat: int, *,
                      packing: int, preloaded: bool = False, group_b: int = 0,
                      shared: bool = False) -> GemmTiming:
    """Closed-form timing of one GEMM (R1-R9; exact compute, memory as a lower bound) on an
    engine whose DSP core packs ``packing`` rows to a multiplier (R4b), whose column
    group B has ``group_b`` columns (R3c) and whose cores share one post-processor when
    ``shared`` (R4); ``preloaded``: its first weight block may be in the ring at cycle 0
    (R10b), the bound then leaves it out."""
    f = row_steps(g.m_fixed, g.m_lut, dsp_rows, lut_rows)
    jn = ceil_div(g.n, cols)
    qn = ceil_div(g.k, k_tile)
    steps = _step_rows(g.m_fixed, g.m_lut, f, shared)
    chunks = _chunk_sizes(g.k, k_tile)
    colsz = _col_sizes(g.n, cols)
    tiling = gemm_tiling(g, dsp_rows, lut_rows, cols, k_tile, weight_bits, act_bits,
                         group_b=group_b, bw=bw, lat=lat, shared=shared)
    if tiling.dealt:
        return _dealt_analytical(g, dsp_rows, lut_rows, cols, group_b, tiling.deal,
                                 weight_bits, act_bits, bw, lat, packing, steps, shared)
    comp = compute_cycles(g, dsp_rows, lut_rows, cols, tiling.order, packing, shared)
    w_reps, x_reps = _reps(tiling, f, jn, qn)
    w_bytes = w_time = x_bytes = x_time = 0
    for rows, _, cnt_f in steps:
        for kq, cnt_q in chunks:
            nb = _block_bytes(rows * kq, weight_bits)
            w_bytes += nb * cnt_f * cnt_q * w_reps
            w_time += transfer_cycles(nb, bw) * cnt_f * cnt_q * w_reps
    for cj, cnt_j in colsz:
        for kq, cnt_q in chunks:
            nb = _block_bytes(kq * cj, act_bits)
            x_bytes += nb * cnt_j * cnt_q * x_reps
            x_time += transfer_cycles(nb, bw) * cnt_j * cnt_q * x_reps
    write = _block_bytes(g.m * g.n, act_bits)
    if bw is None and lat == 0:
        return GemmTiming(comp, comp, 0, w_bytes + x_bytes, write)
    # First chunk tile (j=0, f=0, q=0) and the last one (j=J-1, f=F-1, q=Q-1).
    first_rows = steps[0][0]
    k0 = chunks[0][0]
    c0 = colsz[0][0]
    t_w = transfer_cycles(_block_bytes(first_rows * k0, weight_bits), bw)
    if preloaded:  # R10b: no request for it, its words written before cycle 0
        w_time -= t_w
        t_w = 0
    t_x = transfer_cycles(_block_bytes(k0 * c0, act_bits), bw)
    # R8: the first window waits for the activation block's first word, and ends no
    # earlier than one cycle after its last (the weight block's come first, R7; none after
    # a prefetch, R10b)
    first = lat + t_w + max(ceil_div(t_x, k0), t_x + 1 - k0)
    last_r = steps[-1][1]
    last_c = colsz[-1][0]
    # R8: the window of the last block loaded ends a cycle after its last word at least
    bound = max(comp + first, lat + w_time + x_time + 1 + last_r + last_c)
    return GemmTiming(bound, comp, bound - comp, w_bytes + x_bytes, write)


def _dealt_analytical(g: GemmShape, dsp_rows: int, lut_rows: int, cols: int, group_b: int,
                      deal: Sequence[int], weight_bits: int, act_bits: int, bw: int | None,
                      lat: int, packing: int, steps: list, shared: bool) -> GemmTiming:
    """:func:`analytical_cycles` of a dealt GEMM (R3c): exact compute; with finite
    bandwidth the same two lower bounds (the first window's delay: ``L``, the weight blocks
    tile 0 requests, its activation block; every block back to back before the last
    window ends)."""
    seq = deal_sequence(g.n, np.array(deal, dtype=np.int64), cols - group_b, group_b)
    comp, c_last, r_last = _dealt_compute(seq, *_quotients(g, dsp_rows, lut_rows),
                                          cols - group_b, g.k, packing, shared)
    w_blocks = [rows for rows, _, n in steps for _ in range(n)]
    x_cols = [int(c) for c in seq[:, DEAL_CA] + seq[:, DEAL_CB]]
    read = (sum(_block_bytes(rows * g.k, weight_bits) for rows in w_blocks)
            + sum(_block_bytes(g.k * c, act_bits) for c in x_cols))
    write = _block_bytes(g.m * g.n, act_bits)
    if bw is None and lat == 0:
        return GemmTiming(comp, comp, 0, read, write)
    first_w = int(max(seq[0, DEAL_FA], seq[0, DEAL_FB])) + 1
    t_w = sum(transfer_cycles(_block_bytes(rows * g.k, weight_bits), bw)
              for rows in w_blocks[:first_w])
    t_x = transfer_cycles(_block_bytes(g.k * x_cols[0], act_bits), bw)
    first = lat + t_w + max(ceil_div(t_x, g.k), t_x + 1 - g.k)
    every = lat + dealt_transfer_cycles(seq, steps, g.k, weight_bits, act_bits, bw)
    bound = max(comp + first, every + 1 + r_last + c_last)
    return GemmTiming(bound, comp, bound - comp, read, write)


# ---------------------------------------------------------------------------------------
# The cycle-level kernel
# ---------------------------------------------------------------------------------------

@numba.njit(cache=True)
def first_block_rows(m_fixed: int, m_lut: int, rd: int, rl: int) -> tuple[int, int]:
    """R2: the DSP and LUT rows ``(a_0, b_0)`` of a GEMM's first weight block (row step 0),
    what R10b prefetches (``k_0 = min(KT, K)`` steps of them)."""
    nf = _row_steps(m_fixed, m_lut, rd, rl)
    return (m_fixed + nf - 1) // nf, (m_lut + nf - 1) // nf


@numba.njit(cache=True)
def word_arrival(i: int, steps: int, nbytes: int, bw: int, lat: int) -> int:
    """R7: the cycle, counted from the block's acceptance, in which word ``i`` of a block of
    ``steps`` words and ``nbytes`` bytes is written into its ring (``bw`` 0: unlimited
    bandwidth); ``i = steps - 1`` gives the block's completion."""
    if bw <= 0:
        return lat
    t = (nbytes + bw - 1) // bw
    return lat + ((i + 1) * t + steps - 1) // steps


@numba.njit(cache=True)
def _accept(earliest: int, chan: int, steps: int, nbytes: int, bw: int, lat: int,
            prev_word: int) -> tuple[int, int, int, int]:
    """R7 for one block of ``steps`` words and ``nbytes`` bytes requested no earlier than
    ``earliest`` (ring room, the previous request), the channel's previous block complete
    at ``chan``, its buffer's previous word written in ``prev_word``: the cycle it is
    accepted, its completion, and the cycles of its first and last word (one word per
    cycle per buffer, after the buffer's previous ones)."""
    start = max(chan - lat, earliest)
    end = start + word_arrival(steps - 1, steps, nbytes, bw, lat)
    first = max(start + word_arrival(0, steps, nbytes, bw, lat), prev_word + 1)
    return start, end, first, max(end, first + steps - 1)


@numba.njit(cache=True)
def _write_row(out: np.ndarray, status: int, cycles: int, stall: int, dram: int, j: int,
               f: int, q: int) -> None:
    out[STATUS] = status
    out[CYCLES] = cycles
    out[STALL] = stall
    out[DRAM_READ] = dram
    out[COLUMN_BLOCK] = j
    out[ROW_STEP] = f
    out[K_CHUNK] = q


@numba.njit(cache=True)
def _gemm_schedule(mf: int, ml: int, n: int, k: int, order: int, res: int, rd: int, rl: int,
                   c: int, pack: int, kt: int, wbits: int, abits: int, bw: int, lat: int,
                   limit: int, out: np.ndarray, pre: int = 0, pf_k: int = 0,
                   pf_bytes: int = 0, cap: int = 0, shared: bool = False) -> None:
    """Step one GEMM's chunk tiles (rules R1-R8) in the tiling ``order``, ``res`` (R3, R5b)
    into the result row ``out`` (int64, the columns of :class:`ScheduleResult`); ``pack`` is
    the DSP core's packing (R4b). R10b: ``pre`` — the first weight block is in the ring at
    cycle 0 (no request, no bytes); ``pf_k`` > 0 — after the GEMM's last
    request, a block of ``pf_k`` steps and ``pf_bytes`` bytes is requested, whose last word
    goes to column ``PREFETCH_LAST`` (-1 without); ``cycles`` stays the last drain's end.
    ``cap``: the rings' words (:func:`ring_steps` of the engine; 0: ``ring_steps(kt)``);
    ``shared``: one post-processor (R4's drain, :func:`drain_rows`)."""
    nf = _row_steps(mf, ml, rd, rl)
    nj = (n + c - 1) // c
    nq = (k + kt - 1) // kt
    qa, ra = mf // nf, mf % nf
    qb, rb = ml // nf, ml % nf
    chan = 0  # completion of the previous block (e' of R7)
    if cap <= 0:
        cap = ring_steps(kt)  # R6
    # Per buffer and block loaded so far: steps before it (S_n of R6) and release time.
    nt = nj * nf * nq
    w_off = np.zeros(nt + 2, dtype=np.int64)  # one more block: R10b's prefetch
    w_rel = np.zeros(nt + 1, dtype=np.int64)
    x_off = np.zeros(nt + 1, dtype=np.int64)
    x_rel = np.zeros(nt, dtype=np.int64)
    w_n = 0  # blocks loaded so far, per buffer
    x_n = 0
    w_old = 0  # oldest block the next load need not wait for (R6)
    x_old = 0
    w_room = 0  # when the blocks before w_old are released (R6)
    x_room = 0
    w_ready = -1  # cycles of the first and last word of the last block loaded (R7)
    x_ready = -1
    w_first = 0
    x_first = 0
    acc = -1  # acceptance of the last block (R7: the next request's comes a cycle after)
    prev_f = -1
    prev_q_w = -1
    prev_j = -1
    prev_q_x = -1
    t_free = 0  # end of the previous window (R8)
    done = 0  # P of the previous output tile (R4/R4b)
    lead = 0  # D + s of the previous output tile (R4b)
    # The same schedule without loads: its end is the compute cycles (R8's stall = the gap).
    i_free = 0
    i_done = 0
    i_lead = 0
    dram = 0
    n_outer = nj if order == 0 else nf
    n_inner = nf if order == 0 else nj
    w_res = res != 0 and order == 0  # R5b: the inner loop's buffer is resident
    x_res = res != 0 and order == 1
    for outer in range(n_outer):
        for inner in range(n_inner):
            j = outer if order == 0 else inner
            f = inner if order == 0 else outer
            cj = min(c, n - j * c)
            a = qa + (1 if f < ra else 0)
            b = qb + (1 if f < rb else 0)
            r = drain_rows(a, b, shared)
            for q in range(nq):
                kq = min(kt, k - q * kt)
                # R5: a block differing from the previous chunk tile's; R5b: a resident
                # buffer's blocks in the first outer iteration only.
                new_w = outer == 0 if w_res else (f != prev_f or q != prev_q_w)
                new_x = outer == 0 if x_res else (j != prev_j or q != prev_q_x)
                pre_now = new_w and pre != 0 and w_n == 0
                if pre_now:  # R10b: in the ring since cycle 0
                    w_off[1] = kq
                    w_n = 1
                    prev_f = f
                    prev_q_w = q
                elif new_w:
                    nbytes = ((a + b) * kq * wbits + 7) // 8
                    w_off[w_n + 1] = w_off[w_n] + kq
                    while w_off[w_old] < w_off[w_n + 1] - cap:  # R6: room in the ring
                        w_room = max(w_room, w_rel[w_old])
                        w_old += 1
                    # R7, one request a cycle
                    acc, chan, w_first, w_ready = _accept(max(w_room, acc + 1), chan, kq,
                                                          nbytes, bw, lat, w_ready)
                    w_n += 1
                    dram += nbytes
                    prev_f = f
                    prev_q_w = q
                if new_x:
                    nbytes = (kq * cj * abits + 7) // 8
                    x_off[x_n + 1] = x_off[x_n] + kq
                    while x_off[x_old] < x_off[x_n + 1] - cap:  # R6: room in the ring
                        x_room = max(x_room, x_rel[x_old])
                        x_old += 1
                    # R7; with a weight block in the same request (accepted with it)
                    acc, chan, x_first, x_ready = _accept(
                        max(x_room, acc + (0 if new_w else 1)), chan, kq, nbytes, bw, lat,
                        x_ready)
                    x_n += 1
                    dram += nbytes
                    prev_j = j
                    prev_q_x = q
                # R8: step 0 waits for the first word of each block it loads; the window
                # ends no earlier than one cycle after their last words
                begin = t_free
                end = 0
                if new_w and not pre_now:
                    begin = max(begin, w_first)
                    end = w_ready + 1
                if new_x:
                    begin = max(begin, x_first)
                    end = max(end, x_ready + 1)
                i_begin = i_free
                if q == nq - 1:  # R4b: the last window ends no earlier than P - c_j, D + s
                    begin = max(begin, done - cj - kq, lead - kq)
                    i_begin = max(i_begin, i_done - cj - kq, i_lead - kq)
                t_free = max(begin + kq, end)
                i_free = i_begin + kq
                if not w_res:  # R6: released when its last window ends (R5b: never)
                    w_rel[w_n - 1] = t_free
                if not x_res:
                    x_rel[x_n - 1] = t_free
                if t_free > limit:
                    _write_row(out, CYCLE_LIMIT, t_free, t_free - i_free, dram, j, f, q)
                    return
            s = capture_lead(a, pack, b, shared)  # R4b
            lead = t_free + cj + s  # R4: the drain starts c_j cycles later, takes r_f
            i_lead = i_free + cj + s
            done = t_free + cj + r
            i_done = i_free + cj + r
    _write_row(out, DONE, done, done - i_done, dram, nj, nf, nq)
    out[PREFETCH_LAST] = -1
    if pf_k > 0:  # R10b: the next GEMM's first weight block, after every block of this one
        w_off[w_n + 1] = w_off[w_n] + pf_k
        while w_off[w_old] < w_off[w_n + 1] - cap:  # R6: room once blocks are released
            # (a resident buffer's, R5b, at the end of the GEMM's last window)
            w_room = max(w_room, t_free if w_res else w_rel[w_old])
            w_old += 1
        # R7, one request per cycle
        out[PREFETCH_LAST] = _accept(max(w_room, acc + 1), chan, pf_k, pf_bytes, bw, lat,
                                     w_ready)[3]


@numba.njit(cache=True)
def _dealt_schedule(mf: int, ml: int, n: int, k: int, deal: np.ndarray, rd: int, rl: int,
                    ca: int, cb: int, pack: int, kt: int, wbits: int, abits: int, bw: int,
                    lat: int, limit: int, out: np.ndarray, shared: bool = False) -> None:
    """Step one dealt GEMM's tiles (rule R3c with R4-R8; ``K <= KT``) into the result row
    ``out`` like :func:`_gemm_schedule` (``COLUMN_BLOCK`` holds the dealt tile where a
    limit stopped it, the tile count when done)."""
    nf = _row_steps(mf, ml, rd, rl)
    qa, ra = mf // nf, mf % nf
    qb, rb = ml // nf, ml % nf
    seq = deal_sequence(n, deal, ca, cb)
    nt = seq.shape[0]
    banks = ring_steps(kt, cb) // kt
    xcap = ring_steps(kt, cb)
    w_rel = np.zeros(nf, dtype=np.int64)  # release of each weight block (R3c)
    released = 0  # weight blocks released so far (a prefix)
    loaded = 0  # weight blocks requested so far (row-step order)
    x_off = np.zeros(nt + 1, dtype=np.int64)
    x_rel = np.zeros(nt, dtype=np.int64)
    x_old = 0
    x_room = 0
    chan = 0
    acc = -1
    w_ready = -1
    x_ready = -1
    w_first = 0
    x_first = 0
    t_free = 0
    done = 0
    lead = 0
    i_free = 0
    i_done = 0
    i_lead = 0
    dram = 0
    for t in range(nt):
        fa = seq[t, DEAL_FA]
        fb = seq[t, DEAL_FB]
        new_w = loaded <= max(fa, fb)  # R3c: at most one new block, the next one
        if new_w:
            f = loaded
            nbytes = (((qa + (1 if f < ra else 0)) + (qb + (1 if f < rb else 0))) * k * wbits
                      + 7) // 8
            room = w_rel[f - banks] if f >= banks else 0  # its bank's block released
            acc, chan, w_first, w_ready = _accept(max(room, acc + 1), chan, k, nbytes, bw,
                                                  lat, w_ready)  # R7, one request a cycle
            loaded += 1
            dram += nbytes
        nbytes = (k * (seq[t, DEAL_CA] + seq[t, DEAL_CB]) * abits + 7) // 8
        x_off[t + 1] = x_off[t] + k
        while x_off[x_old] < x_off[t + 1] - xcap:  # R6: room in the activation ring
            x_room = max(x_room, x_rel[x_old])
            x_old += 1
        # R7: joins the tile's last weight request, if it has one
        acc, chan, x_first, x_ready = _accept(max(x_room, acc + (0 if new_w else 1)), chan, k,
                                              nbytes, bw, lat, x_ready)
        dram += nbytes
        # R8 with every block requested for the tile; R4b
        c, r, s = dealt_tile(seq[t], qa, ra, qb, rb, ca, pack, shared)
        begin = max(t_free, x_first, done - c - k, lead - k)
        end = x_ready + 1
        if new_w:
            begin = max(begin, w_first)
            end = max(end, w_ready + 1)
        t_free = max(begin + k, end)
        i_free = max(i_free, i_done - c - k, i_lead - k) + k
        x_rel[t] = t_free
        lo = nf  # R3c: both groups are past the blocks below their next row steps
        if t + 1 < nt:
            for fcol in (DEAL_FA, DEAL_FB):
                if seq[t + 1, fcol] >= 0:
                    lo = min(lo, seq[t + 1, fcol])
        while released < lo:
            w_rel[released] = t_free
            released += 1
        if t_free > limit:
            _write_row(out, CYCLE_LIMIT, t_free, t_free - i_free, dram, t, max(fa, fb), 0)
            return
        lead = t_free + c + s
        i_lead = i_free + c + s
        done = t_free + c + r
        i_done = i_free + c + r
    _write_row(out, DONE, done, done - i_done, dram, nt, nf, 1)
    out[PREFETCH_LAST] = -1


@numba.njit(cache=True)
def _schedule_many(params: np.ndarray, rd: int, rl: int, c: int, pack: int, kt: int,
                   wbits: int, abits: int, bw: int, lat: int, limit: int, out: np.ndarray,
                   cb: int, deals: np.ndarray, shared: bool = False) -> int:
    """Run :func:`_gemm_schedule` for each row ``(mf, ml, n, k, groups, order, resident,
    bits, chain, deal)`` (R3's tiling; ``deal`` >= 0: the row is dealt, R3c, on column
    group B's ``cb`` columns, its ``F`` entries from ``deals[deal]`` on, run by
    :func:`_dealt_schedule`)
    (``bits``: the weight-role operand's width, R11b; ``wbits`` is unused when given;
    ``chain``: R10b, one of ``CHAIN_*``, only in a row of one GEMM followed by another).

    Groups of a row are identical GEMMs: simulated once, multiplied. ``out[i]`` gets the
    result row (totals over groups; the stop position only in the row that hit the limit).
    Returns the index of the row that hit ``limit`` (cumulative cycles), or -1.
    """
    used = 0
    one = np.zeros(RESULT_COLUMNS, dtype=np.int64)
    pre = 0
    for i in range(params.shape[0]):
        g = params[i, 4]
        chain = params[i, 8]
        pf_k = 0
        pf_bytes = 0
        if chain != CHAIN_NONE:  # R10b: the next row's first weight block
            nxt = params[i + 1]
            pf_k = min(kt, nxt[3])
            a0, b0 = first_block_rows(nxt[0], nxt[1], rd, rl)
            pf_bytes = ((a0 + b0) * pf_k * nxt[7] + 7) // 8
        if params[i, 9] >= 0:  # R3c (neither prefetching nor preloaded: R10b)
            nf = _row_steps(params[i, 0], params[i, 1], rd, rl)
            _dealt_schedule(params[i, 0], params[i, 1], params[i, 2], params[i, 3],
                            deals[params[i, 9]:params[i, 9] + nf], rd, rl, c - cb, cb, pack,
                            kt, params[i, 7], abits, bw, lat, limit - used, one, shared)
        else:
            _gemm_schedule(params[i, 0], params[i, 1], params[i, 2], params[i, 3],
                           params[i, 5], params[i, 6], rd, rl, c, pack, kt, params[i, 7],
                           abits, bw, lat, limit - used, one, pre, pf_k, pf_bytes,
                           ring_steps(kt, cb), shared)
        issued = chain == CHAIN_FORCE or (chain == CHAIN_HOST and one[STATUS] == DONE
                                          and one[PREFETCH_LAST] < one[CYCLES])
        if issued and one[PREFETCH_LAST] >= one[CYCLES]:  # forced: done once it is in
            one[STALL] += one[PREFETCH_LAST] + 1 - one[CYCLES]
            one[CYCLES] = one[PREFETCH_LAST] + 1
        if issued:  # read by this command, during this GEMM
            one[DRAM_READ] += pf_bytes
        one[PREFETCH] = 1 if issued else 0
        one[PRELOADED] = pre
        pre = 1 if issued else 0
        if one[STATUS] != DONE or used + g * one[CYCLES] > limit:
            for t in range(RESULT_COLUMNS):
                out[i, t] = one[t]
            out[i, STATUS] = CYCLE_LIMIT
            return i
        out[i, STATUS] = DONE
        out[i, CYCLES] = g * one[CYCLES]
        out[i, STALL] = g * one[STALL]
        out[i, DRAM_READ] = g * one[DRAM_READ]
        out[i, PREFETCH_LAST] = one[PREFETCH_LAST]
        out[i, PREFETCH] = one[PREFETCH]
        out[i, PRELOADED] = one[PRELOADED]
        used += g * one[CYCLES]
    return -1


def schedule_cycles(params: np.ndarray, rd: int, rl: int, c: int, kt: int, wbits: int,
                    abits: int, bw: int | None, lat: int, limit: int | None,
                    row_bits: Sequence[int] | None = None, *, packing: int,
                    tilings: Sequence[Tiling | None] | None = None,
                    chain: Sequence[int] | None = None, group_b: int = 0,
                    shared: bool = False) -> tuple[list[ScheduleResult], int]:
    """Cycle-level timing of many GEMMs: returns (one :class:`ScheduleResult` per row,
    index of the row that hit the limit or -1; rows after it are not run).

    ``params`` is an int64 array of rows ``(m_fixed, m_lut, n, k, groups)``; the tiling
    (R3: loop order and residency) is computed here. ``row_bits`` gives each row's
    weight-role width (R11b: a matmul's is ``abits``); None: ``wbits`` for every row.
    ``packing``: the DSP core's rows per multiplier (R4b). ``tilings``: each row's tiling
    instead of R3's, None for R3's (a testbench playing a host that writes another one; a
    resident one must satisfy :func:`resident_fits`). ``chain``: R10b, per row, :data:`CHAIN_NONE`,
    :data:`CHAIN_HOST` or :data:`CHAIN_FORCE` (the host's are :func:`prefetch_chain`'s);
    only a row of one GEMM followed by a row of one GEMM may have another than
    :data:`CHAIN_NONE`; a dealt row (R3c) and the row before it get :data:`CHAIN_NONE` for
    :data:`CHAIN_HOST` (R10b). None: no prefetch. ``group_b``: the engine's column group
    B (``engine.group_b_cols``, R3c). ``shared``: the cores share one post-processor
    (``engine.shared_post``, R4). See :func:`_schedule_many` for what each row holds.
    """
    p0 = np.asarray(params, dtype=np.int64).reshape(-1, 5)
    chain = [CHAIN_NONE] * len(p0) if chain is None else [int(v) for v in chain]
    if len(chain) != len(p0):
        raise ValueError(f"chain has {len(chain)} entries for {len(p0)} rows")
    for i, v in enumerate(chain):
        if v not in (CHAIN_NONE, CHAIN_HOST, CHAIN_FORCE):
            raise ValueError(f"chain[{i}] must be one of 0, 1, 2, not {v}")
        if v != CHAIN_NONE and (i + 1 == len(p0) or p0[i, 4] != 1 or p0[i + 1, 4] != 1):
            raise ValueError(f"chain[{i}]: a prefetch needs a row of one GEMM followed by "
                             "another (R10b)")
    bits = [int(wbits)] * len(p0) if row_bits is None else [int(b) for b in row_bits]
    given = [None] * len(p0) if tilings is None else list(tilings)
    tilings = [gemm_tiling(GemmShape(int(r[0]), int(r[1]), int(r[2]), int(r[3])), rd, rl, c,
                           kt, b, abits, group_b=group_b, bw=bw, lat=lat, shared=shared)
               if t is None else t
               for r, b, t in zip(p0, bits, given, strict=True)]
    deals: list[int] = []
    offsets = []
    for r, t in zip(p0, tilings, strict=True):
        f = row_steps(int(r[0]), int(r[1]), rd, rl)
        if t.resident and not resident_fits(t.order, f, ceil_div(int(r[2]), c), int(r[3]), kt,
                                            group_b):
            raise ValueError(f"tiling {t} of GEMM {tuple(int(v) for v in r[:4])}: resident "
                             f"only with K <= k_tile {kt} and the inner blocks in one ring")
        offsets.append(len(deals) if t.dealt else -1)
        if t.dealt:
            check_deal(t.deal, int(r[2]), int(r[3]), f, c, kt, group_b)
            deals.extend(t.deal)
    for i in range(len(chain)):
        if chain[i] != CHAIN_NONE and (tilings[i].dealt or tilings[i + 1].dealt):
            if chain[i] == CHAIN_FORCE:
                raise ValueError(f"chain[{i}]: a dealt GEMM neither prefetches nor is "
                                 "preloaded (R10b)")
            chain[i] = CHAIN_NONE
    p = np.ascontiguousarray(np.column_stack([
        p0, np.array([[t.order, int(t.resident)] for t in tilings], dtype=np.int64).reshape(
            -1, 2), np.array(bits, dtype=np.int64), np.array(chain, dtype=np.int64),
        np.array(offsets, dtype=np.int64)]))
    out = np.zeros((p.shape[0], RESULT_COLUMNS), dtype=np.int64)
    stop = _schedule_many(p, int(rd), int(rl), int(c), int(packing), int(kt), int(wbits),
                          int(abits), 0 if bw is None else int(bw), int(lat),
                          NO_LIMIT if limit is None else int(limit), out, int(group_b),
                          np.array([*deals, 0], dtype=np.int64), bool(shared))
    return [ScheduleResult.from_row(row) for row in out.tolist()], int(stop)


def vector_cycles(elements: int, cost: int, lanes: int) -> int:
    """Rule R10 for a vector op without a pipeline (R13-R15)."""
    return math.ceil(elements * cost / lanes)


# ---------------------------------------------------------------------------------------
# The vector unit (R12-R16): every depth and latency, in cycles, in one place
# ---------------------------------------------------------------------------------------

#: R13: radix-2 restoring divider, one quotient bit per cycle (quotients below 2**32).
DIV_CYCLES = 32
#: R13: digit-by-digit integer square root of a radicand below 2**64, one root bit a cycle.
SQRT_CYCLES = 32
#: Lane reduction (max or sum) over the lanes into the row's running value: a registered
#: tree of fixed depth, the same for every lane count up to 2**16.
REDUCE_DEPTH = 4
#: Dyadic requantizer: multiply, round half to even by the shift, clamp.
REQ_DEPTH = 3
#: ShiftExp: the log2(e) shift-add, the clamp at n*x0, the quotient by x0 (at most 31, five
#: pipelined quotient-bit stages), the remainder and the shift.
EXP_DEPTH = 8
#: Multiply and shift (softmax's ``(e * f) >> (31 - p)``).
MUL_DEPTH = 2
#: LayerNorm's subtract-and-square before the sum.
SQUARE_DEPTH = 2
#: LayerNorm's last pass: subtract the mean, times the reciprocal, ``>> 1``, times gamma
#: plus beta, then the requantizer.
LN_OUT_DEPTH = 3 + REQ_DEPTH
#: R15 pipelines: GELU = two exps side by side, their sum, a per-lane pipelined divider,
#: ``e1 * f >> (31 - p)``, ``x * sigma``, the requantizer.
GELU_DEPTH = EXP_DEPTH + 1 + DIV_CYCLES + MUL_DEPTH + 1 + REQ_DEPTH
#: pos_embed: the branch's dyadic scaling, the table add, the requantizer.
POS_EMBED_DEPTH = REQ_DEPTH + 1 + REQ_DEPTH
#: R14 latencies per row beyond the three passes' beats.
SOFTMAX_LATENCY = ((REQ_DEPTH + REDUCE_DEPTH) + (REQ_DEPTH + EXP_DEPTH + REDUCE_DEPTH)
                   + DIV_CYCLES + MUL_DEPTH)
LAYERNORM_LATENCY = (REDUCE_DEPTH + DIV_CYCLES + SQUARE_DEPTH + REDUCE_DEPTH + SQRT_CYCLES
                     + DIV_CYCLES + LN_OUT_DEPTH)

#: Row-wise ops (R14): op -> (passes per row, cycles per row beyond the passes' beats).
ROW_OPS: dict[str, tuple[int, int]] = {
    "softmax": (3, SOFTMAX_LATENCY),
    "layernorm": (3, LAYERNORM_LATENCY),
}
#: Element-wise pipelines (R15): op -> pipeline depth.
STREAM_OPS: dict[str, int] = {
    "gelu": GELU_DEPTH,
    "pos_embed": POS_EMBED_DEPTH,
    "requant": REQ_DEPTH,
}
#: Every named depth, for the docs and the RTL issue.
VECTOR_DEPTHS: dict[str, int] = {
    "DIV_CYCLES": DIV_CYCLES, "SQRT_CYCLES": SQRT_CYCLES, "REDUCE_DEPTH": REDUCE_DEPTH,
    "REQ_DEPTH": REQ_DEPTH, "EXP_DEPTH": EXP_DEPTH, "MUL_DEPTH": MUL_DEPTH,
    "SQUARE_DEPTH": SQUARE_DEPTH, "LN_OUT_DEPTH": LN_OUT_DEPTH, "GELU_DEPTH": GELU_DEPTH,
    "POS_EMBED_DEPTH": POS_EMBED_DEPTH, "SOFTMAX_LATENCY": SOFTMAX_LATENCY,
    "LAYERNORM_LATENCY": LAYERNORM_LATENCY,
}


def vector_op_cycles(op: str, elements: int, rows: int, length: int, lanes: int,
                     cost: int) -> int:
    """Cycles of one vector op in closed form: R14 for a row-wise op given its ``rows`` of
    ``length``, R15 for an element-wise pipeline, else R10 with ``cost``."""
    if op in ROW_OPS and rows > 0:
        passes, lat = ROW_OPS[op]
        return rows * (passes * ceil_div(length, lanes) + lat)
    if op in STREAM_OPS:
        return ceil_div(elements, lanes) + STREAM_OPS[op]
    return vector_cycles(elements, cost, lanes)


def attention_cycles(groups: int, s: int, v: int, c: int) -> int:
    """R16 in closed form: QK^T, softmax and A.V of ``groups`` groups of ``s``, ``v``, ``c``
    cycles each."""
    g = groups
    return max(g * (s + c), s + v + g * c, s + v + (g - 1) * max(s, v) + c)


@numba.njit(cache=True)
def _attention_steps(groups: int, s: int, v: int, c: int) -> int:
    """R16 stepped group by group (the cycle mode): ends of QK^T g, softmax g, A.V g."""
    engine = 0
    vec = 0
    soft_end = np.zeros(groups, dtype=np.int64)
    for g in range(groups):
        engine += s  # QK^T g done
        vec = max(vec, engine) + v  # softmax g: after its scores and the previous softmax
        soft_end[g] = vec
    for g in range(groups):
        engine = max(engine, soft_end[g]) + c  # A.V g: engine free and its softmax done
    return engine


@numba.njit(cache=True)
def _vector_steps(rows: int, beats: int, passes: int, latency: int) -> int:
    """R14 stepped row by row and pass by pass (the cycle mode): the row's passes stream
    ``beats`` each; the latency is the drains and the scalar units between them."""
    t = 0
    for _ in range(rows):
        for _ in range(passes):
            t += beats
        t += latency
    return t


def vector_op_steps(op: str, elements: int, rows: int, length: int, lanes: int,
                    cost: int) -> int:
    """Cycles of one vector op as the cycle mode steps them (equal to
    :func:`vector_op_cycles`; tested)."""
    if op in ROW_OPS and rows > 0:
        passes, lat = ROW_OPS[op]
        return int(_vector_steps(rows, ceil_div(length, lanes), passes, lat))
    return vector_op_cycles(op, elements, rows, length, lanes, cost)


def attention_steps(groups: int, s: int, v: int, c: int) -> int:
    """R16 as the cycle mode steps it (equal to :func:`attention_cycles`; tested)."""
    return int(_attention_steps(int(groups), int(s), int(v), int(c)))
