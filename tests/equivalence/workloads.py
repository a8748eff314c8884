"""The equivalence workloads, written once: GEMMs on the tiny preset that every level runs.

Shapes cover: one PE, exactly one tile, ragged M/N/K, K longer than a load block (several
chunks), all rows on one core, and each DRAM timing class (unlimited, latency only, narrow
bandwidth, wide bandwidth with long latency).
"""

from __future__ import annotations

import dataclasses

from hw.tb.cases import GemmCase, random_case
from sim.arch import Accelerator
from sim.config import load_accelerator

ACCEL = load_accelerator("tiny")

#: (name, M, N, K, DRAM bytes per cycle or None, latency, seed)
WORKLOADS = (
    ("one-pe", 1, 1, 1, None, 0, 11),
    ("one-tile", 4, 4, 16, None, 0, 12),
    ("ragged", 7, 9, 13, None, 0, 13),
    ("long-k", 5, 6, 40, 4, 4, 14),
    ("wide-n", 3, 19, 5, 2, 1, 15),
    ("narrow-dram", 6, 5, 9, 1, 0, 16),
    ("latency", 9, 7, 20, None, 6, 17),
    ("big-latency", 8, 8, 18, 8, 12, 18),
)


def cases() -> list[GemmCase]:
    return [random_case(ACCEL, m, n, k, seed, bw=bw, lat=lat, name=name)
            for name, m, n, k, bw, lat, seed in WORKLOADS]


#: Where each engine-shape field of :func:`shaped` lives in a preset.
SHAPE_KEYS = {"dsp_rows": "engine", "lut_rows": "engine", "cols": "engine",
              "dsp_packing": "engine", "lut_scheme": "engine", "weight_bits": "engine",
              "act_bits": "engine", "act_signed": "engine", "acc_bits": "engine",
              "k_tile": "memory", "dram_bytes_per_cycle": "memory", "dram_latency": "memory"}


def shaped(name: str, part: str = "XC7Z020", **fields) -> Accelerator:
    """The tiny preset with other engine-shape fields, through the ``--set`` path a user
    takes (``load_accelerator`` with overrides, so every check of sim.config applies).

    The banks get 1 KiB each, room for any block of these small shapes.
    """
    sets = [f"part={part}"] + [f"memory.{b}_bank_kib=1" for b in ("weight", "act", "out")]
    sets += [f"{SHAPE_KEYS[k]}.{k}={'null' if v is None else v}" for k, v in fields.items()]
    return dataclasses.replace(load_accelerator("tiny", sets), name=name)
