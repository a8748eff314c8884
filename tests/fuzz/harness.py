"""Run ``fpim`` in-process on malformed input and check the refusal.

Every refusal must be: exit status 2, nothing on stdout, exactly one line on stderr of the
form ``fpim <command>: error: <message>``, no traceback, and no file created, changed or
removed anywhere in the case's directory (inputs and outputs alike). The entry points of
long work are replaced by :data:`TRIPWIRES` while the suite runs, so an input that slips
through validation fails at once instead of training a model or starting Yosys.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from fpim.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_ARTIFACT = ROOT / "configs" / "artifacts" / "cnn_msq4_digits"
ERROR_LINE = re.compile(r"fpim( [a-z]+)*: error: \S.*")

#: What validation must refuse before: ``module.attribute`` of each entry point of long work.
TRIPWIRES = (
    "fpim.flows.quantize.train", "fpim.flows.pim.train",            # training
    "sim.engine.schedule_cycles", "fpim.flows.simulate.check_functional",
    "fpim.flows.pim_deploy.pim_predictions", "sim.search.engine_designs",
    "hw.generate.generate", "fpim.flows.synth.generate",           # Amaranth
    "fpim.flows.synth.synthesize",                                  # Yosys
    "fpim.flows.verify.build_accel", "fpim.flows.verify.run_verilator",  # Verilator
)


class LongWorkReached(BaseException):
    """A malformed input reached long work (not an Exception: nothing may catch it)."""


def tripwire(name: str) -> Callable[..., None]:
    def trip(*args: object, **kwargs: object) -> None:
        raise LongWorkReached(f"validation let the input through to {name}")
    return trip


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``fpim argv`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): (b"/" if p.is_dir() else p.read_bytes())
            for p in sorted(d.rglob("*"))}


def refusal(argv: list[str], workdir: Path) -> str:
    """Run ``argv``, assert a clean refusal that leaves ``workdir`` as it was; return the
    error line."""
    before = _snapshot(workdir)
    code, out, err = run_cli(argv)
    lines = err.splitlines()
    assert "Traceback" not in err, err
    assert code == 2 and len(lines) == 1 and err.endswith("\n"), (code, err)
    assert ERROR_LINE.fullmatch(lines[0]), lines[0]
    assert out == "", out
    assert _snapshot(workdir) == before, "the refused command changed files"
    return lines[0]


# ---------------------------------------------------------------------------------------
# Malformed artifacts: edited copies of the shipped one, re-hashed so that the edit itself
# (not the content hash) is what must be refused
# ---------------------------------------------------------------------------------------

def manifest_hash(manifest: dict, blob: bytes) -> str:
    """The content hash of docs/artifact.md, computed here independently of quant."""
    body = {k: v for k, v in manifest.items() if k != "content_hash"}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canon + b"\0" + blob).hexdigest()


def edited_artifact(dest: Path, manifest: Callable[[dict], None] | None = None,
                    tensors: Callable[[dict[str, np.ndarray]], None] | None = None) -> Path:
    """A copy of the shipped artifact at ``dest`` with ``manifest`` and ``tensors`` applied
    to its parsed manifest and its arrays, and the content hash recomputed (unless
    ``manifest`` changes it)."""
    shutil.copytree(SHIPPED_ARTIFACT, dest)
    if tensors is not None:
        arrays = dict(load_file(dest / "tensors.safetensors"))
        tensors(arrays)
        save_file(arrays, dest / "tensors.safetensors")
    doc = json.loads((dest / "manifest.json").read_text())
    claimed = doc["content_hash"]
    if manifest is not None:
        manifest(doc)
    if doc.get("content_hash") == claimed:  # unless the edit is of the hash itself
        doc["content_hash"] = manifest_hash(doc, (dest / "tensors.safetensors").read_bytes())
    (dest / "manifest.json").write_text(json.dumps(doc, indent=1))
    return dest


def leaves(doc: object, path: tuple = ()) -> Iterator[tuple[tuple, object]]:
    """Every (path, value) of a JSON document, containers included (root excepted)."""
    if path:
        yield path, doc
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) \
        if isinstance(doc, list) else ()
    for k, v in items:
        yield from leaves(v, (*path, k))


def set_at(doc: dict, path: tuple, value: object) -> None:
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
