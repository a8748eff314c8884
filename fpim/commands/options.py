"""Options several commands share, declared once: ``--accel``/``--set``, the workload source
(``--artifact``, ``--model``, ``--topology``), the simulation's ``--mode``, ``--sp2-fraction``
and ``--batch``, ``--macro`` (with the arithmetic overrides of ``fpim pim eval`` and
``train``), ``--seed``, ``--progress/--no-progress`` and ``--json``; the argument types
that check a value where it is parsed; and :func:`refuse_unless`, which refuses an option
that would have no effect on the given input."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from fpim.progress import Progress, bars, lines, silent
from quant.errors import SEED_MAX, ConfigError, check_seed
from quant.fileio import check_output
from quant.progress import PERIOD
from sim.arch import Accelerator
from sim.config import load_accelerator


def checked(check: Callable[[str, Any], Any], name: str, parse: Callable[[str], Any] = int
            ) -> Callable[[str], Any]:
    """An argparse ``type``: ``parse`` the text, then ``check(name, value)``; either
    failing is argparse's one-line error naming the option, ``name``, the value and what is
    allowed."""
    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            value = text
        try:
            return check(name, value)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def shape(name: str, value: object) -> tuple[int, ...]:
    """``B,C,H,W`` (2 to 5 positive sizes, batch first) as a tuple; ConfigError otherwise."""
    sizes = str(value).split(",")
    if not 2 <= len(sizes) <= 5 or not all(s.strip().isdecimal() and int(s) >= 1
                                           for s in sizes):
        raise ConfigError(f"{name} must be 2 to 5 positive integers separated by commas, "
                          f"batch first (e.g. 1,3,32,32), not {value!r}")
    return tuple(int(s) for s in sizes)


def add_seed(p: argparse.ArgumentParser, what: str, default: int | None = 0) -> None:
    """``--seed`` (0..:data:`~quant.errors.SEED_MAX`) seeding ``what``."""
    shown = "" if default is None else f"; default {default}"
    p.add_argument("--seed", type=checked(check_seed, "seed"), default=default,
                   help=f"seed of {what} (0..{SEED_MAX}{shown})")


def refuse_unless(given: object, applies: bool, option: str, allowed: str, actual: str) -> None:
    """Refuse ``option`` when it was ``given`` (not None or False) but would have no effect
    (``applies`` false): "``option`` applies only ``allowed``, not ``actual``"."""
    if given is not None and given is not False and not applies:
        raise ConfigError(f"{option} applies only {allowed}, not {actual}")


#: Fields of the macro's arithmetic that ``--scheme``, ``--cell-bits``, ... override.
MACRO_OVERRIDES = ("scheme", "cell_bits", "adc_bits", "group_size", "range_fraction",
                   "nonlinearity", "noise_lsb", "adc_step", "pot_step")


def add_accel(p: argparse.ArgumentParser) -> None:
    """``--accel PRESET_OR_YAML`` (required) and repeatable ``--set KEY=VALUE``."""
    p.add_argument("--accel", required=True, metavar="PRESET_OR_YAML",
                   help="accelerator preset (xc7z020, xc7z045, xczu9eg, tiny) or YAML file")
    add_set(p)


def add_set(p: argparse.ArgumentParser) -> None:
    """Repeatable ``--set KEY=VALUE``: overrides of a preset's values."""
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE",
                   help="override a config value, e.g. engine.cols=8 (repeatable)")


def accelerator(args: argparse.Namespace) -> Accelerator:
    """The accelerator that ``--accel`` and ``--set`` describe (validated)."""
    return load_accelerator(args.accel, args.overrides)


def add_workload(p: argparse.ArgumentParser, default_model: str | None = None) -> None:
    """Exactly one of ``--artifact``, ``--model`` (``default_model`` when none is given),
    ``--topology`` (with ``--gemm``), and ``--input-shape`` for a torch model factory
    (``fpim.flows.simulate.load_workload``)."""
    src = p.add_mutually_exclusive_group(required=default_model is None)
    src.add_argument("--artifact", metavar="DIR", help="quantized artifact directory")
    shown = f" (default: {default_model})" if default_model else ""
    src.add_argument("--model", metavar="MODEL", default=default_model,
                     help="shipped workload (resnet18, resnet50, mobilenet_v2, deit_tiny, "
                          "deit_small, deit_base), a torch model factory PATH.py:FUNCTION or "
                          "package.module:FUNCTION "
                          f"(needs --input-shape), or an ONNX file PATH.onnx{shown}")
    src.add_argument("--topology", metavar="CSV", help="SCALE-Sim topology CSV")
    p.add_argument("--gemm", action="store_true",
                   help="the topology is in SCALE-Sim's GEMM format (default: guess)")
    p.add_argument("--input-shape", metavar="B,C,H,W", type=checked(shape, "input-shape", str),
                   help="input shape of a torch model factory (required) or of an ONNX "
                        "file (replaces its input's sizes)")


def takes_input_shape(model: str | None) -> bool:
    """Whether ``--model`` is a factory or an ONNX file (``--input-shape`` applies)."""
    from quant.modelspec import parse_model

    return bool(model) and parse_model(model).kind != "name"


def trained_model(models: tuple[str, ...]) -> Callable[[str], str]:
    """The argparse ``type`` of a ``--model`` to train: one of ``models`` or a factory
    ``PATH.py:FUNCTION`` / ``package.module:function`` (its form and file checked here; it
    is imported with :func:`quant.torch.usermodel.load_model` when the command runs)."""
    def parse(text: str) -> str:
        from quant.modelspec import parse_model

        if text in models:
            return text
        try:
            factory = parse_model(text).is_factory
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if not factory:
            raise argparse.ArgumentTypeError(
                f"model must be one of {', '.join(models)}, PATH.py:FUNCTION or "
                f"package.module:function, not {text!r}")
        return text
    return parse


def workload_source(args: argparse.Namespace) -> str:
    """The workload option as given, e.g. ``--model resnet18``."""
    return (f"--artifact {args.artifact}" if args.artifact else
            f"--topology {args.topology}" if args.topology else f"--model {args.model}")


def refuse_ignored_workload(args: argparse.Namespace) -> None:
    """Refuse the workload options of :func:`add_workload` and :func:`add_batch` that would
    have no effect on the workload source given."""
    source = workload_source(args)
    traced = not (args.artifact or args.topology) and takes_input_shape(args.model)
    refuse_unless(args.gemm, bool(args.topology), "--gemm", "to --topology", source)
    refuse_unless(args.input_shape, traced, "--input-shape", "to a factory or ONNX --model",
                  source)
    refuse_unless(args.batch, not traced, "--batch",
                  "to --artifact, a shipped --model and --topology (a factory or ONNX model "
                  "takes its batch from its input shape)", source)


def torch_model_shape(args: argparse.Namespace) -> tuple[int, ...] | None:
    """For a factory or ONNX ``--model``: check its form and file (:mod:`quant.modelspec`)
    and return ``--input-shape`` (required for a factory); None for any other source."""
    if not takes_input_shape(args.model):
        return None
    from quant.modelspec import parse_model

    if parse_model(args.model).is_factory and not args.input_shape:
        raise ConfigError("--input-shape must be given with a PATH.py:FUNCTION or "
                          "package.module:function model")
    return args.input_shape  # parsed and checked by shape()


def add_simulation(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--mode``, ``--sp2-fraction`` and ``--batch`` of a simulation
    (``fpim.flows.simulate``)."""
    p.add_argument("--mode", choices=("cycle", "analytical", "plain"), default="cycle",
                   help="fidelity level (default: cycle)")
    p.add_argument("--sp2-fraction", type=float, default=None, metavar="F",
                   help="fraction of rows on the LUT core for workloads without schemes "
                        "(default: the engine's split lut_rows / (dsp_rows + lut_rows))")
    add_batch(p)


def add_batch(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--batch``: images per run (``sim.workload.batched``)."""
    p.add_argument("--batch", type=int, default=None,
                   help="images per run (default 1; a factory or ONNX --model takes its "
                        "batch from --input-shape); FPS is images per second")


def add_macro(p: argparse.ArgumentParser, *, overrides: bool = False) -> None:
    """``--macro PRESET_OR_YAML`` (required); with ``overrides``, also the options that
    change its arithmetic (:data:`MACRO_OVERRIDES`)."""
    p.add_argument("--macro", required=True, metavar="PRESET_OR_YAML",
                   help="PIM macro preset (configs/pim/*.yaml, e.g. sram512x128_adc7) or file")
    if not overrides:
        return
    p.add_argument("--scheme", default=None,
                   help="override the decomposition scheme (native, differential, bit_serial)")
    p.add_argument("--cell-bits", type=int, default=None, help="override cell bits")
    p.add_argument("--adc-bits", type=int, default=None, help="override the ADC bits")
    p.add_argument("--group-size", type=int, default=None,
                   help="override the rows summed per conversion (at most the macro rows)")
    p.add_argument("--range-fraction", type=float, default=None,
                   help="override the fraction of the worst-case group sum the ADC covers")
    p.add_argument("--nonlinearity", type=float, default=None,
                   help="override the transfer-curve beta, [0, 1)")
    p.add_argument("--noise-lsb", type=float, default=None,
                   help="thermal noise sigma in ADC LSB, >= 0 (default: the preset's)")
    p.add_argument("--adc-step", type=float, default=None,
                   help="override the ADC step, in group-sum units (0: from the range)")
    p.add_argument("--exact-step", dest="pot_step", action="store_const", const=False,
                   default=None, help="keep the ADC step exact (not a power of two; folded "
                                      "into the requantizer)")


def macro_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The arithmetic fields given on the command line (those left out are not in it)."""
    return {k: getattr(args, k) for k in MACRO_OVERRIDES if getattr(args, k) is not None}


def check_training_outputs(out: str | None, float_checkpoint: str | None) -> None:
    """Refuse, before any training, an artifact directory ``out`` or a float checkpoint to
    be written that could not be written."""
    from quant.artifact import check_artifact_out  # numpy and the op registry: not at start-up

    if out is not None:
        check_artifact_out(out)
    if float_checkpoint is not None and not Path(float_checkpoint).is_file():
        check_output(float_checkpoint, "float-checkpoint")


def add_msq_search(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--ideal-memory``, ``--lut-cap`` and ``--packing`` of the MSQ search
    (``sim.search.search_msq``), for ``fpim search msq`` and ``fpim report --search msq``."""
    p.add_argument("--ideal-memory", action="store_true",
                   help="unlimited DRAM bandwidth (compute-bound comparison)")
    add_search_budget(p, "engine")


def add_search_budget(p: argparse.ArgumentParser | argparse._ArgumentGroup,
                      what: str) -> None:
    """``--lut-cap`` (the fraction of the part's LUTs ``what`` may use) and ``--packing``
    of the design searches (``fpim search msq`` and ``vit``)."""
    p.add_argument("--lut-cap", type=float, default=0.8,
                   help=f"fraction of the part's LUTs the {what} may use (default 0.8)")
    p.add_argument("--packing", type=int, action="append", choices=(1, 2, 4), metavar="P",
                   help="DSP packing to try (1, 2 or 4; repeatable; default: every packing "
                        "the part allows at the width)")


def add_csv(p: argparse.ArgumentParser, what: str = "the table") -> None:
    """``--csv FILE``: also write ``what`` (the printed table) as CSV, its columns named as
    in the JSON; :func:`check_csv` refuses a path that could not be written, before work."""
    p.add_argument("--csv", metavar="FILE", help=f"also write {what} as CSV")


def check_csv(args: argparse.Namespace) -> None:
    """Refuse a ``--csv`` path that could not be written."""
    if args.csv is not None:
        check_output(args.csv, "csv")


def add_json(p: argparse.ArgumentParser, instead_of: str = "a table") -> None:
    """``--json``: print JSON instead of ``instead_of`` (what the command prints otherwise)."""
    p.add_argument("--json", action="store_true", help=f"print JSON instead of {instead_of}")


def add_progress(p: argparse.ArgumentParser) -> None:
    """``--progress/--no-progress``: progress on stderr for the long steps (default: bars
    when both stdout and stderr are terminals, else a line every
    :data:`~quant.progress.PERIOD` seconds of a long step; ``--no-progress``: nothing)."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help=f"progress bars on stderr (default: bars when stdout and stderr are "
                        f"terminals, else a line every {PERIOD:g} s of a long step; "
                        f"--no-progress: none)")


def show_progress(args: argparse.Namespace) -> bool:
    """Whether a training step shows its progress (a bar on a terminal, periodic lines
    elsewhere): unless ``--no-progress``."""
    return args.progress is not False


def heartbeat(args: argparse.Namespace, step: str) -> AbstractContextManager[object]:
    """Around a whole command whose steps report on their own only in part (training):
    periodic lines naming ``step`` off a terminal (by default), else nothing."""
    return lines(step) if progress(args) is lines else silent(step)


def progress(args: argparse.Namespace) -> Progress:
    """The :data:`~fpim.progress.Progress` the command hands its flow: bars with
    ``--progress`` or on terminals, none with ``--no-progress``, else periodic lines."""
    if args.progress is False:
        return silent
    if args.progress or (sys.stdout.isatty() and sys.stderr.isatty()):
        return bars
    return lines
