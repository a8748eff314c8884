"""Parameter checks and signal shapes shared by the hardware components.

Every component validates its arguments before building ports; the messages follow the
house pattern ``X must be Y, not {x!r}`` and raise :class:`quant.errors.ConfigError`.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Shape, ShapeLike, Signal, Value, signed, unsigned

from quant.errors import ConfigError, check_int_range
from quant.formats import ActFormat, WeightFormat
from quant.requant import REQUANTIZER
from sim.arch import GemmEngine
from sim.resources import out_lane_bits


def check_instance(name: str, value: object, cls: type, what: str) -> None:
    """Raise ConfigError unless ``value`` is a ``cls``."""
    if not isinstance(value, cls):
        raise ConfigError(f"{name} must be {what}, not {value!r}")


#: Attribute on the product of a multiply that is meant for a DSP slice. Vivado honours it
#: (``USE_DSP``); :func:`hw.synth.synthesize` maps every multiplier driving such a signal to
#: DSP slices whatever its width (Yosys alone sends products under 9 bits to LUTs).
USE_DSP = "use_dsp"


def dsp_product(m: Module, a: Value, b: Value, shape: ShapeLike, name: str) -> Signal:
    """``a * b`` as a signal marked for a DSP slice (:data:`USE_DSP`).

    ``shape`` must hold every product exactly and be no wider than the multiply itself, so
    that the emitted Verilog assigns the multiply straight to the marked wire.
    """
    p = Signal(shape, name=name, attrs={USE_DSP: "yes"})
    m.d.comb += p.eq(a * b)
    return p


def index_shape(count: int) -> range:
    """Shape of an index into ``count`` items (a row of a core, a step of a block).

    ``range(count)``, but at least one bit wide: a one-item index would be a zero-width
    signal, which the Verilog backend writes as ``[-1:0]`` (two bits to a Verilog reader, and
    a Verilator LITENDIAN error). The extra code is never produced.
    """
    return range(max(count, 2))


def act_shape(act: ActFormat) -> Shape:
    """Shape of an activation word: two's complement when signed, plain binary otherwise."""
    return signed(act.bits) if act.signed else unsigned(act.bits)


def out_shape() -> Shape:
    """Shape of an output lane of the GEMM engine: any output format the requantizer clamps
    to (:meth:`quant.requant.Requantizer.output_format`, up to ``max_out_bits`` bits, signed
    or unsigned) as a signed integer."""
    return signed(REQUANTIZER.max_out_bits + 1)


def lane_shape(engine: GemmEngine, core: str, matmul: bool = False) -> Shape:
    """Shape of an output lane of ``core`` (``"dsp"`` or ``"lut"``) on the top's ``out``
    stream: :func:`out_shape`, widened on a DSP core built with the matmul path
    (``matmul``) to carry its ``acc_bits`` accumulators through the post-processor's bypass
    (sim.timing R11d; :func:`sim.resources.out_lane_bits`)."""
    return signed(out_lane_bits(engine, core, matmul))


def matmul_words(values, act_bits: int, weight_bits: int, rows: int) -> list[int]:
    """The DSP core's ``rows`` weight words of one K step of a matmul (sim.timing R11b):
    weight-role value ``i`` (an integer of at most ``act_bits`` bits, signed or unsigned)
    in bits ``i*act_bits .. (i+1)*act_bits - 1`` of the words laid end to end (word ``r``
    at bit ``r*weight_bits``); :func:`sim.resources.matmul_block_violation` is the room
    rule."""
    mask = (1 << act_bits) - 1
    packed = 0
    for i, v in enumerate(values):
        packed |= (int(v) & mask) << (i * act_bits)
    if packed >> (rows * weight_bits):
        raise ConfigError(f"matmul rows must fit {rows} words of {weight_bits} bits at "
                          f"{act_bits} bits each, not {len(values)}")
    wmask = (1 << weight_bits) - 1
    return [(packed >> (r * weight_bits)) & wmask for r in range(rows)]


def format_fields() -> dict[str, object]:
    """Command fields of a GEMM's output format: ``out_bits`` (1..max_out_bits) and
    ``out_signed`` (:class:`quant.formats.ActFormat`)."""
    return {"out_bits": range(REQUANTIZER.max_out_bits + 1), "out_signed": 1}


def clamp_range(m: Module, out_bits: Value, out_signed: Value) -> tuple[Signal, Signal]:
    """``(qmax, qmin)`` of ``ActFormat(out_bits, out_signed)`` given as the command fields of
    :func:`format_fields`: ``2**b - 1`` and 0 unsigned, ``±(2**(b-1) - 1)`` signed (the
    magnitude has ``b - out_signed`` bits)."""
    n = REQUANTIZER.max_out_bits
    width = Signal(range(n + 1))
    qmax = Signal(n)
    qmin = Signal(signed(n + 1))
    m.d.comb += [
        width.eq(out_bits - out_signed),
        qmax.eq((Const(1, n + 1) << width) - 1),
        qmin.eq(Mux(out_signed, -qmax, 0)),
    ]
    return qmax, qmin


def product_bound(fmt: WeightFormat, act: ActFormat) -> int:
    """Largest |int_level * x| one PE can produce."""
    return fmt.max_abs_int * act.max_abs


def check_acc_bits(acc_bits: object, fmt: WeightFormat, act: ActFormat) -> int:
    """``acc_bits`` as an int, at least wide enough for one signed product."""
    need = max(2, product_bound(fmt, act).bit_length() + 1)
    return check_int_range("acc_bits", acc_bits, need, 64,
                           f"for {fmt.name}-{fmt.bits} weights and {act} activations")
