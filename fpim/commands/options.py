"""Options several commands share, declared once: ``--accel``/``--set``, the workload source
(``--artifact``, ``--model``, ``--topology``), the simulation's ``--mode``, ``--sp2-fraction``
and ``--batch``, ``--macro`` (with the arithmetic overrides of ``fpim pim eval`` and
``train``) and ``--json``."""

from __future__ import annotations

import argparse
from typing import Any

from sim.arch import Accelerator
from sim.config import load_accelerator

#: Fields of the macro's arithmetic that ``--scheme``, ``--cell-bits``, ... override.
MACRO_OVERRIDES = ("scheme", "cell_bits", "adc_bits", "group_size", "range_fraction",
                   "nonlinearity", "noise_lsb")


def add_accel(p: argparse.ArgumentParser) -> None:
    """``--accel PRESET_OR_YAML`` (required) and repeatable ``--set KEY=VALUE``."""
    p.add_argument("--accel", required=True, metavar="PRESET_OR_YAML",
                   help="accelerator preset (xc7z020, xc7z045, xczu9eg, tiny) or YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. engine.cols=8 (repeatable)")


def accelerator(args: argparse.Namespace) -> Accelerator:
    """The accelerator that ``--accel`` and ``--set`` describe (validated)."""
    return load_accelerator(args.accel, args.overrides)


def add_workload(p: argparse.ArgumentParser) -> None:
    """Exactly one of ``--artifact``, ``--model``, ``--topology`` (with ``--gemm``), and
    ``--input-shape`` for a torch model factory (``fpim.flows.simulate.load_workload``)."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--artifact", metavar="DIR", help="quantized artifact directory")
    src.add_argument("--model", metavar="NAME",
                     help="shipped workload (resnet18, resnet50, mobilenet_v2, deit_base) or "
                          "a torch model factory module:function (needs --input-shape)")
    src.add_argument("--topology", metavar="CSV", help="SCALE-Sim topology CSV")
    p.add_argument("--gemm", action="store_true",
                   help="the topology is in SCALE-Sim's GEMM format (default: guess)")
    p.add_argument("--input-shape", metavar="B,C,H,W", help="input shape for a torch model")


def add_simulation(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--mode``, ``--sp2-fraction`` and ``--batch`` of a simulation
    (``fpim.flows.simulate``)."""
    p.add_argument("--mode", choices=("cycle", "analytical", "plain"), default="cycle",
                   help="fidelity level (default: cycle)")
    p.add_argument("--sp2-fraction", type=float, default=None, metavar="F",
                   help="fraction of rows on the LUT core for workloads without schemes "
                        "(default: the engine's split lut_rows / (dsp_rows + lut_rows))")
    p.add_argument("--batch", type=int, default=1, help="batch size (artifact/torch model)")


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


def macro_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The arithmetic fields given on the command line (those left out are not in it)."""
    return {k: getattr(args, k) for k in MACRO_OVERRIDES if getattr(args, k) is not None}


def add_json(p: argparse.ArgumentParser, instead_of: str = "a table") -> None:
    """``--json``: print JSON instead of ``instead_of`` (what the command prints otherwise)."""
    p.add_argument("--json", action="store_true", help=f"print JSON instead of {instead_of}")
