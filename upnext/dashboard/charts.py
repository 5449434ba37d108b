"""Inline SVG charts drawn here (no chart library, no script): stacked bars of completed and
failed runs per minute or hour, and the series they are drawn from (summed over functions from
store/stats.py). Colours come from the stylesheet (classes), so dark mode applies to them too.
"""

from __future__ import annotations

from html import escape
from typing import Any

from upnext.store.stats import Counts, FunctionStats

WIDTH, HEIGHT, PAD = 600, 120, 18


def per_minute(step: int, stats: list[FunctionStats]) -> dict[str, Any]:
    """The rows of every function summed: ``{"step_s", "rows": [{at, completed, failed}], p50/p95}``."""
    rows: dict[int, Counts] = {}
    window = Counts()
    for function_stats in stats:
        window.add(function_stats.window)
        for at, counts in function_stats.rows:
            rows.setdefault(at, Counts()).add(counts)
    summary = window.to_dict()
    return {"step_s": step, "rows": [{"at": at, "completed": c.counters["completed"], "failed": c.counters["failed"]}
                                     for at, c in sorted(rows.items())],
            **{name: summary[name] for name in ("completed", "failed", "run_p50_s", "run_p95_s", "wait_p50_s",
                                                "wait_p95_s")}}


def bars(series: dict[str, Any], title: str) -> str:
    """Stacked bars (completed under failed) with the peak labelled; an empty axis when idle."""
    rows = series["rows"]
    peak = max((r["completed"] + r["failed"] for r in rows), default=0)
    slot = (WIDTH - 2 * PAD) / max(len(rows), 1)
    scale = (HEIGHT - 2 * PAD) / peak if peak else 0
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"/>']
    for i, row in enumerate(rows):
        x = PAD + i * slot
        done_h, failed_h = row["completed"] * scale, row["failed"] * scale
        base = HEIGHT - PAD
        if done_h:
            parts.append(_bar("done", x, base - done_h, slot, done_h, f"{row['completed']} completed"))
        if failed_h:
            parts.append(_bar("fail", x, base - done_h - failed_h, slot, failed_h, f"{row['failed']} failed"))
    parts.append(f'<text class="label" x="{PAD}" y="{PAD - 5}">peak {peak} per {_unit(series["step_s"])}</text>')
    parts.append("</svg>")
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
