"""Issue 23's acceptance: ``bench/readme_walkthrough.py`` knows what every README command
must print. Running the commands takes minutes (the script itself); this checks that its
expectations and the README's ``sh`` blocks have not drifted apart, which makes the script
refuse to run at all."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _walkthrough():
    spec = importlib.util.spec_from_file_location("readme_walkthrough",
                                                  ROOT / "bench" / "readme_walkthrough.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, mod)  # dataclasses look their module up
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


def test_every_readme_command_has_an_expectation_and_no_other():
    w = _walkthrough()
    commands = w.readme_commands(w.README.read_text())
    assert commands, "no sh blocks found in README.md"
    assert [c for c in commands if c not in w.EXPECT] == []
    assert [c for c in w.EXPECT if c not in commands] == []


def test_commands_are_read_from_sh_blocks_only():
    w = _walkthrough()
    text = ("```sh\n.venv/bin/fpim a   # comment\n# only a comment\n\n```\n"
            "```\nnot sh\n```\n```sh\nb --x\n```\n")
    assert w.readme_commands(text) == [".venv/bin/fpim a", "b --x"]
