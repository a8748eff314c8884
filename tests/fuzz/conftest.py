"""The tripwires on long work, set for the whole fuzz suite (see harness.TRIPWIRES)."""

from __future__ import annotations

import pytest

from tests.fuzz.harness import TRIPWIRES, tripwire


@pytest.fixture(scope="session", autouse=True)
def _tripwires():
    with pytest.MonkeyPatch.context() as mp:
        for target in TRIPWIRES:
            mp.setattr(target, tripwire(target))
        yield
