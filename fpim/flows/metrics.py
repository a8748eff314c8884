"""The one accuracy definition of the workflows, the commands and the bench scripts."""

from __future__ import annotations

import numpy as np


def accuracy(pred: object, labels: object) -> float:
    """Percentage of ``pred`` equal to ``labels`` (class per image); 0 for no images."""
    p, y = np.asarray(pred), np.asarray(labels)
    return 100.0 * float(np.mean(p == y)) if len(y) else 0.0
