"""Workflows: what a CLI command runs, composed once from ``quant``, ``sim`` and ``hw``.

CLI commands (:mod:`fpim.commands`) parse arguments and print; bench scripts and tests call
these functions directly.
"""
