"""What ``--model`` names: a shipped or built-in name, a Python model factory or an ONNX file.

:func:`parse_model` reads the text (no import, no torch) and checks what can be checked
before any work: the form, and that a named file exists.

* ``PATH.py:FUNCTION``: the function of a Python file (its directory becomes importable, so
  the file may import its neighbours);
* ``package.module:FUNCTION``: the function of a module importable from the working
  directory or the Python path;
* ``PATH.onnx``: an ONNX model file;
* anything else: a name the command looks up in its own table.

Loading a factory is :func:`quant.torch.usermodel.load_model`'s (torch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from quant.errors import ConfigError

IDENTIFIER = re.compile(r"[^\W\d]\w*")
MODULE = re.compile(r"[^\W\d]\w*(?:\.[^\W\d]\w*)*")
FORMS = "PATH.py:FUNCTION, package.module:function or PATH.onnx"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``--model`` (see the module docstring).

    Members:
        text: what was given.
        kind: ``name``, ``file`` (Python file factory), ``module`` (module factory) or
            ``onnx``.
        source: the file path (``file``, ``onnx``) or module name (``module``).
        function: the factory function (``file``, ``module``).
    """

    text: str
    kind: str
    source: str = ""
    function: str = ""

    @property
    def is_factory(self) -> bool:
        return self.kind in ("file", "module")

    @property
    def label(self) -> str:
        """A short name for reports: the function, the file stem or the name."""
        if self.is_factory:
            return self.function
        return Path(self.source).stem if self.kind == "onnx" else self.text


def _existing_file(path: str, what: str) -> str:
    if not Path(path).is_file():
        raise ConfigError(f"{what} must be an existing file, not {path!r}")
    return path


def parse_model(text: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``text``; ConfigError for a malformed factory or a missing
    file."""
    if text.lower().endswith(".onnx"):
        return ModelSpec(text, "onnx", _existing_file(text, "ONNX model file"))
    if ":" not in text:
        return ModelSpec(text, "name")
    source, _, function = text.rpartition(":")
    if source.endswith(".py") and IDENTIFIER.fullmatch(function):
        return ModelSpec(text, "file", _existing_file(source, "model file"), function)
    if MODULE.fullmatch(source) and IDENTIFIER.fullmatch(function):
        return ModelSpec(text, "module", source, function)
    raise ConfigError(f"model must be {FORMS} (Python names), not {text!r}")
