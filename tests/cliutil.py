"""Run the ``fpim`` CLI in-process for tests: exit code, stdout and stderr."""

from __future__ import annotations

from fpim.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's --help / errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
