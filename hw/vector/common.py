"""Datapath pieces the vector-unit components share: the dyadic requantizer's stages, the
lane reduction tree and the radix-2 restoring divider (sim.timing rules R12, R13, R15).

Every depth comes from :mod:`sim.timing` (``VECTOR_DEPTHS``); the builders here raise
:class:`quant.errors.ConfigError` at elaboration if their structure and the rule disagree.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned

from quant.errors import ConfigError
from quant.requant import REQUANTIZER
from sim.resources import EXP_BITS  # an exp, an exp sum, a reciprocal: int32
from sim.timing import DIV_CYCLES, EXP_DEPTH, REDUCE_DEPTH, REQ_DEPTH

#: Quotient bits of shift-exp's ``x' // x0`` (``q <= n <= 30``: five stages, R14).
EXP_QUOTIENT_BITS = 5
#: Largest exp precision ``n`` (the ``n`` attr of softmax and gelu is 0..30).
EXP_N_MAX = 30


def round_shift(m: Module, p: Value, s: Value, name: str) -> Signal:
    """``round_half_even(p / 2**s)`` for ``s >= 0`` (quant.ref.round_shift), combinational."""
    q = Signal(signed(len(p)), name=f"{name}_q")
    s_m1 = Signal(len(s), name=f"{name}_sm1")
    guard = Signal(name=f"{name}_guard")
    sticky = Signal(name=f"{name}_sticky")
    y = Signal(signed(len(p) + 1), name=f"{name}_y")
    m.d.comb += [
        s_m1.eq(s - 1),
        q.eq(p >> s),  # arithmetic: floor
        guard.eq((s != 0) & (p >> s_m1)[0]),
        sticky.eq((s > 1) & ((p & ((Const(1, len(p) + 1) << s_m1) - 1)) != 0)),
        y.eq(q + (guard & (sticky | q[0]))),
    ]
    return y


def requant_stages(m: Module, xs: list[Value], en: Value, mult: Value, shift: Value,
                   qmax: Value | None, qmin: Value | None, name: str) -> list[Signal]:
    """The dyadic requantizer ``clamp(round_half_even(x * mult / 2**shift))`` of each lane of
    ``xs``, in :data:`sim.timing.REQ_DEPTH` registered stages that advance when ``en``:
    multiply, round by the shift, clamp. Returns the last stage's registers (signed,
    ``max_out_bits + 1`` wide). With ``qmax`` and ``qmin`` None the last stage registers the
    rounded value unclamped (``quant.ops.add.to_common``'s branch scaling; signed, wide
    enough for every product)."""
    stages = 3
    if stages != REQ_DEPTH:
        raise ConfigError(f"REQ_DEPTH must be {stages} (multiply, round, clamp), not "
                          f"{REQ_DEPTH}")
    outs = []
    pw = max(len(x) for x in xs) + len(mult) + 1
    for i, x in enumerate(xs):
        p = Signal(signed(pw), name=f"{name}_p{i}")
        r = Signal(signed(pw + 1), name=f"{name}_r{i}")
        y = Signal(signed(pw + 1 if qmax is None else REQUANTIZER.max_out_bits + 1),
                   name=f"{name}_y{i}")
        rr = round_shift(m, p, shift, f"{name}_rs{i}")
        yv = r if qmax is None else Mux(r > qmax, qmax, Mux(r < qmin, qmin, r))
        with m.If(en):
            m.d.sync += [
                p.eq(x * mult),
                r.eq(rr),
                y.eq(yv),
            ]
        outs.append(y)
    return outs


def delay(m: Module, v: Value, cycles: int, en: Value, name: str) -> Value:
    """``v`` through ``cycles`` registers that advance when ``en``."""
    for k in range(cycles):
        r = Signal.like(v, name=f"{name}_d{k}")
        with m.If(en):
            m.d.sync += r.eq(v)
        v = r
    return v


def stream_out(comp, m: Module, en: Value, ys: list[Value], stages: int, depth: int,
               name: str, valid_name: str = "valid") -> None:
    """The end of an element-wise pipeline of ``comp`` (``inp``/``out`` streams, ``en`` its
    advance): check that its ``stages`` are the timing rule's ``depth`` (constant ``name`` of
    sim.timing), delay ``inp.valid`` to match, and drive ``out`` with ``ys``."""
    if stages != depth:
        raise ConfigError(f"{name} must be {stages} (the pipeline's stages), not {depth}")
    v = delay(m, comp.inp.valid, depth - 1, en, valid_name)
    with m.If(en):
        m.d.sync += comp.out.valid.eq(v)
    for i, y in enumerate(ys):
        m.d.comb += comp.out.payload[i].eq(y)


def lane_tree(m: Module, xs: list[Value], op, name: str) -> tuple[Value, int]:
    """Reduce ``xs`` with the binary ``op`` in :data:`sim.timing.REDUCE_DEPTH` - 1 registered
    stages (the tree's levels spread evenly over them, whatever the lane count); the caller
    adds the last stage, the fold into the row's running value. Returns (result, stages)."""
    stages = REDUCE_DEPTH - 1
    levels = max(0, (len(xs) - 1).bit_length())
    if levels > 16:
        raise ConfigError(f"lanes must be at most 2**16, not {len(xs)}")
    vals = list(xs)
    done = 0
    for st in range(stages):
        todo = (levels * (st + 1)) // stages - done  # levels in this stage
        for _ in range(todo):
            nxt = []
            for j in range(0, len(vals), 2):
                nxt.append(op(vals[j], vals[j + 1]) if j + 1 < len(vals) else vals[j])
            vals = nxt
        done += todo
        regs = []
        for j, v in enumerate(vals):
            r = Signal(signed(len(v)) if v.shape().signed else unsigned(len(v)),
                       name=f"{name}_t{st}_{j}")
            m.d.sync += r.eq(v)
            regs.append(r)
        vals = regs
    assert len(vals) == 1
    return vals[0], stages


class RestoringDivider:
    """Radix-2 restoring division of ``bits``-bit unsigned operands, one quotient bit per
    cycle (sim.timing R13, :data:`~sim.timing.DIV_CYCLES` bits), numerator bits from the top.
    With ``latch`` (default) ``start`` latches numerator and divisor and the next ``bits``
    cycles each decide one bit; without it the cycle of ``start`` decides the first bit from
    the inputs themselves (for a divisor that is ready only in that cycle) and the next
    ``bits - 1`` cycles the rest. Either way the quotient and remainder are in
    ``quotient``/``remainder`` from the cycle after the last bit. Built with :meth:`build`."""

    def __init__(self, bits: int = DIV_CYCLES, name: str = "div", *, latch: bool = True
                 ) -> None:
        self.bits = bits
        self.name = name
        self.latch = latch
        self.start = Signal(name=f"{name}_start")
        self.numerator = Signal(bits, name=f"{name}_num")
        self.divisor = Signal(bits, name=f"{name}_den")
        self.quotient = Signal(bits, name=f"{name}_quot")
        self.remainder = Signal(bits + 1, name=f"{name}_rem")

    def build(self, m: Module) -> None:
        n = self.bits
        den = Signal(n, name=f"{self.name}_d")
        num = Signal(n, name=f"{self.name}_n")  # numerator bits not yet brought down
        step = Signal(range(n + 1), name=f"{self.name}_step")
        if self.latch:
            with m.If(self.start):
                m.d.sync += [den.eq(self.divisor), num.eq(self.numerator),
                             self.remainder.eq(0), self.quotient.eq(0), step.eq(n)]
            with m.Elif(step != 0):
                self._iterate(m, den, num, self.remainder, self.quotient, step, den, num, step)
            return
        c_den = Mux(self.start, self.divisor, den)
        c_num = Mux(self.start, self.numerator, num)
        c_rem = Mux(self.start, 0, self.remainder)
        c_quo = Mux(self.start, 0, self.quotient)
        c_step = Mux(self.start, n, step)
        with m.If(self.start | (step != 0)):
            m.d.sync += den.eq(c_den)
            self._iterate(m, c_den, c_num, c_rem, c_quo, c_step, den, num, step)

    def _iterate(self, m, den, num, rem, quo, step, den_r, num_r, step_r) -> None:
        n = self.bits
        trial = Signal(n + 2, name=f"{self.name}_trial")
        m.d.comb += trial.eq(rem * 2 + num[n - 1])
        ge = trial >= den
        m.d.sync += [
            self.remainder.eq(Mux(ge, trial - den, trial)),
            self.quotient.eq(Cat(ge, quo[:-1])),
            num_r.eq(num << 1),
            step_r.eq(step - 1),
        ]


class DigitSqrt:
    """Digit-by-digit integer square root of a ``2 * bits``-bit radicand, one root bit per
    cycle (R13, :data:`~sim.timing.SQRT_CYCLES` bits): ``start`` latches the radicand, the
    next ``bits`` cycles each decide one bit from the top; ``root`` holds ``math.isqrt`` from
    the cycle after the last."""

    def __init__(self, bits: int, name: str = "sqrt") -> None:
        self.bits = bits
        self.name = name
        self.start = Signal(name=f"{name}_start")
        self.radicand = Signal(2 * bits, name=f"{name}_v")
        self.root = Signal(bits, name=f"{name}_root")

    def build(self, m: Module) -> None:
        n = self.bits
        v = Signal(2 * n, name=f"{self.name}_rest")  # radicand bit pairs not yet brought down
        rem = Signal(n + 2, name=f"{self.name}_rem")
        step = Signal(range(n + 1), name=f"{self.name}_step")
        trial_rem = Signal(n + 3, name=f"{self.name}_tr")
        trial = Signal(n + 2, name=f"{self.name}_t")
        m.d.comb += [trial_rem.eq(Cat(v[2 * n - 2:], rem)), trial.eq(Cat(Const(1, 2),
                                                                          self.root))]
        with m.If(self.start):
            m.d.sync += [v.eq(self.radicand), rem.eq(0), self.root.eq(0), step.eq(n)]
        with m.Elif(step != 0):
            ge = trial_rem >= trial
            m.d.sync += [
                rem.eq(Mux(ge, trial_rem - trial, trial_rem)),
                self.root.eq(Cat(ge, self.root[:-1])),
                v.eq(v << 2),
                step.eq(step - 1),
            ]


def shift_exp_stages(m: Module, ds: list[Value], en: Value, x0: Value, exp_n: Value,
                     name: str) -> list[Signal]:
    """:func:`quant.ops.intmath.shift_exp` of each ``d <= 0`` of ``ds`` (signed), in
    :data:`sim.timing.EXP_DEPTH` registered stages that advance when ``en``: the log2(e)
    shift-add and the clamp at ``n * x0``; five stages of one quotient bit of ``x' // x0``
    each (a restoring division by ``|x0|``, ``q <= n <= 30``); ``r - 2 x0`` from the
    remainder; the shift ``<< (n - q) >> 1``. Returns the exps (unsigned, 32 bits)."""
    dx0 = Signal(EXP_BITS, name=f"{name}_minus_x0")  # |x0| = D
    nx0 = Signal(signed(EXP_BITS + 6), name=f"{name}_n_x0")
    m.d.comb += [dx0.eq(-x0), nx0.eq(exp_n * x0)]
    a_bits = max(len(d) for d in ds) + 2  # |x'| < 1.4375 * 2**(len(d) - 1)
    stages = 0

    def reg(v: Value, shape, nm: str) -> Signal:
        r = Signal(shape, name=nm)
        with m.If(en):
            m.d.sync += r.eq(v)
        return r

    a = []
    for i, d in enumerate(ds):  # E1: x' = max(d + (d >> 1) - (d >> 4), n * x0), a = -x'
        sa = Signal(signed(len(d) + 2), name=f"{name}_xl{i}")
        m.d.comb += sa.eq(d + (d >> 1) - (d >> 4))
        a.append(reg(-Mux(sa > nx0, sa, nx0), a_bits, f"{name}_a0_{i}"))
    stages += 1
    qv = [Const(0, EXP_QUOTIENT_BITS)] * len(ds)
    for k in reversed(range(EXP_QUOTIENT_BITS)):  # E2-E6: one quotient bit each
        t = EXP_QUOTIENT_BITS - k
        na, nq = [], []
        for i in range(len(ds)):
            dk = Signal(EXP_BITS + k, name=f"{name}_dk{k}_{i}")
            m.d.comb += dk.eq(dx0 << k)
            ge = a[i] >= dk
            na.append(reg(Mux(ge, a[i] - dk, a[i]), a_bits, f"{name}_a{t}_{i}"))
            nq.append(reg(qv[i] | (ge << k), EXP_QUOTIENT_BITS, f"{name}_q{t}_{i}"))
        a, qv = na, nq
        stages += 1
    ts = [reg(dx0 * 2 - a[i], EXP_BITS + 1, f"{name}_t{i}")  # E7: r - 2 x0 = 2|x0| - rem
          for i in range(len(ds))]
    tq = [reg(qv[i], EXP_QUOTIENT_BITS, f"{name}_q7_{i}") for i in range(len(ds))]
    stages += 1
    es = []
    for i in range(len(ds)):  # E8: e = (t << (n - q)) >> 1
        sh = Signal(range(EXP_N_MAX + 1), name=f"{name}_sh{i}")
        m.d.comb += sh.eq(exp_n - tq[i])
        es.append(reg((ts[i] << sh) >> 1, EXP_BITS, f"{name}_e{i}"))
    stages += 1
    if stages != EXP_DEPTH:
        raise ConfigError(f"EXP_DEPTH must be {stages} (the shift-exp's stages), not "
                          f"{EXP_DEPTH}")
    return es
