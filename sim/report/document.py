"""One report, two renderings: markdown (images by relative path, for a repository) and a
self-contained HTML page (images as ``data:`` URIs, inline style, no scripts, no links out).

A :class:`Document` is a title and sections of blocks (paragraphs, code, tables, figures);
both renderers walk the same blocks, so the two files say the same thing.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    """A preformatted line or block (a command)."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of strings; ``right`` aligns every column but the first to the right."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right: bool = True


@dataclass(frozen=True)
class Image:
    """A PNG figure stored as ``file`` next to the document."""

    file: str
    alt: str
    png: bytes
    caption: str = ""


Block = str | Code | Table | Image


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Document:
    title: str
    sections: tuple[Section, ...]

    @property
    def images(self) -> list[Image]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Image)]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md_block(b: Block) -> str:
    if isinstance(b, Code):
        return f"```\n{b.text}\n```"
    if isinstance(b, Table):
        align = ["---"] + [("---:" if b.right else "---")] * (len(b.headers) - 1)
        lines = ["| " + " | ".join(map(_md_cell, b.headers)) + " |",
                 "|" + "|".join(align) + "|"]
        lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in b.rows]
        return "\n".join(lines)
    if isinstance(b, Image):
        return f"![{b.alt}]({b.file})" + (f"\n\n{b.caption}" if b.caption else "")
    return b


def to_markdown(doc: Document) -> str:
    parts = [f"# {doc.title}"]
    for s in doc.sections:
        parts.append(f"## {s.title}")
        parts += [_md_block(b) for b in s.blocks]
    return "\n\n".join(parts) + "\n"


_STYLE = """body{font-family:"DejaVu Sans",sans-serif;max-width:1040px;margin:2em auto;
padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.2em .6em}td.r{text-align:right}
pre{background:#f4f4f4;padding:.6em;overflow-x:auto}img{max-width:100%}
figcaption{color:#555;font-size:.9em}"""


def _html_table(t: Table) -> str:
    cls = ' class="r"' if t.right else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
    body = "".join(
        "<tr>" + "".join(f"<td{cls if i else ''}>{html.escape(c)}</td>"
                         for i, c in enumerate(r)) + "</tr>\n" for r in t.rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>"


def _html_block(b: Block) -> str:
    if isinstance(b, Code):
        return f"<pre>{html.escape(b.text)}</pre>"
    if isinstance(b, Table):
        return _html_table(b)
    if isinstance(b, Image):
        data = base64.b64encode(b.png).decode("ascii")
        cap = f"<figcaption>{html.escape(b.caption)}</figcaption>" if b.caption else ""
        return (f'<figure><img src="data:image/png;base64,{data}" '
                f'alt="{html.escape(b.alt)}">{cap}</figure>')
    return f"<p>{html.escape(b)}</p>"


def to_html(doc: Document) -> str:
    body: list[str] = [f"<h1>{html.escape(doc.title)}</h1>"]
    for s in doc.sections:
        body.append(f"<h2>{html.escape(s.title)}</h2>")
        body += [_html_block(b) for b in s.blocks]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(doc.title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
            "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def bundle(doc: Document, tables: dict[str, str], summary: dict) -> dict[str, bytes]:
    """Every file of a report by name: ``index.md`` and ``index.html`` of ``doc`` with a
    closing section listing the files, its images, the CSV ``tables`` and ``summary.json``
    (``summary`` with its ``files`` key set to the other files' names)."""
    names = sorted([*tables, *(im.file for im in doc.images), "index.md", "index.html"])
    summary = {**summary, "files": names}
    listing = Section("Files", (
        "Columns of the CSV files and keys of summary.json: docs/report.md.",
        table(("file", "what"), [(n, _WHAT[n.rsplit(".", 1)[-1]]) for n in
                                 sorted([*names, "summary.json"])], right=False),
    ))
    doc = Document(doc.title, (*doc.sections, listing))
    out = {"index.md": to_markdown(doc).encode(), "index.html": to_html(doc).encode()}
    out.update({im.file: im.png for im in doc.images})
    out.update({n: t.encode() for n, t in tables.items()})
    out["summary.json"] = (json.dumps(summary, indent=2) + "\n").encode()
    return out


_WHAT = {"md": "this report (markdown, images by relative path)",
         "html": "this report (one self-contained page)", "png": "plot",
         "csv": "table", "json": "machine-readable summary"}


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: bool = True
          ) -> Table:
    """A :class:`Table` of the cells' ``str``."""
    return Table(tuple(headers), tuple(tuple(str(c) for c in r) for r in rows), right)
