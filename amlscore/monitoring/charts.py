"""Small inline SVG charts for the drift and backtest reports: no file, font or script from elsewhere.

Each function returns one ``<svg>`` element as a string; every text in it is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Sequence

__all__ = ["LEVEL_COLOURS", "grouped_bars", "hbars", "lines"]

LEVEL_COLOURS = {"ok": "#4c8c4a", "warning": "#d9a300", "action": "#c0392b"}
_SERIES = ("#2f6db5", "#c0392b", "#4c8c4a", "#8e44ad", "#d9a300")
_FONT = 'font-family="sans-serif" font-size="11"'


def _num(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def hbars(labels: Sequence[str], values: Sequence[float], colours: Sequence[str], *, title: str,
          marks: Sequence[tuple[float, str]] = (), width: int = 640, cap: float | None = None) -> str:
    """Horizontal bars, one per label, with optional vertical marks (value, name) such as thresholds.

    ``cap``: the axis ends there and longer bars are cut at it (their value is still written), so that
    one huge value does not flatten the others against the marks.
    """
    row, left, top = 18, 210, 24
    height = top + row * len(labels) + 14 + 14 * len(marks)
    vmax = max([*values, *(m for m, _ in marks), 1e-12])
    if cap is not None:
        vmax = min(vmax, cap)
    scale = (width - left - 60) / vmax
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}" {_FONT}>', f'<text x="4" y="14" font-weight="bold">{escape(title)}</text>']
    for i, (label, value, colour) in enumerate(zip(labels, values, colours)):
        y = top + i * row
        parts.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{escape(label)}</text>')
        shown = min(value, vmax) * scale
        parts.append(f'<rect x="{left}" y="{y + 2}" width="{max(shown, 0.5):.1f}" height="{row - 5}" '
                     f'fill="{colour}"><title>{escape(label)}: {_num(value)}</title></rect>')
        parts.append(f'<text x="{left + shown + 4:.1f}" y="{y + 12}">{_num(value)}{" ▸" if value > vmax else ""}</text>')
    bottom = top + row * len(labels)
    for k, (value, name) in enumerate(marks):
        x = left + value * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom + 14 * k + 4}" stroke="#555" '
                     f'stroke-dasharray="4 3"/><text x="{x + 3:.1f}" y="{bottom + 14 * k + 14}">'
                     f'{escape(name)} {_num(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def grouped_bars(categories: Sequence[str], series: dict[str, Sequence[float]], *, title: str,
                 width: int = 640, height: int = 200) -> str:
    """Vertical bars per category, one bar per series side by side (e.g. reference vs current bin shares)."""
    left, bottom, top = 40, 34, 24
    n, k = max(len(categories), 1), max(len(series), 1)
    vmax = max([v for vs in series.values() for v in vs] + [1e-12])
    slot = (width - left - 10) / n
    bar = max(slot * 0.8 / k, 1.0)
    plot = height - top - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}" {_FONT}>', f'<text x="4" y="14" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#999"/>',
             f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{_num(vmax)}</text>']
    for j, (name, values) in enumerate(series.items()):
        colour = _SERIES[j % len(_SERIES)]
        for i, v in enumerate(values):
            h = v / vmax * plot
            x = left + i * slot + slot * 0.1 + j * bar
            parts.append(f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{escape(name)} {escape(categories[i])}: {_num(v)}</title></rect>')
        parts.append(f'<rect x="{left + j * 110}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{left + j * 110 + 14}" y="{height - 5}">{escape(name)}</text>')
    step = max(1, n // 12)
    for i in range(0, n, step):
        parts.append(f'<text x="{left + (i + 0.5) * slot:.1f}" y="{height - bottom + 12}" text-anchor="middle">'
                     f'{escape(categories[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def lines(x_labels: Sequence[str], series: dict[str, Sequence[float]], *, title: str,
          width: int = 640, height: int = 220) -> str:
    """One polyline per series over the same x labels (e.g. alerts per day, base and candidate)."""
    left, bottom, top = 48, 34, 24
    n = max(len(x_labels), 1)
    values = [v for vs in series.values() for v in vs]
    vmax = max(values + [1e-12])
    vmin = min(values + [0.0])
    plot_w, plot_h = width - left - 10, height - top - bottom
    span = vmax - vmin or 1.0

    def xy(i: int, v: float) -> str:
        return f"{left + (i / max(n - 1, 1)) * plot_w:.1f},{top + (1 - (v - vmin) / span) * plot_h:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}" {_FONT}>', f'<text x="4" y="14" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#999"/>',
             f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{_num(vmax)}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">{_num(vmin)}</text>']
    for j, (name, vs) in enumerate(series.items()):
        colour = _SERIES[j % len(_SERIES)]
        points = " ".join(xy(i, v) for i, v in enumerate(vs))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}">'
                     f'<title>{escape(name)}</title></polyline>')
        parts.append(f'<rect x="{left + j * 130}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{left + j * 130 + 14}" y="{height - 5}">{escape(name)}</text>')
    if x_labels:
        parts.append(f'<text x="{left}" y="{top + plot_h + 12}">{escape(x_labels[0])}</text>')
        parts.append(f'<text x="{width - 10}" y="{top + plot_h + 12}" text-anchor="end">{escape(x_labels[-1])}</text>')
    parts.append("</svg>")
    return "".join(parts)
