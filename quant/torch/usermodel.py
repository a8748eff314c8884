"""Loading a user's torch model from a factory (``--model PATH.py:FUNCTION`` or
``--model package.module:FUNCTION``, :mod:`quant.modelspec`), with its float weights, and
checking that it classifies a data set's images (:func:`check_classifier`).

The one place that imports a user's code, for every command that takes a model: the
working directory is importable (as it is for ``python -m``), a file's own directory too
(so it may import its neighbours), and every failure is one line naming the file, module
or function and what was wrong.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from quant.errors import ConfigError
from quant.modelspec import ModelSpec, parse_model
from quant.torch.checkpoint import load_weights


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0]


def _importable(directory: Path) -> None:
    d = str(directory.resolve())
    if d not in sys.path:
        sys.path.insert(0, d)


def _import(spec: ModelSpec) -> ModuleType:
    """The factory's module, imported without writing ``__pycache__`` next to it."""
    keep, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        return _import_module(spec)
    finally:
        sys.dont_write_bytecode = keep


def _import_module(spec: ModelSpec) -> ModuleType:
    try:
        if spec.kind == "module":
            _importable(Path.cwd())
            return importlib.import_module(spec.source)
        path = Path(spec.source).resolve()
        _importable(path.parent)
        name = f"_fpim_model_{path.stem}"
        loader = importlib.util.spec_from_file_location(name, path)
        if loader is None or loader.loader is None:  # pragma: no cover - .py files load
            raise ConfigError(f"model file must be a Python file, not {spec.source!r}")
        module = importlib.util.module_from_spec(loader)
        sys.modules[name] = module
        loader.loader.exec_module(module)
        return module
    except ModuleNotFoundError as exc:
        if spec.kind == "module" and exc.name and spec.source.startswith(exc.name):
            raise ConfigError(f"model module must be importable from here, not "
                              f"{spec.source!r} ({exc})") from None
        raise ConfigError(f"model {spec.source!r} must import cleanly, not raise "
                          f"ModuleNotFoundError: {_first_line(exc)}") from None
    except ConfigError:
        raise
    except Exception as exc:  # the user's module failed while importing
        raise ConfigError(f"model {spec.source!r} must import cleanly, not raise "
                          f"{type(exc).__name__}: {_first_line(exc)}") from None


def load_model(text: str | ModelSpec, checkpoint: str | Path | None = None) -> nn.Module:
    """The ``nn.Module`` the factory ``text`` builds (called without arguments), with the
    float weights of ``checkpoint`` loaded when given (:func:`load_weights`)."""
    spec = text if isinstance(text, ModelSpec) else parse_model(text)
    if not spec.is_factory:
        raise ConfigError(f"model must be PATH.py:FUNCTION or package.module:function, "
                          f"not {spec.text!r}")
    fn = getattr(_import(spec), spec.function, None)
    if not callable(fn):
        raise ConfigError(f"model function must be a callable of {spec.source!r}, not "
                          f"{spec.function!r} ({'missing' if fn is None else type(fn).__name__})")
    try:
        model = fn()
    except Exception as exc:  # the user's factory failed
        raise ConfigError(f"model factory {spec.text!r} must build a model, not raise "
                          f"{type(exc).__name__}: {_first_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model factory {spec.text!r} must return a torch.nn.Module, "
                          f"not {type(model).__name__}")
    if checkpoint is not None:
        load_weights(model, checkpoint, "checkpoint", spec.text)
    return model


def check_classifier(model: nn.Module, label: str, input_shape: tuple[int, ...],
                     num_classes: int) -> None:
    """Refuse a model that does not map one ``input_shape`` (C, H, W) image to
    ``num_classes`` logits (the data it is to be trained on)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *input_shape))
    except Exception as exc:  # the user's forward failed on the data's shape
        raise ConfigError(f"model {label!r} must accept images of shape {input_shape}, not "
                          f"raise {type(exc).__name__}: {_first_line(exc)}") from None
    finally:
        model.train(was_training)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (1, num_classes):
        raise ConfigError(f"model {label!r} must output {num_classes} class logits per image "
                          f"(the data's classes), not shape {shape}")
