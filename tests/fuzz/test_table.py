"""Every hand-written malformed input of tests/fuzz/cases.py is refused cleanly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fuzz.cases import CASES, Case
from tests.fuzz.harness import SHIPPED_ARTIFACT, edited_artifact, refusal


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_refused(c: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for name, blob in c.files.items():
        (inputs / name).parent.mkdir(parents=True, exist_ok=True)
        (inputs / name).write_bytes(blob)
    art = SHIPPED_ARTIFACT
    if c.manifest is not None or c.tensors is not None:
        art = edited_artifact(tmp_path / "art", c.manifest, c.tensors)
    if c.readonly:
        ro = str(inputs / "ro")
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == ro
                            else real(p, mode, **kw))
    argv = [a.replace("{in}", str(inputs)).replace("{out}", str(out))
            .replace("{art}", str(art)) for a in c.argv]
    line = refusal(argv, tmp_path)
    assert c.expect in line, line
