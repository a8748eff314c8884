"""``fpim rtl``: write a preset's Verilog and manifest (deterministic) into a directory."""

from __future__ import annotations

import argparse
import json

from fpim.commands.options import accelerator, add_accel
from quant.errors import ConfigError
from quant.fileio import check_output, write_atomic
from sim.resources import vector_config

#: The lint every shipped preset's Verilog passes (tests/hw/test_rtl.py, bench/rtl_lint.py).
#: WIDTH: Amaranth leaves operand widths to Verilog's context rules; CASEINCOMPLETE: a core
#: whose rows are not a power of two has a drain multiplexer whose unused select values fall
#: to the default assigned before the case (zero), values the controller never selects.
#: docs/rtl.md lists what -Wall adds.
LINT = ("verilator", "--lint-only", "-Wno-WIDTH", "-Wno-CASEINCOMPLETE")


def lint_command(verilog: str) -> list[str]:
    """The lint of a generated Verilog file, as ``fpim rtl --help`` prints it."""
    return [*LINT, verilog]


EXAMPLES = f"""examples:
  fpim rtl --accel tiny --out rtl                  # rtl/fpim_tiny.v + rtl/fpim_tiny.json
  fpim rtl --accel tiny --set engine.cols=8 --out build/rtl
  fpim rtl --accel tiny --matmul --out build/rtl   # the top with the attention-matmul path
  fpim rtl --accel tiny --vector --tokens 17 --features 8 --out rtl
                                                   # rtl/fpim_tiny_vec.v + .json: the vector
                                                   # unit for the tiny ViT (17 tokens, 8 features)
  {' '.join(lint_command('rtl/fpim_tiny.v'))}
                                                   # lint as the tests do (docs/rtl.md)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rtl", help="emit Verilog of an accelerator preset's GEMM accelerator",
        description="Generate the accelerator top (DSP core, LUT core, post-processors, "
                    "ring load buffers, output buffer, GEMM controller, stream "
                    "ports; docs/rtl.md) of an "
                    "accelerator preset with Amaranth and write <top>.v and <top>.json (a "
                    "manifest: parameters, ports, the bit layout of every stream payload "
                    "(payload_layouts: field, lsb, width, signed), generator versions, input "
                    "hash). The output has no timestamps or absolute paths.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_accel(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--vector", action="store_true",
                   help="write the preset's vector unit instead (requant, softmax, GELU, "
                        "LayerNorm, pos_embed, one module each: <top>_vec.v and "
                        "<top>_vec.json), sized by --tokens and --features")
    p.add_argument("--matmul", action="store_true",
                   help="build the top with the attention-matmul path (sim.timing R11: "
                        "matmul commands, act_bits+1-bit DSP operands, the post-processor's "
                        "bypass; an unpacked DSP core only; docs/rtl.md)")
    p.add_argument("--tokens", type=int, default=None, metavar="T",
                   help="with --vector: longest softmax row")
    p.add_argument("--features", type=int, default=None, metavar="D",
                   help="with --vector: features of a LayerNorm token")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hw.generate import generate, generate_vector, top_name, vector_top_name

    given = [f"--{k}" for k in ("tokens", "features") if getattr(args, k) is not None]
    if not args.vector and given:
        raise ConfigError(f"{given[0]} must come with --vector, not alone")
    if args.vector and args.matmul:
        raise ConfigError("--matmul applies only to the GEMM top, not with --vector")
    if args.vector and len(given) < 2:
        raise ConfigError("--vector must have both --tokens and --features, not "
                          + (given[0] + " alone" if given else "neither"))
    accel = accelerator(args)
    cfg = vector_config(accel, args.tokens, args.features) if args.vector else None
    out = check_output(args.out, "out", directory=True)
    top = top_name(accel) if cfg is None else vector_top_name(accel)
    for suffix in (".v", ".json"):
        check_output(out / f"{top}{suffix}", "out")
    text, manifest = (generate(accel, matmul=args.matmul) if cfg is None
                      else generate_vector(accel, cfg))
    write_atomic(out / f"{top}.v", text)
    write_atomic(out / f"{top}.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out / f'{top}.v'} ({len(text.splitlines())} lines) and "
          f"{out / f'{top}.json'}")
    return 0
