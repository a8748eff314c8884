"""What the vector-unit cocotb testbenches share (tests/cocotb/vector_*): the stream driver
:class:`hw.tb.vector_tb.VectorStreams`, which ``fpim verify --block`` uses too."""

from __future__ import annotations

from hw.tb.vector_tb import VectorStreams

__all__ = ["VectorStreams"]
