"""One self-contained HTML page: the report's table and its PNG plots as base64 data URIs."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Protocol

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; }
td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child, th:first-child { text-align: left; font-weight: bold; }
figure { margin: 1.5em 0; }
img { max-width: 100%; }
.notes { color: #555; font-size: 0.9em; }
"""


class HasImage(Protocol):
    title: str
    path: Path


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def table_html(labels: list[str], rows: list[tuple[str, list[str]]]) -> str:
    head = "".join(f"<th>{escape(label)}</th>" for label in labels)
    body = "".join(
        f"<tr><td>{escape(name)}</td>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"
        for name, cells in rows
    )
    return f"<table><thead><tr><th>figure</th>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(
    title: str,
    labels: list[str],
    rows: list[tuple[str, list[str]]],
    images: list[HasImage],
    notes: list[str],
) -> str:
    figures = "\n".join(
        f'<figure><img alt="{escape(p.title)}" src="{data_uri(p.path)}">'
        f"<figcaption>{escape(p.title)}</figcaption></figure>"
        for p in images
    )
    items = "".join(f"<li>{escape(n)}</li>" for n in notes)
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n"
        f"<h1>{escape(title)}</h1>\n{table_html(labels, rows)}\n"
        f'<ul class="notes">{items}<li>made {made}; definitions: docs/metrics.md</li></ul>\n'
        f"{figures}\n</body></html>\n"
    )


def write_html(
    path: Path,
    title: str,
    labels: list[str],
    rows: list[tuple[str, list[str]]],
    images: list[HasImage],
    notes: list[str],
) -> Path:
    Path(path).write_text(page(title, labels, rows, images, notes), encoding="utf-8")
    return Path(path)
