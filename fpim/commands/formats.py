"""``fpim formats``: print a number format's level set and code table."""

from __future__ import annotations

import argparse

from fpim.commands.options import add_csv, add_json, check_csv
from fpim.output import print_json, print_table
from quant.formats import SCHEME_NAMES, WEIGHT_BITS, Scheme
from quant.formats import format_table as format_data

EXAMPLES = """examples:
  fpim formats --scheme sp2 --bits 4            # 13 levels, two shifts and an add
  fpim formats --scheme sp2 --bits 8 --json     # 187 levels, machine-readable
  fpim formats --scheme pot --bits 4
  fpim formats --scheme f8 --bits 8 --fl 6 --unsigned
"""


def register(sub: argparse._SubParsersAction) -> None:
    bits_help = ", ".join(f"{s.label} {r.start}..{r.stop - 1}" for s, r in WEIGHT_BITS.items())
    p = sub.add_parser(
        "formats", help="show a number format's levels and code words",
        description="Print the level set and the code table of a weight format, with the "
                    "integer operation the hardware performs with each code word.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scheme", required=True, choices=SCHEME_NAMES, help="number format")
    p.add_argument("--bits", required=True, type=int, help=f"bit width ({bits_help}, f8 8)")
    p.add_argument("--fl", type=int, default=None,
                   help="f8 only: fractional length (signed 0..7, unsigned 0..8; default 4)")
    p.add_argument("--unsigned", action="store_true", help="f8 only: unsigned words (0..255)")
    add_csv(p, "the code table")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_csv(args)
    data = format_data(args.scheme, args.bits, fl=args.fl, signed=not args.unsigned)
    if args.json:
        print_json(data)
        return 0
    head = f"{args.scheme} {data['bits']}-bit"
    if args.scheme == "f8":
        head += f", fl={data['fl']}, {'signed' if data['signed'] else 'unsigned'}"
    else:
        head += f" ({Scheme.parse(args.scheme).name} scheme id {int(Scheme.parse(args.scheme))})"
    print(f"{head}: {len(data['levels'])} levels, level = int_level / {data['denominator']}")
    print(f"hardware op: {data['op']}")
    rows = []
    for c in data["codes"]:
        mark = "" if c.get("canonical", True) else "  (alias)"
        rows.append((c["word"], c["bits"], c["int_level"], f"{c['level']:.10g}{mark}"))
    print_table(("word", "bits", "int_level", "level"), rows, args.csv,
                [(c["word"], c["bits"], c["int_level"], c["level"]) for c in data["codes"]])
    return 0
