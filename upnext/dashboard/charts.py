"""Inline SVG charts drawn here (no chart library, no script): stacked bars of completed and
failed runs per minute or hour, from store/throughput.py's rows. Colours come from the
stylesheet (classes), so dark mode applies to them too.
"""

from __future__ import annotations

from html import escape
from typing import Any

from upnext.store.stats import Counts
from upnext.store.throughput import Row

WIDTH, HEIGHT, PAD = 600, 130, 18


def series(step_s: int, rows: list[Row]) -> dict[str, Any]:
    """``{"step_s", "rows": [{at, completed, failed}], "completed", "failed"}`` (the sums)."""
    return {"step_s": step_s, "rows": [{"at": at, "completed": done, "failed": failed} for at, done, failed in rows],
            "completed": sum(r[1] for r in rows), "failed": sum(r[2] for r in rows)}


def quantiles(counts: Counts) -> dict[str, float | None]:
    summary = counts.to_dict()
    return {name: summary[name] for name in ("run_p50_s", "run_p95_s", "wait_p50_s", "wait_p95_s")}


def bars(data: dict[str, Any], title: str) -> str:
    """Stacked bars (completed under failed), the peak labelled, the span's ends on the axis."""
    rows = data["rows"]
    peak = max((r["completed"] + r["failed"] for r in rows), default=0)
    slot = (WIDTH - 2 * PAD) / max(len(rows), 1)
    scale = (HEIGHT - 2 * PAD - 6) / peak if peak else 0
    base = HEIGHT - PAD - 6
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             f'<line class="axis" x1="{PAD}" y1="{base}" x2="{WIDTH - PAD}" y2="{base}"/>']
    for i, row in enumerate(rows):
        x = PAD + i * slot
        done_h, failed_h = row["completed"] * scale, row["failed"] * scale
        if done_h:
            parts.append(_bar("done", x, base - done_h, slot, done_h, f"{row['completed']} completed"))
        if failed_h:
            parts.append(_bar("fail", x, base - done_h - failed_h, slot, failed_h, f"{row['failed']} failed"))
    span = f"{len(rows)} {'min' if data['step_s'] == 60 else 'h'} ago"
    parts += [f'<text class="label" x="{PAD}" y="{PAD - 5}">peak {peak} per {_unit(data["step_s"])}</text>',
              f'<text class="label" x="{PAD}" y="{HEIGHT - 4}">{span}</text>',
              f'<text class="label" x="{WIDTH - PAD}" y="{HEIGHT - 4}" text-anchor="end">now</text>', "</svg>"]
    return "".join(parts)


def _bar(kind: str, x: float, y: float, width: float, height: float, label: str) -> str:
    return (f'<rect class="{kind}" x="{x:.1f}" y="{y:.1f}" width="{max(width - 1, 1):.1f}" height="{height:.1f}">'
            f"<title>{escape(label)}</title></rect>")


def _unit(step_s: int) -> str:
    return "minute" if step_s == 60 else "hour"


def seconds(value: float | None) -> str:
    """A duration for a table: ``-`` when unknown, ms below a second."""
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
