"""Reports people look at: simulation records rendered as CSV, JSON, markdown, HTML and PNG.

Pure rendering (nothing here simulates): :mod:`sim.report.run` for one run,
:mod:`sim.report.msq` for an MSQ search; the plots are in :mod:`sim.report.figures`, the
columns and keys of every file in :mod:`sim.report.schema` (documented in docs/report.md).
``fpim report`` (:mod:`fpim.flows.report`) gathers the records and writes the files.
"""

from sim.report.msq import msq_files
from sim.report.run import RunRecords, run_files

__all__ = ["RunRecords", "msq_files", "run_files"]
