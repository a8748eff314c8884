"""The ``fpim`` entry point: one parser, one subcommand module per command.

Every subcommand lives in ``fpim/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func``. Errors from fpim's own hierarchy are printed as one
line on stderr with exit status 2; so are argument errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import quant.torch  # noqa: F401  pins torch's CPU kernels before any command imports torch
from fpim import __version__
from quant.errors import FpimError

#: Subcommands, in the order ``fpim --help`` lists them.
COMMANDS = ("formats", "quantize", "simulate", "search", "pim", "rtl", "synth", "verify",
            "report", "sweep")

EPILOG = """examples:
  fpim formats --scheme sp2 --bits 4          # SP2 level set and code table
  fpim formats --scheme f8 --bits 8 --fl 5 --json
"""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="fpim",
        description="Co-design quantized neural-network accelerators on FPGAs and PIM chips.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fpim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"fpim.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FpimError as exc:
        sys.stderr.write(f"fpim {args.command}: error: {exc}\n")
        return 2
    except BrokenPipeError:  # e.g. `fpim formats ... | head`
        return 0
