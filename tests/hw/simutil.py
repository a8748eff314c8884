"""Helpers for the Amaranth-simulator tests: run an async testbench on a component."""

from __future__ import annotations

from hw.tb.amaranth_bench import run_bench

__all__ = ["run_bench"]
