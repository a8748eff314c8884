"""Sweep specifications: a YAML file → a validated, frozen :class:`SweepSpec`.

A spec names **axes** (each a list, a scalar or an inclusive range ``{from, to, step}``)
whose cartesian product is the set of design points, the **stages** every point runs and the
**constraints** a result must meet::

    name: codesign
    stages: [accuracy, simulate, synth]
    axes:
      accel: tiny                        # preset name or YAML file (relative to the spec)
      part: [XC7Z020, XCZU9EG]           # any --set key of the accelerator is an axis
      engine.weight_bits: [3, 4]
      fraction: {from: 0.25, to: 0.75, step: 0.25}
      model: cnn
    accuracy: {method: qat, data: digits, epochs: 3, float_epochs: 10}
    simulate: {mode: analytical}
    constraints: {fits: {lut_cap: 0.8}, max_accuracy_drop: 1.0}

Stages: ``accuracy`` (QAT or PTQ of ``model``, shared float training), ``simulate`` (the
workload, or the QAT artifact), ``synth`` (Yosys, engine datapath), ``verify`` (random GEMMs
on the RTL under cocotb) and ``pim`` (the artifact on PIM macros: axes ``macro`` and
``macro.<arithmetic field>``). Everything is checked here, before any work starts; each
error is one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from quant.errors import ConfigError, check_choice, check_fraction, check_int_range
from quant.pim import PimArith
from sim.arch import PARTS, GemmEngine, Memory, VectorUnit
from sim.config import preset_names
from sim.pim import load_macro
from sim.workload import shipped_workloads

STAGES = ("accuracy", "simulate", "synth", "verify", "pim")
#: Workload sources of the simulate stage; at most one per spec.
SOURCES = ("model", "topology", "artifact")
#: Axes that are not accelerator fields.
POINT_AXES = ("accel", "fraction", "seed", "scheme", "macro", *SOURCES)
#: Accelerator sections whose fields are axes as ``section.field`` (the ``--set`` keys).
SECTIONS: dict[str, type] = {"engine": GemmEngine, "memory": Memory, "vector": VectorUnit}
#: Accelerator keys without a section.
TOP_FIELDS: dict[str, type] = {"part": str, "clock_mhz": float}
#: PIM macro arithmetic fields are axes as ``macro.<field>`` (``fpim pim eval``'s overrides).
MACRO_SECTION = "macro"
SIM_MODES = ("analytical", "cycle", "plain")
QAT_SCHEMES = ("fixed", "pot", "sp2", "msq", "f8")
QAT_MODELS = ("resnet20", "resnet32", "resnet56", "cnn")
DATASETS = ("digits",)  # the others need a data directory on every worker
SPEC_KEYS = ("name", "description", "stages", "axes", "constraints", *STAGES)


@dataclass(frozen=True)
class Axis:
    """One axis: its name and its values, in order."""

    name: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class AccuracyRecipe:
    """How a point's accuracy is measured (``fpim quantize``'s options).

    Members:
        method: ``qat`` (fine-tune ``epochs``) or ``ptq`` (calibrate and convert, no
            fine-tuning).
        data: dataset (digits: bundled with scikit-learn, so every worker has it).
        epochs: QAT epochs (None: 3 for qat, 0 for ptq, which allows nothing else).
        float_epochs: float training epochs (the float model is trained once per model,
            data and seed and shared by every point).
        lr, float_lr: learning rates of QAT and float training.
        batch_size: images per step.
        first_last_bits: fixed-point bits of the first conv and last linear, 0 = like the
            rest (0 makes every GEMM fit the point's engine).
        input_bits: bits of the quantized input images (None: the engine's act_bits).
        pool_extra_bits: fractional bits kept by average pooling (0 fits the engine).
        msq_rule: msq row ranking, ``mse`` or ``variance``.
        width: channel multiplier of the model.
    """

    method: str = "qat"
    data: str = "digits"
    epochs: int | None = None
    float_epochs: int = 10
    lr: float = 0.01
    float_lr: float = 0.1
    batch_size: int = 128
    first_last_bits: int = 0
    input_bits: int | None = None
    pool_extra_bits: int = 0
    msq_rule: str = "mse"
    width: int = 1

    @property
    def qat_epochs(self) -> int:
        """The fine-tuning epochs: ``epochs``, or the method's default."""
        return self.epochs if self.epochs is not None else (0 if self.method == "ptq" else 3)

    def __post_init__(self) -> None:
        check_choice("accuracy.method", self.method, ("qat", "ptq"))
        check_choice("accuracy.data", self.data, DATASETS)
        if self.epochs is not None:
            check_int_range("accuracy.epochs", self.epochs, 0 if self.method == "ptq" else 1,
                            0 if self.method == "ptq" else 10000, f"for {self.method}")
        check_int_range("accuracy.float_epochs", self.float_epochs, 0, 10000)
        check_int_range("accuracy.batch_size", self.batch_size, 1, 65536)
        check_int_range("accuracy.width", self.width, 1, 64)
        check_int_range("accuracy.pool_extra_bits", self.pool_extra_bits, 0, 8)
        if self.first_last_bits != 0:
            check_int_range("accuracy.first_last_bits", self.first_last_bits, 2, 16, "(or 0)")
        if self.input_bits is not None:
            check_int_range("accuracy.input_bits", self.input_bits, 2, 16, "(or null)")
        check_choice("accuracy.msq_rule", self.msq_rule, ("mse", "variance"))
        for f in ("lr", "float_lr"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"accuracy.{f} must be a positive number, not {v!r}")


@dataclass(frozen=True)
class SimulateOptions:
    """``mode``: the simulator's fidelity level (analytical, cycle or plain)."""

    mode: str = "analytical"

    def __post_init__(self) -> None:
        check_choice("simulate.mode", self.mode, SIM_MODES)


@dataclass(frozen=True)
class SynthOptions:
    """``family``: synth_xilinx family (None: from the part); ``yosys``: binary (None: PATH)."""

    family: str | None = None
    yosys: str | None = None

    def __post_init__(self) -> None:
        if self.family is not None:
            check_choice("synth.family", self.family, ("xc7", "xcup"))


@dataclass(frozen=True)
class VerifyOptions:
    """``cases`` random GEMMs with ``seed`` on the Verilator model of the point's RTL."""

    cases: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        check_int_range("verify.cases", self.cases, 1, 10000)
        check_int_range("verify.seed", self.seed, 0, 2**31 - 1)


@dataclass(frozen=True)
class PimOptions:
    """The ``pim`` stage: the artifact's cost on the chip of PIM macros and its accuracy with
    every GEMM on the PIM kernel (``fpim pim simulate`` and ``fpim pim eval``).

    Members:
        data: test data (None: the artifact's, else digits).
        limit: the first ``limit`` test images only (None: all).
        seed: seed of the thermal noise.
    """

    data: str | None = None
    limit: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.data is not None:
            check_choice("pim.data", self.data, DATASETS)
        if self.limit is not None:
            check_int_range("pim.limit", self.limit, 1, 1_000_000, "(or null)")
        check_int_range("pim.seed", self.seed, 0, 2**31 - 1)


@dataclass(frozen=True)
class Constraints:
    """What a result must meet to count (and to be on the Pareto front).

    Members:
        lut_cap: fraction of the part's LUTs the engine may use (every engine must fit its
            part anyway: :mod:`sim.config` refuses one that does not).
        min_accuracy: accuracy floor of the quantized model, percent (None: none).
        max_accuracy_drop: most percentage points the quantized model may lose against its
            float model (None: no limit).
    """

    lut_cap: float = 1.0
    min_accuracy: float | None = None
    max_accuracy_drop: float | None = None

    def __post_init__(self) -> None:
        if check_fraction("constraints.fits.lut_cap", self.lut_cap) == 0:
            raise ConfigError("constraints.fits.lut_cap must be a number in (0, 1], not 0")
        for f, hi in (("min_accuracy", 100), ("max_accuracy_drop", 100)):
            v = getattr(self, f)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or not 0 <= v <= hi):
                raise ConfigError(f"constraints.{f} must be a number in [0, {hi}] (percent) "
                                  f"or null, not {v!r}")


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: axes, stages and their options, constraints.

    ``root`` is the directory relative paths in the spec (YAML presets, topologies,
    artifacts) are resolved against: the spec file's.
    """

    name: str
    axes: tuple[Axis, ...]
    stages: tuple[str, ...]
    constraints: Constraints = Constraints()
    accuracy: AccuracyRecipe | None = None
    simulate: SimulateOptions = SimulateOptions()
    synth: SynthOptions = SynthOptions()
    verify: VerifyOptions = VerifyOptions()
    pim: PimOptions = PimOptions()
    root: Path = Path(".")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    @property
    def source(self) -> str | None:
        """The axis that names the simulate stage's workload (None: the accuracy's model)."""
        found = [a.name for a in self.axes if a.name in SOURCES]
        if "accuracy" in self.stages:
            return None
        return found[0] if found else None

    def __len__(self) -> int:
        return math.prod(len(a.values) for a in self.axes)

    def points(self) -> typing.Iterator[dict[str, Any]]:
        """Every point, axis name → value, in product order (last axis fastest)."""
        for combo in itertools.product(*(a.values for a in self.axes)):
            yield dict(zip(self.names, combo, strict=True))


# ---------------------------------------------------------------------------------------
# axis values
# ---------------------------------------------------------------------------------------

def is_accel_key(name: str) -> bool:
    """Whether axis ``name`` is an accelerator ``--set`` key."""
    return name in TOP_FIELDS or name.partition(".")[0] in SECTIONS


def field_type(name: str) -> Any | None:
    """The annotated type of accelerator key ``name`` (``engine.cols``) or PIM arithmetic
    field (``macro.adc_bits``), None if unknown."""
    if name in TOP_FIELDS:
        return TOP_FIELDS[name]
    section, _, field = name.partition(".")
    cls = PimArith if section == MACRO_SECTION else SECTIONS.get(section)
    if cls is None or field == "costs":
        return None
    return typing.get_type_hints(cls).get(field)


def _type_ok(value: object, hint: Any) -> bool:
    if isinstance(hint, types.UnionType):
        return any(_type_ok(value, h) for h in hint.__args__)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    if isinstance(hint, types.UnionType):
        return " or ".join(_type_name(h) for h in hint.__args__)
    return "null" if hint is type(None) else {"int": "an integer", "float": "a number",
                                               "str": "a string", "bool": "true or false"
                                               }.get(hint.__name__, hint.__name__)


def _range(name: str, spec: dict) -> tuple[Any, ...]:
    """The values of ``{from, to, step}`` (both ends included when the steps land on them)."""
    keys = {"from", "to", "step"}
    if set(spec) != keys:
        raise ConfigError(f"axes.{name} range must have exactly the keys from, to, step, "
                          f"not {', '.join(sorted(map(str, spec)))}")
    lo, hi, step = spec["from"], spec["to"], spec["step"]
    for k, v in (("from", lo), ("to", hi), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"axes.{name}.{k} must be a number, not {v!r}")
    if not step > 0:
        raise ConfigError(f"axes.{name}.step must be a positive number, not {step!r}")
    if hi < lo:
        raise ConfigError(f"axes.{name} range is empty: from {lo!r} is above to {hi!r}")
    count = math.floor((hi - lo) / step + 1e-9) + 1
    if count > 100_000:
        raise ConfigError(f"axes.{name} range must have at most 100000 values, not {count}")
    if all(isinstance(v, int) for v in (lo, hi, step)):
        return tuple(lo + i * step for i in range(count))
    # rounded so that 0.1 + 2 * 0.1 is the 0.3 a reader wrote, in keys and tables alike
    return tuple(round(lo + i * step, 10) for i in range(count))


def _values(name: str, raw: object) -> tuple[Any, ...]:
    if isinstance(raw, dict):
        return _range(name, raw)
    values = tuple(raw) if isinstance(raw, list) else (raw,)
    if not values:
        raise ConfigError(f"axes.{name} must have at least one value, not an empty list")
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"axes.{name} must not repeat a value, not {list(values)!r}")
    return values


def _check_axis(name: str, values: tuple[Any, ...], root: Path) -> None:
    """Types and choices of one axis's values (the accelerator checks ranges per point)."""
    if name in ("accel", "macro", "topology", "artifact"):
        for v in values:
            if not isinstance(v, str) or not v:
                raise ConfigError(f"axes.{name} values must be names or paths, not {v!r}")
        for v in values:
            if name == "accel" and not Path(v).suffix:
                check_choice("axes.accel (a preset, or a YAML file)", v.lower(), preset_names())
            elif name == "macro":
                load_macro(macro_path(root, v))  # its own check, with the preset names
            elif not resolve(root, v).exists():
                raise ConfigError(f"axes.{name} value must be an existing path, not {v!r}")
        return
    if name == "fraction":
        for v in values:
            check_fraction("axes.fraction", v)
        return
    if name == "seed":
        for v in values:
            check_int_range("axes.seed", v, 0, 2**31 - 1)
        return
    if name == "scheme":
        for v in values:
            check_choice("axes.scheme", v, QAT_SCHEMES)
        return
    if name == "model":
        for v in values:
            if not isinstance(v, str) or not v:
                raise ConfigError(f"axes.model values must be model names, not {v!r}")
        return
    if name == "part":
        for v in values:
            check_choice("axes.part", str(v).upper(), tuple(PARTS))
        return
    hint = field_type(name)
    if hint is None:
        allowed = [*POINT_AXES, *TOP_FIELDS,
                   *(f"{s}.<field>" for s in (*SECTIONS, MACRO_SECTION))]
        raise ConfigError(f"axis must be one of {', '.join(allowed)}, not {name!r}")
    for v in values:
        if not _type_ok(v, hint):
            raise ConfigError(f"axes.{name} values must be {_type_name(hint)}, not {v!r}")


def macro_path(root: Path, value: str) -> str:
    """A macro preset name as it is, a YAML file relative to the spec's directory."""
    return str(resolve(root, value)) if Path(value).suffix else value


def resolve(root: Path, value: str) -> Path:
    """A path in the spec, relative to the spec's directory unless absolute."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else root / p


# ---------------------------------------------------------------------------------------
# the spec
# ---------------------------------------------------------------------------------------

def _section(cls: type, data: object, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, not {data!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(map(str, data)) - set(names))
    if unknown:
        raise ConfigError(f"{where} has unknown key {unknown[0]!r}; allowed: "
                          f"{', '.join(names)}")
    return cls(**data)


def _constraints(data: object) -> Constraints:
    if data is None:
        return Constraints()
    if not isinstance(data, dict):
        raise ConfigError(f"constraints must be a mapping, not {data!r}")
    allowed = ("fits", "min_accuracy", "max_accuracy_drop")
    unknown = sorted(set(map(str, data)) - set(allowed))
    if unknown:
        raise ConfigError(f"constraints has unknown key {unknown[0]!r}; allowed: "
                          f"{', '.join(allowed)}")
    fits = data.get("fits", True)
    if fits is True:
        cap = 1.0
    elif isinstance(fits, dict) and set(fits) == {"lut_cap"}:
        cap = fits["lut_cap"]
    else:
        raise ConfigError(f"constraints.fits must be true or {{lut_cap: F}} (every engine "
                          f"must fit its part), not {fits!r}")
    return Constraints(cap, data.get("min_accuracy"), data.get("max_accuracy_drop"))


def _check_stages(spec: SweepSpec) -> None:
    """What each stage needs from the points (and options given for stages not run)."""
    names = set(spec.names)
    if "accel" not in names:
        raise ConfigError("axes.accel must name the accelerator preset or YAML file, "
                          "not missing")
    sources = [n for n in spec.names if n in SOURCES]
    if len(sources) > 1:
        raise ConfigError(f"axes must name one workload source (model, topology or "
                          f"artifact), not {', '.join(sources)}")
    if "accuracy" in spec.stages:
        if sources != ["model"]:
            raise ConfigError(f"stage accuracy needs axes.model (one of "
                              f"{', '.join(QAT_MODELS)}), not "
                              f"{sources[0] if sources else 'no model'}")
        for v in next(a for a in spec.axes if a.name == "model").values:
            check_choice("axes.model (a model to train for stage accuracy)", v, QAT_MODELS)
    else:
        for n in ("seed", "scheme"):
            if n in names:
                raise ConfigError(f"axes.{n} needs stage accuracy, which is not in stages")
    if "simulate" in spec.stages and not sources:
        raise ConfigError("stage simulate needs a workload: axes.model, axes.topology or "
                          "axes.artifact, not none")
    if "model" in names and "accuracy" not in spec.stages:
        for v in next(a for a in spec.axes if a.name == "model").values:
            check_choice("axes.model (a shipped workload)", v, shipped_workloads())
    macro_axes = [n for n in spec.names if n == "macro" or n.startswith(MACRO_SECTION + ".")]
    if "pim" in spec.stages:
        if "accuracy" not in spec.stages and "artifact" not in names:
            raise ConfigError(f"stage pim needs an artifact: stage accuracy or axes.artifact, "
                              f"not {sources[0] if sources else 'none'}")
        if "macro" not in names:
            raise ConfigError("stage pim needs axes.macro (a PIM macro preset or YAML file), "
                              "not missing")
    elif macro_axes:
        raise ConfigError(f"axes.{macro_axes[0]} needs stage pim, which is not in stages")
    if "fraction" in names and "artifact" in names:
        raise ConfigError("axes.fraction must not be given with axes.artifact (an artifact "
                          "fixes its rows' schemes)")
    c = spec.constraints
    if (c.min_accuracy is not None or c.max_accuracy_drop is not None) \
            and "accuracy" not in spec.stages:
        raise ConfigError("constraints.min_accuracy and max_accuracy_drop need stage "
                          "accuracy, which is not in stages")


def spec_from_dict(data: object, root: str | Path = ".", name: str = "sweep") -> SweepSpec:
    """Validate plain data (a parsed spec file) into a :class:`SweepSpec`."""
    if not isinstance(data, dict):
        raise ConfigError(f"sweep spec must be a mapping, not {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"sweep spec has unknown key {unknown[0]!r}; allowed: "
                          f"{', '.join(SPEC_KEYS)}")
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"stages must be a non-empty list of {', '.join(STAGES)}, "
                          f"not {stages!r}")
    for s in stages:
        check_choice("stages", s, STAGES)
    if len(set(stages)) != len(stages):
        raise ConfigError(f"stages must not repeat a stage, not {stages!r}")
    for s in STAGES:
        if s in data and s not in stages:
            raise ConfigError(f"{s} options are given but stage {s} is not in stages")
    raw_axes = data.get("axes")
    if not isinstance(raw_axes, dict) or not raw_axes:
        raise ConfigError(f"axes must be a non-empty mapping of axis to values, "
                          f"not {raw_axes!r}")
    base = Path(root)
    axes = []
    for key, raw in raw_axes.items():
        values = _values(str(key), raw)
        _check_axis(str(key), values, base)
        axes.append(Axis(str(key), values))
    spec = SweepSpec(
        name=str(data.get("name", name)),
        axes=tuple(axes),
        stages=tuple(s for s in STAGES if s in stages),  # the order they depend on
        constraints=_constraints(data.get("constraints")),
        accuracy=(_section(AccuracyRecipe, data.get("accuracy"), "accuracy")
                  if "accuracy" in stages else None),
        simulate=_section(SimulateOptions, data.get("simulate"), "simulate"),
        synth=_section(SynthOptions, data.get("synth"), "synth"),
        verify=_section(VerifyOptions, data.get("verify"), "verify"),
        pim=_section(PimOptions, data.get("pim"), "pim"),
        root=base,
    )
    _check_stages(spec)
    return spec


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a spec file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"sweep spec must be an existing YAML file, not {str(path)!r}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p.name} is not valid YAML: {exc}".splitlines()[0]) from None
    return spec_from_dict(data, p.resolve().parent, p.stem)
