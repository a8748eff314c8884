"""Test-wide settings: hypothesis runs derandomized so every run explores the same cases."""

from hypothesis import settings

settings.register_profile("fpim", derandomize=True, print_blob=True)
settings.load_profile("fpim")
