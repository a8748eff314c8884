"""Workflows: what a CLI command runs, composed once from ``quant``, ``sim`` and ``hw``.

One module per workflow: :mod:`~fpim.flows.quantize` (float model → QAT → artifact),
:mod:`~fpim.flows.simulate` (a workload on an accelerator), :mod:`~fpim.flows.pim_deploy`
(an artifact's cost and accuracy on PIM macros, no torch), :mod:`~fpim.flows.pim` (PIM-QAT),
:mod:`~fpim.flows.synth` (Yosys next to the resource model), :mod:`~fpim.flows.verify`
(the RTL under cocotb) and :mod:`~fpim.flows.sweep` (all of these over a design space, as a
Dask task graph); :func:`fpim.flows.metrics.accuracy` is the one accuracy definition.
Flows return result records and never print; CLI commands (:mod:`fpim.commands`) parse
arguments, call one flow and print its record; bench scripts and tests call flows directly.
"""
