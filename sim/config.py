"""Accelerator presets: YAML (``configs/*.yaml``) and ``--set`` overrides → validated dataclasses.

The single place where plain data becomes an :class:`~sim.arch.Accelerator`. Every
accelerator built here is checked against its part by the resource model
(:func:`sim.resources.check_fits`): an engine that needs more LUT/FF/DSP/BRAM36 than the
part has is refused with one line naming the resource.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import yaml

from quant.errors import ConfigError, check_required
from quant.fileio import read_text
from sim.arch import PARTS, Accelerator, FpgaPart, GemmEngine, Memory, VectorUnit, get_part
from sim.resources import check_fits

#: Where the shipped presets live (``configs/<name>.yaml``).
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


# ---------------------------------------------------------------------------------------
# YAML and overrides
# ---------------------------------------------------------------------------------------

_SECTIONS = {"engine": GemmEngine, "memory": Memory, "vector": VectorUnit}


def read_yaml(path: str | Path, what: str) -> object:
    """The data of YAML file ``path`` (UTF-8); :class:`ConfigError` naming ``what`` if it
    cannot be read or parsed."""
    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{Path(path).name} is not valid YAML: {exc}".splitlines()[0]) \
            from None
    except RecursionError:
        raise ConfigError(f"{Path(path).name} is not valid YAML: nested too deeply") from None


def _build(cls: type, data: object, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, not {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names, key=str)
    if unknown:
        raise ConfigError(f"{where} has unknown key {unknown[0]!r}; allowed: "
                          f"{', '.join(sorted(names))}")
    check_required(cls, data, f"{where}.")
    return cls(**data)


def _section(data: dict, key: str) -> dict:
    """Section ``key`` of the config (empty when left out or left blank in the YAML)."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a mapping, not {value!r}")
    return value


def accelerator_from_dict(data: object, name: str = "custom", fit: bool = True) -> Accelerator:
    """Build an :class:`Accelerator` from plain data (a parsed YAML preset); with ``fit``,
    refuse one that does not fit its part (a search's template need not)."""
    if not isinstance(data, dict):
        raise ConfigError(f"accelerator config must be a mapping, not {data!r}")
    allowed = {"name", "part", "engine", "memory", "vector", "clock_mhz"}
    unknown = sorted(set(data) - allowed, key=str)
    if unknown:
        raise ConfigError(f"accelerator config has unknown key {unknown[0]!r}; allowed: "
                          f"{', '.join(sorted(allowed))}")
    part = part_from_data(data.get("part"))
    if "engine" not in data:
        raise ConfigError("accelerator config must have an 'engine' section")
    engine = _build(GemmEngine, data["engine"], "engine")
    memory = _build(Memory, _section(data, "memory"), "memory")
    vec = dict(_section(data, "vector"))
    if "costs" in vec:
        costs = vec["costs"]
        if not isinstance(costs, dict):
            raise ConfigError(f"vector.costs must be a mapping of op to cycles, not {costs!r}")
        merged = dict(VectorUnit().costs)
        merged.update(costs)
        vec["costs"] = tuple(merged.items())
    vector = _build(VectorUnit, vec, "vector")
    kwargs: dict[str, Any] = {}
    if "clock_mhz" in data:
        kwargs["clock_mhz"] = data["clock_mhz"]
    accel = Accelerator(name=data.get("name", name), part=part, engine=engine,
                        memory=memory, vector=vector, **kwargs)
    if fit:
        check_fits(accel)
    return accel


def part_from_data(part_data: object) -> FpgaPart:
    """A part from its name or a mapping of :class:`~sim.arch.FpgaPart` fields (a known
    part's name fills the fields left out)."""
    if isinstance(part_data, str):
        return get_part(part_data)
    if isinstance(part_data, dict):
        base = dict(dataclasses.asdict(get_part(part_data["name"]))) \
            if str(part_data.get("name", "")).upper() in PARTS else {}
        base.update(part_data)
        return _build(FpgaPart, base, "part")
    raise ConfigError(f"part must be a part name or a mapping, not {part_data!r}")


def load_part(spec: str | Path) -> FpgaPart:
    """A part by name (``XC7Z020``) or from a YAML file: a mapping of the part's fields, or
    a preset (its ``part``)."""
    path = Path(spec)
    if not path.suffix:
        return get_part(str(spec))
    data = read_yaml(path, "part file")
    if isinstance(data, dict) and "part" in data:
        data = data["part"]
    return part_from_data(data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``engine.cols=16`` into (``["engine", "cols"]``, 16); the value is YAML."""
    if "=" not in text:
        raise ConfigError(f"override must look like section.key=value, not {text!r}")
    key, _, raw = text.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override must look like section.key=value, not {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override value of {key.strip()} is not valid YAML: {raw!r}") from exc
    return path, value


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Return a copy of ``data`` with each ``a.b.c=value`` override applied."""
    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for p in path[:-1]:
            if p not in node or not isinstance(node[p], dict):
                if isinstance(node.get(p), str) and p == "part":  # part given by name
                    node[p] = {"name": node[p]}
                else:
                    node[p] = {}
            node = node[p]
        node[path[-1]] = value
    return out


def preset_names() -> list[str]:
    """Names of the shipped accelerator presets (``configs/*.yaml`` with an engine)."""
    out = []
    for p in sorted(CONFIG_DIR.glob("*.yaml")):
        out.append(p.stem)
    return out


def load_accelerator(preset: str | Path, overrides: list[str] | tuple[str, ...] = (),
                     fit: bool = True) -> Accelerator:
    """Load a shipped preset by name (``xc7z020``) or a YAML file path, then apply overrides
    (``fit``: as :func:`accelerator_from_dict`)."""
    path = Path(preset)
    if not path.suffix:
        if str(preset).lower() not in preset_names():
            raise ConfigError(f"accelerator preset must be one of {', '.join(preset_names())} "
                              f"or a YAML file, not {str(preset)!r}")
        path = CONFIG_DIR / f"{str(preset).lower()}.yaml"
    data = read_yaml(path, "accelerator file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} must hold a mapping, not {type(data).__name__}")
    data = apply_overrides(data, overrides)
    return accelerator_from_dict(data, name=path.stem, fit=fit)


def replace_engine(accel: Accelerator, **changes: Any) -> Accelerator:
    """A copy of ``accel`` with engine fields changed (validated again, fit included)."""
    out = dataclasses.replace(accel, engine=dataclasses.replace(accel.engine, **changes))
    check_fits(out)
    return out
