"""The tripwires on long work (see harness.TRIPWIRES), set for each module of the fuzz suite
and removed after it: the rest of the test session runs the real entry points."""

from __future__ import annotations

import importlib

import pytest

from tests.fuzz.harness import TRIPWIRES, tripwire


@pytest.fixture(scope="module", autouse=True)
def _tripwires():
    # every module first: one imported while another is patched would keep the tripwire
    for target in TRIPWIRES:
        importlib.import_module(target.rpartition(".")[0])
    with pytest.MonkeyPatch.context() as mp:
        for target in TRIPWIRES:
            mp.setattr(target, tripwire(target))
        yield
