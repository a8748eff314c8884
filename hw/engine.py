"""The GEMM engine's datapath: DSP core, LUT core and their post-processors, from sim.arch."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.core import OutputStationaryCore
from hw.params import act_shape, check_instance, format_fields, index_shape, out_shape
from hw.postproc import PostProcessor
from quant.formats import Scheme, weight_format
from quant.requant import REQUANTIZER
from sim.arch import GemmEngine


class EngineDatapath(wiring.Component):
    """Both cores of a :class:`sim.arch.GemmEngine` sharing one activation stream.

    The DSP core (``dsp_rows x cols`` fixed PEs, ``dsp_packing`` of them per multiplier) and
    the LUT core (``lut_rows x cols`` SP2 or
    PoT PEs) take the same activation step ``x`` and the same ``valid``/``first`` in
    lockstep, each its own weight words (sim.timing rules R3/R4). Both drain the same row
    index in parallel into their own post-processor (requantize, bias, ReLU, clamp to the
    GEMM's output format ``out_bits``/``out_signed``), whose results appear one cycle later.
    A core with 0 rows is absent and so are its ports.

    Members (``d``/``l`` ports exist only when the core does):
        x, valid, first, last, drain_row, drain: shared step and drain controls.
        out_bits, out_signed: the output format both post-processors clamp to.
        w_dsp, w_lut: weight words of one K step per core.
        mult_dsp, shift_dsp, bias_dsp, relu_dsp (and ``_lut``): the drained row's
            requantization parameters.
        y_dsp, y_lut, y_valid: requantized outputs of the drained rows.
    """

    def __init__(self, engine: GemmEngine) -> None:
        check_instance("engine", engine, GemmEngine, "a sim.arch.GemmEngine")
        self.engine = engine
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
            **{k: In(v) for k, v in format_fields().items()},
            "y_valid": Out(1),
        }
        for name, (fmt, r) in self.cores.items():
            ports[f"w_{name}"] = In(data.ArrayLayout(fmt.bits, r))
            ports[f"mult_{name}"] = In(REQUANTIZER.mult_bits)
            ports[f"shift_{name}"] = In(range(max_shift + 1))
            ports[f"bias_{name}"] = In(engine.acc_bits)
            ports[f"relu_{name}"] = In(1)
            ports[f"y_{name}"] = Out(data.ArrayLayout(out_shape(), engine.cols))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        e = self.engine
        for name, (fmt, rows) in self.cores.items():
            core = OutputStationaryCore(fmt, e.act_format, e.acc_bits, rows, e.cols,
                                        e.dsp_packing if name == "dsp" else 1)
            post = PostProcessor.for_engine(e.acc_bits, e.cols)
            m.submodules[f"{name}_core"] = core
            m.submodules[f"{name}_post"] = post
            m.d.comb += [
                core.w.eq(getattr(self, f"w_{name}")),
                core.x.eq(self.x),
                core.valid.eq(self.valid),
                core.first.eq(self.first),
                core.last.eq(self.last),
                core.drain_row.eq(self.drain_row),
                post.acc.eq(core.out),
                post.valid.eq(self.drain),
                post.mult.eq(getattr(self, f"mult_{name}")),
                post.shift.eq(getattr(self, f"shift_{name}")),
                post.bias.eq(getattr(self, f"bias_{name}").as_signed()),
                post.relu.eq(getattr(self, f"relu_{name}")),
                post.out_bits.eq(self.out_bits),
                post.out_signed.eq(self.out_signed),
                getattr(self, f"y_{name}").eq(post.y),
                self.y_valid.eq(post.y_valid),
            ]
        return m
