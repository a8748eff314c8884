"""Block RAM of one load buffer (hw.buffer.RingBuffer) under Yosys against the model.

Synthesizes a buffer of ``width`` bits and ``k_tile`` words per bank with ``synth_xilinx``
(xc7) and prints the RAMB36/RAMB18 cells next to the model's mapping of the memory
(:func:`sim.resources.map_memory` of ``width x buffer_depth(k_tile)``, what the estimate
uses) and the whole-block aspect-ratio count (:func:`sim.resources.bram36_blocks`). Large
buffers take Yosys many minutes.

Run: ``.venv/bin/python bench/buffer_bram.py 48x1024 256x512 48x2304`` (``WIDTHxK_TILE``).
Prints measured numbers only; nothing here is a test.
"""

from __future__ import annotations

import argparse

from hw.buffer import RingBuffer
from hw.synth import synthesize_component
from sim.resources import bram36_blocks, buffer_depth, map_memory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shapes", nargs="+", metavar="WIDTHxK_TILE")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per synthesis")
    args = ap.parse_args()
    for shape in args.shapes:
        width, k_tile = (int(v) for v in shape.split("x"))
        depth = buffer_depth(k_tile)
        r = synthesize_component(RingBuffer(width, k_tile), "buf", "xc7",
                                 timeout=args.timeout)
        s = r.summary
        m = map_memory(width, depth, "transparent")
        print(f"{width} bits x {depth} words: Yosys {s['bram36']} BRAM36 ({s['ramb36']} RAMB36 "
              f"+ {s['ramb18']} RAMB18), {s['lut']} LUT; model {m.bram36} BRAM36 "
              f"({m.cells} {m.cell or 'flip-flop memory'}), whole blocks "
              f"{bram36_blocks(width, depth)}; {r.seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
