"""Test-wide settings: hypothesis runs derandomized so every run explores the same cases, and
torch's CPU kernels are pinned (quant.torch.dispatch) before any test computes."""

from hypothesis import settings

import quant.torch  # noqa: F401

settings.register_profile("fpim", derandomize=True, print_blob=True)
settings.load_profile("fpim")
