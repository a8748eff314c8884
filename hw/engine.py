"""The GEMM engine's datapath: DSP core, LUT core and their post-processors, from sim.arch."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.core import OutputStationaryCore
from hw.params import act_shape, check_instance, format_fields, index_shape, lane_shape
from hw.postproc import PostProcessor
from quant.errors import ConfigError
from quant.formats import Scheme, weight_format
from quant.requant import REQUANTIZER
from sim.arch import GemmEngine
from sim.resources import core_operands, rtl_runs_matmul, shares_post


def check_matmul(engine: GemmEngine, matmul: object) -> bool:
    """``matmul`` as a bool; ConfigError if it is set for an engine whose top cannot have
    the matmul path (:func:`sim.resources.rtl_runs_matmul`)."""
    if not isinstance(matmul, bool):
        raise ConfigError(f"matmul must be a bool, not {matmul!r}")
    if matmul and not rtl_runs_matmul(engine):
        raise ConfigError(f"matmul must be False for an engine with dsp_rows {engine.dsp_rows}, "
                          f"dsp_packing {engine.dsp_packing} and acc_bits {engine.acc_bits} "
                          "(the matmul path needs an unpacked DSP core whose accumulators "
                          "hold a product of its widened operands), not True")
    return matmul


class EngineDatapath(wiring.Component):
    """Both cores of a :class:`sim.arch.GemmEngine` sharing one activation stream.

    The DSP core (``dsp_rows x cols`` fixed PEs, ``dsp_packing`` of them per multiplier) and
    the LUT core (``lut_rows x cols`` SP2 or
    PoT PEs) take the same activation step ``x`` and the same ``valid``/``first`` in
    lockstep, each its own weight words (sim.timing rules R3/R4). Both drain the same row
    index in parallel into their own post-processor (requantize, bias, ReLU, clamp to the
    GEMM's output format ``out_bits``/``out_signed``), whose results appear one cycle later.
    A core with 0 rows is absent and so are its ports. With ``engine.shared_post`` (and both
    cores) one post-processor serves both (R4: the controller drains the DSP core's rows,
    then the LUT core's): ``drain_lut`` picks the core whose row ``drain_row`` it takes, with
    that core's parameters, and its results appear on ``y_dsp`` and ``y_lut`` alike.

    Matmuls (sim.timing R11; built with ``matmul=True``, on an engine
    :func:`sim.resources.rtl_runs_matmul` accepts): with the ``matmul`` input set, the DSP
    core's weight words of a step carry ``act_bits``-bit values laid end to end
    (:func:`hw.params.matmul_words`), row ``i``'s at bit ``i * act_bits``, extended by
    ``a_signed``; the activations are extended by
    ``b_signed`` (otherwise by the engine's activation format), so the DSP PEs take
    ``act_bits + 1``-bit signed operands (R11c, :func:`sim.resources.core_operands`); its
    post-processor passes the accumulators through (R11d) on lanes of
    :func:`hw.params.lane_shape`. Without it the datapath is the GEMM engine's alone.

    Parameters:
        engine: the engine.
        matmul: build the matmul path.

    Members (``d``/``l`` ports exist only when the core does):
        x, valid, first, last, drain_row, drain: shared step and drain controls;
            ``drain_lut`` (only with a shared post-processor): the row is the LUT core's.
        out_bits, out_signed: the output format both post-processors clamp to.
        matmul, a_signed, b_signed: the matmul mode and its operands' signedness (only
            with the matmul path: :attr:`runs_matmul`).
        w_dsp, w_lut: weight words of one K step per core.
        mult_dsp, shift_dsp, bias_dsp, relu_dsp (and ``_lut``): the drained row's
            requantization parameters.
        y_dsp, y_lut, y_valid: requantized outputs of the drained rows.

    On an engine with column group B (``engine.group_b_cols``, sim.timing rule R3c) each
    core also takes group B's weight words (``wb_dsp``, ``wb_lut``: columns from
    ``cols - group_b_cols`` on multiply them) and group B's requantization parameters
    (``mult_dsp_b`` ...), which its post-processor applies to those columns' lanes.
    """

    def __init__(self, engine: GemmEngine, matmul: bool = False) -> None:
        check_instance("engine", engine, GemmEngine, "a sim.arch.GemmEngine")
        self.engine = engine
        self.runs_matmul = check_matmul(engine, matmul)
        self.shared = shares_post(engine)  # R4: one post-processor for both cores
        act = engine.act_format
        self.cores: dict[str, tuple] = {}
        if engine.dsp_rows:
            self.cores["dsp"] = (weight_format(Scheme.FIXED, engine.weight_bits),
                                 engine.dsp_rows)
        if engine.lut_rows:
            self.cores["lut"] = (weight_format(engine.lut_core_scheme, engine.weight_bits),
                                 engine.lut_rows)
        rows = max(engine.dsp_rows, engine.lut_rows)
        max_shift = REQUANTIZER.shift_range(engine.acc_bits)[1]
        ports = {
            "x": In(data.ArrayLayout(act_shape(act), engine.cols)),
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "drain": In(1),
            "drain_row": In(index_shape(rows)),
            **({"drain_lut": In(1)} if self.shared else {}),
            **{k: In(v) for k, v in format_fields().items()},
            **({k: In(1) for k in ("matmul", "a_signed", "b_signed")} if self.runs_matmul else {}),
            "y_valid": Out(1),
        }
        self.split = engine.cols - engine.group_b_cols if engine.group_b_cols else 0
        for name, (fmt, r) in self.cores.items():
            ports[f"w_{name}"] = In(data.ArrayLayout(fmt.bits, r))
            for sfx in ("", "_b") if self.split else ("",):
                if sfx:
                    ports[f"wb_{name}"] = In(data.ArrayLayout(fmt.bits, r))
                ports[f"mult_{name}{sfx}"] = In(REQUANTIZER.mult_bits)
                ports[f"shift_{name}{sfx}"] = In(range(max_shift + 1))
                ports[f"bias_{name}{sfx}"] = In(engine.acc_bits)
                ports[f"relu_{name}{sfx}"] = In(1)
            ports[f"y_{name}"] = Out(data.ArrayLayout(
                lane_shape(engine, name, self.runs_matmul), engine.cols))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        e = self.engine
        # one post-processor per column group (R3c), each with its group's parameters: per
        # core, or (R4) one for both cores, built with the LUT core, taking the row of the
        # core ``drain_lut`` picks
        lanes = ([("", range(self.split)), ("_b", range(self.split, e.cols))]
                 if self.split else [("", range(e.cols))])
        cores = {}
        for name, (fmt, rows) in self.cores.items():
            wide = name == "dsp" and self.runs_matmul
            if wide:  # R11c: act_bits + 1-bit signed operands
                w_bits, act = core_operands(e, name, True)
                fmt = weight_format(Scheme.FIXED, w_bits)
            else:
                act = e.act_format
            core = cores[name] = OutputStationaryCore(
                fmt, act, e.acc_bits, rows, e.cols, e.dsp_packing if name == "dsp" else 1,
                self.split)
            owners = ((name,) if not self.shared else ("dsp", "lut") if name == "lut" else ())
            bypass = self.runs_matmul and "dsp" in owners  # R11d
            built = lanes if owners else []  # this core's post-processors' groups
            posts = [PostProcessor.for_engine(
                e.acc_bits, len(cols), lane_bits=lane_shape(e, "dsp", True).width if bypass
                else None) for _, cols in built]
            m.submodules[f"{name}_core"] = core
            for (sfx, _), post in zip(built, posts, strict=True):
                m.submodules[f"{'_'.join(owners)}_post{sfx}"] = post
            if wide:
                self._matmul_operands(m, core)
            else:
                m.d.comb += [core.w.eq(getattr(self, f"w_{name}")), core.x.eq(self.x)]
                if self.split:
                    m.d.comb += core.wb.eq(getattr(self, f"wb_{name}"))
            if bypass:
                m.d.comb += [post.bypass.eq(self.matmul) for post in posts]
            m.d.comb += [
                core.valid.eq(self.valid),
                core.first.eq(self.first),
                core.last.eq(self.last),
                core.drain_row.eq(self.drain_row),
            ]
            for (sfx, cols), post in zip(built, posts, strict=True):
                self._wire_post(m, post, owners, cores, sfx, cols)
        return m

    def _wire_post(self, m: Module, post: PostProcessor, owners: tuple[str, ...],
                   cores: dict[str, OutputStationaryCore], sfx: str, cols: range) -> None:
        """Connect the post-processor of group ``sfx`` (columns ``cols``) of the ``owners``
        cores: one core's, or both cores' (R4), whose row and parameters ``drain_lut``
        picks and whose results go to both cores' outputs."""
        def own(field):
            dsp, *lut = (getattr(self, f"{field}_{core}{sfx}") for core in owners)
            return Mux(self.drain_lut, lut[0], dsp) if lut else dsp

        if len(owners) == 2:
            for i, c in enumerate(cols):
                m.d.comb += [post.acc[i].eq(Mux(self.drain_lut, cores["lut"].out[c],
                                                cores["dsp"].out[c])),
                             *(getattr(self, f"y_{core}")[c].eq(post.y[i]) for core in owners)]
        elif self.split:
            core, y = cores[owners[0]], getattr(self, f"y_{owners[0]}")
            m.d.comb += [*(post.acc[i].eq(core.out[c]) for i, c in enumerate(cols)),
                         *(y[c].eq(post.y[i]) for i, c in enumerate(cols))]
        whole = len(owners) == 1 and not self.split
        m.d.comb += [
            *((post.acc.eq(cores[owners[0]].out),) if whole else ()),
            post.valid.eq(self.drain),
            post.mult.eq(own("mult")),
            post.shift.eq(own("shift")),
            post.bias.eq(own("bias").as_signed()),
            post.relu.eq(own("relu")),
            post.out_bits.eq(self.out_bits),
            post.out_signed.eq(self.out_signed),
            *((getattr(self, f"y_{owners[0]}").eq(post.y),) if whole else ()),
            self.y_valid.eq(post.y_valid),
        ]

    def _matmul_operands(self, m: Module, core: OutputStationaryCore) -> None:
        """The DSP core's widened operands: a weight word sign-extended, or in a matmul the
        row's ``act_bits`` value of the step's words extended by ``a_signed``; an activation
        extended by the engine's format, or in a matmul by ``b_signed`` (R11b, R11c); group
        B's weight words likewise."""
        e = self.engine
        ab, wb = e.act_bits, e.weight_bits
        for src, dst in ((self.w_dsp, core.w), *(((self.wb_dsp, core.wb),) if self.split
                                                 else ())):
            words = Value.cast(src)
            for r in range(e.dsp_rows):
                own = src[r].as_signed()
                if (r + 1) * ab <= e.dsp_rows * wb:  # a row the room rule can give a value
                    v = words[r * ab:(r + 1) * ab]
                    mm = Cat(v, self.a_signed & v[-1]).as_signed()
                    m.d.comb += dst[r].eq(Mux(self.matmul, mm, own))
                else:
                    m.d.comb += dst[r].eq(Mux(self.matmul, 0, own))
        ext = Mux(self.matmul, self.b_signed, int(e.act_signed))
        for c in range(e.cols):
            xb = Value.cast(self.x[c])
            m.d.comb += core.x[c].eq(Cat(xb, ext & xb[-1]))
