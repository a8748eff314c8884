"""The exception hierarchy every fpim package raises from (one place, imported everywhere).

Messages follow one pattern: they name the argument, the value it had and what is allowed,
e.g. ``bits must be an integer in 3..8 for sp2, not 9``. The CLI prints the message as one
line and exits with status 2.
"""

from __future__ import annotations

import math


class FpimError(Exception):
    """Base class of every error fpim raises on purpose."""


class ConfigError(FpimError, ValueError):
    """An argument or configuration value is outside what is allowed."""


class ShapeError(FpimError, ValueError):
    """Array shapes or dtypes do not fit together."""


class OverflowRiskError(FpimError, ArithmeticError):
    """An accumulator or intermediate could exceed its declared width for some input."""


class ArtifactError(FpimError):
    """A quantized-model artifact is missing, corrupted or inconsistent."""


class CycleLimitError(FpimError, RuntimeError):
    """The cycle kernel reached its cycle limit; the message says where it stopped."""


class SimulationError(FpimError):
    """A Verilator build or a cocotb run failed, or a tool is missing."""


def check_choice(name: str, value: object, allowed: list | tuple) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))}, not {value!r}")


def check_int_range(name: str, value: object, lo: int, hi: int, what: str = "") -> int:
    """Return ``value`` as int if it is an integer in ``lo..hi``; else raise ConfigError."""
    ok = isinstance(value, (int,)) and not isinstance(value, bool)
    if not ok and hasattr(value, "__index__") and not isinstance(value, bool):
        value = int(value)  # numpy integers
        ok = True
    if not ok or not lo <= value <= hi:
        suffix = f" {what}" if what else ""
        raise ConfigError(f"{name} must be an integer in {lo}..{hi}{suffix}, not {value!r}")
    return int(value)


def check_fraction(name: str, value: object) -> float:
    """Return ``value`` as float if it is a finite number in [0, 1], else raise."""
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        f = float("nan")
    if isinstance(value, bool) or not 0.0 <= f <= 1.0:
        raise ConfigError(f"{name} must be a number in [0, 1], not {value!r}")
    return f


def check_positive(name: str, value: object) -> float:
    """Return ``value`` as float if it is a finite number > 0, else raise ConfigError."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (math.isfinite(value) and value > 0):  # type: ignore[arg-type]
        raise ConfigError(f"{name} must be a positive number, not {value!r}")
    return float(value)  # type: ignore[arg-type]
