"""Loading float weights into a model: checkpoint files, state dicts or modules (torch).

:func:`load_weights` accepts

* a path to a ``.safetensors`` file, or to a torch file (``.pth``, ``.pt``, any other name)
  read with ``torch.load(weights_only=True)`` — no code from the file is run;
* a state dict (a mapping from parameter names to tensors);
* an ``nn.Module`` (e.g. a timm model), whose ``state_dict()`` is used.

A mapping that holds the state dict under ``"model"`` (DeiT's released ``.pth`` files, many
training checkpoints) or ``"state_dict"`` is unwrapped. The keys and shapes must match the
model exactly; otherwise one line names the missing and unexpected keys (a few, then "and N
more") and the shape mismatches.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from quant.errors import ConfigError

WRAPPER_KEYS = ("model", "state_dict")
SHOWN = 3  # keys named per kind of mismatch before "and N more"

WeightSource = str | Path | Mapping | nn.Module


def _names(keys: list[str]) -> str:
    more = f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def _dims(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def read_state_dict(source: WeightSource, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The state dict held by ``source`` (see the module docstring); ``what`` names it."""
    label = what
    if isinstance(source, nn.Module):
        state: object = source.state_dict()
    elif isinstance(source, str | Path):
        path = Path(source)
        label = f"{what} {str(path)!r}"
        if not path.is_file():
            raise ConfigError(f"{what} must be an existing file, not {str(path)!r}")
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file
                state = load_file(path, device="cpu")
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch and safetensors raise several types for bad files
            raise ConfigError(f"{what} must be a torch state_dict file (.pth, .pt) or "
                              f".safetensors, not {str(path)!r} ({type(exc).__name__})") from None
    else:
        state = source
    for key in WRAPPER_KEYS:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping):
        raise ConfigError(f"{label} must hold a state_dict (names to tensors), "
                          f"not {type(state).__name__}")
    bad = [k for k, v in state.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    if bad:
        raise ConfigError(f"{label} must map parameter names to tensors, not "
                          f"{_names([repr(k) for k in bad])}")
    return dict(state)


def load_weights(model: nn.Module, source: WeightSource, what: str = "checkpoint",
                 model_name: str | None = None) -> nn.Module:
    """Load float weights from ``source`` into ``model`` (keys and shapes must match); returns
    ``model``. ``what`` and ``model_name`` name the source and the model in errors."""
    state = read_state_dict(source, what)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} is {_dims(state[k])} but must be {_dims(v)}"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = ([f"missing keys {_names(missing)}"] if missing else []) + \
        ([f"unexpected keys {_names(unexpected)}"] if unexpected else []) + \
        ([f"wrong shapes: {_names(shapes)}"] if shapes else [])
    if problems:
        label = f"{what} {str(source)!r}" if isinstance(source, str | Path) else what
        target = model_name or type(model).__name__
        raise ConfigError(f"{label} does not fit {target}: {'; '.join(problems)}")
    model.load_state_dict(state)
    return model
