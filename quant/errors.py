"""The exception hierarchy every fpim package raises from (one place, imported everywhere).

Messages follow one pattern: they name the argument, the value it had and what is allowed,
e.g. ``bits must be an integer in 3..8 for sp2, not 9``. The CLI prints the message as one
line and exits with status 2.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

#: Largest seed fpim accepts anywhere (numpy, torch and the testbenches take 32 bits).
SEED_MAX = (1 << 32) - 1


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
    """Raise :class:`ConfigError` unless ``value`` is one of ``allowed`` (a bool or a float
    is not taken for an equal integer: ``True`` and ``1.0`` are not ``1``)."""
    loose = isinstance(value, bool | float) and not any(type(a) is type(value) for a in allowed)
    if loose or value not in allowed:
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


def check_real(name: str, value: object, lo: float = -math.inf, hi: float = math.inf, *,
               lo_open: bool = False, hi_open: bool = False) -> float:
    """Return ``value`` as float if it is a finite real number (not a bool or a string) in
    the interval from ``lo`` to ``hi`` (ends excluded when ``lo_open``/``hi_open``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(value)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
    if not ok:
        if math.isinf(hi):
            allowed = f"a finite number {'>' if lo_open else '>='} {lo:g}"
        else:
            allowed = (f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}"
                       f"{')' if hi_open else ']'}")
        raise ConfigError(f"{name} must be {allowed}, not {value!r}")
    return v


def check_fraction(name: str, value: object) -> float:
    """Return ``value`` as float if it is a finite number in [0, 1], else raise."""
    return check_real(name, value, 0.0, 1.0)


def check_positive(name: str, value: object) -> float:
    """Return ``value`` as float if it is a finite number > 0, else raise ConfigError."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (math.isfinite(value) and value > 0):  # type: ignore[arg-type]
        raise ConfigError(f"{name} must be a positive number, not {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a boolean (``true``/``false`` in YAML and JSON); a string
    such as ``'no'`` or an integer is refused rather than read by its truth value."""
    is_numpy_bool = getattr(getattr(value, "dtype", None), "kind", "") == "b"
    if not isinstance(value, bool) and not is_numpy_bool:
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    return bool(value)


def check_name(name: str, value: object) -> str:
    """Return ``value`` if it is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string, not {value!r}")
    return value


def check_seed(name: str, value: object) -> int:
    """Return ``value`` as int if it is a seed fpim accepts (0..:data:`SEED_MAX`)."""
    return check_int_range(name, value, 0, SEED_MAX)


def check_required(cls: type, data: dict, where: str) -> None:
    """Raise :class:`ConfigError` naming the first field of dataclass ``cls`` without a
    default that ``data`` lacks (``where`` prefixes the name, e.g. ``engine.``)."""
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    for name in required:
        if name not in data:
            raise ConfigError(f"{where}{name} is required")
