"""Charts of the reports, drawn with matplotlib and returned as inline SVG text.

Each function takes plain data (from :mod:`amlscore.reports.case` or :mod:`amlscore.reports.portfolio`) and returns
an ``<svg>`` element string that the HTML embeds as it is: no file, no script, no external font.
Text stays text in the SVG (``svg.fonttype = none``), so the browser draws Chinese with the page's
CJK font stack; every chart carries ``class="chart chart-<name>"``, ``role="img"`` and an
``aria-label``. The object-oriented API is used (no pyplot state), so charts can be drawn from any
thread.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from amlscore.reports import i18n

FONT_STACK = ["Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", "WenQuanYi Micro Hei",
              "DejaVu Sans", "Arial", "sans-serif"]
INK = "#1f2933"
MUTED = "#6b7785"
GRID = "#e4e7eb"
UP = "#c0392b"     # raises suspicion / money in
DOWN = "#2471a3"   # lowers suspicion / money out
ALERT = "#d62728"
CHANNEL_COLOURS = {
    "online_banking": "#4c72b0", "mobile_banking": "#55a868", "phone_banking": "#8172b3",
    "pos": "#ccb974", "atm": "#dd8452", "counter": "#64b5cd",
}
LEVEL_COLOURS = ["#b71c1c", "#e65100", "#f9a825", "#7cb342", "#2e7d32", "#00695c", "#455a64"]
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "amlscore-reports",
    "font.family": "sans-serif",
    "font.sans-serif": FONT_STACK,
    "font.size": 9.5,
    "axes.edgecolor": "#9aa5b1",
    "axes.labelcolor": INK,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "text.color": INK,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
}


def _svg(fig: Figure, name: str, label: str) -> str:
    """The figure as an ``<svg>`` element: no XML prolog, doctype or metadata; scales to its container."""
    buf = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # glyphs missing from the measuring font: the browser draws them
        FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    s = buf.getvalue()
    s = s[s.index("<svg"):]
    s = re.sub(r"\s*<metadata>.*?</metadata>", "", s, count=1, flags=re.S)
    m = re.match(r'<svg([^>]*)width="([\d.]+)pt" height="([\d.]+)pt"', s)
    if m:
        w, h = float(m.group(2)), float(m.group(3))
        s = s.replace(f'width="{m.group(2)}pt" height="{m.group(3)}pt"',
                      f'width="100%" style="max-width:{w * 4 / 3:.0f}px;height:auto" data-aspect="{w / h:.4f}"', 1)
    safe = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    s = s.replace("<svg", f'<svg class="chart chart-{name}" role="img" aria-label="{safe}"', 1)
    return s.strip()


def _fig(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=96)
    fig.patch.set_alpha(0)
    return fig


def _money_axis(lang: str) -> FuncFormatter:
    def fmt(v: float, _pos: Any = None) -> str:
        a = abs(v)
        if a == 0:
            return "0"
        if lang == "zh":
            if a >= 1e8:
                return f"{v / 1e8:g}亿"
            if a >= 1e4:
                return f"{v / 1e4:g}万"
            return f"{v:g}"
        if a >= 1e6:
            return f"{v / 1e6:g}m"
        if a >= 1e3:
            return f"{v / 1e3:g}k"
        return f"{v:g}"

    return FuncFormatter(fmt)


def shorten(text: str, n: int = 46) -> str:
    """``text`` cut to ``n`` characters with an ellipsis."""
    return text if len(text) <= n else text[: n - 1].rstrip(" ,") + "…"


# ---------------------------------------------------------------------------------------------
# Case charts
# ---------------------------------------------------------------------------------------------
def waterfall(labels: Sequence[str], contributions: Sequence[float], base: float, lang: str,
              other: float = 0.0, n_other: int = 0, title: str = "") -> str:
    """Feature attributions as a horizontal waterfall, from the average output to this one.

    Parameters
    ----------
    labels, contributions : one per listed feature (``"label = value"``; log-odds contributions).
    base : the model's average output (expected value), where the waterfall starts.
    other, n_other : the sum of the contributions not listed, and how many they are.
    """
    names = [i18n.t("attr_base", lang)] + [shorten(x, 60) for x in labels]
    steps = [float(c) for c in contributions]
    if n_other and abs(other) > 1e-12:
        names.append(i18n.t("attr_other", lang, n=n_other))
        steps.append(float(other))
    final = base + sum(steps)
    names.append(i18n.t("attr_final", lang))
    n = len(names)
    with matplotlib.rc_context(_RC):
        fig = _fig(7.4, 0.34 * n + 0.9)
        ax = fig.add_axes((0.44, 0.12, 0.53, 0.80 if n > 4 else 0.7))
        y = np.arange(n)[::-1]
        left = base
        span = [base, final]
        ax.plot([base, base], [y[0] - 0.35, y[0] + 0.35], color=MUTED, lw=2.5)
        ax.plot([base, base], [y[0] - 0.35, y[1] + 0.31], color="#9aa5b1", lw=0.8)
        for i, c in enumerate(steps, start=1):
            colour = UP if c >= 0 else DOWN
            ax.barh(y[i], c, left=left, color=colour, height=0.62)
            ax.plot([left + c, left + c], [y[i] - 0.31, y[i] - 1 + 0.31], color="#9aa5b1", lw=0.8)
            span += [left, left + c]
            left += c
        ax.plot([final, final], [y[-1] - 0.35, y[-1] + 0.35], color=INK, lw=2.5)
        lo, hi = min(span), max(span)
        pad = (hi - lo) * 0.18 or 0.5
        ax.set_xlim(lo - pad, hi + pad)
        left = base
        for i, c in enumerate(steps, start=1):
            end = left + c
            x = max(left, end) + pad * 0.06 if c >= 0 else min(left, end) - pad * 0.06
            ax.text(x, y[i], f"{c:+.2f}", va="center", ha="left" if c >= 0 else "right", fontsize=8.5,
                    color=UP if c >= 0 else DOWN)
            left = end
        prob = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
        ax.text(base, y[0] + 0.42, f"{base:.2f}  (p = {prob(base):.3f})", ha="center", va="bottom", fontsize=8.5, color=MUTED)
        ax.text(final, y[-1] - 0.45, f"{final:.2f}  (p = {prob(final):.3f})", ha="center", va="top", fontsize=8.5,
                color=INK, fontweight="bold")
        ax.set_yticks(y, names)
        ax.tick_params(axis="y", length=0, labelsize=8.8, labelcolor=INK)
        ax.axvline(base, color=GRID, lw=0.8, zorder=0)
        ax.set_xlabel("log-odds" if lang == "en" else "对数几率", fontsize=8.5, color=MUTED)
        ax.grid(axis="x", color=GRID, lw=0.6)
        ax.set_axisbelow(True)
        ax.spines["left"].set_visible(False)
        ax.set_ylim(-1.0, n - 0.2)
        if title:
            ax.set_title(title)
        return _svg(fig, "waterfall", title or i18n.t("sec_attribution", lang))


def timeline(frame: pd.DataFrame, lang: str, focus_txn: str | None = None,
             period: tuple[pd.Timestamp, pd.Timestamp] | None = None, title: str = "") -> str:
    """The customer's transactions over time and its flows in and out by channel.

    Top: one dot per transaction at its (bank-clock) time; money in above the zero line, money out
    below, on a symmetric log scale; colour by channel; alerted transactions ringed in red, the
    focal one starred. Bottom: amounts in (up) and out (down) per week (per day for short windows),
    stacked by channel. ``frame`` is :attr:`amlscore.reports.case_types.CaseFacts.transactions`.
    """
    f = frame.sort_values("time")
    with matplotlib.rc_context(_RC):
        fig = _fig(9.6, 5.2)
        gs = fig.add_gridspec(2, 1, height_ratios=[1.55, 1], hspace=0.12, left=0.085, right=0.8, top=0.93, bottom=0.09)
        ax = fig.add_subplot(gs[0])
        bx = fig.add_subplot(gs[1], sharex=ax)
        sign = np.where(f["direction"].to_numpy() == "in", 1.0, -1.0)
        amount = f["amount"].to_numpy(dtype=float) * sign
        times = pd.to_datetime(f["time"]).to_numpy()
        if period is not None:
            p0, p1 = pd.Timestamp(period[0]), pd.Timestamp(period[1]) + pd.Timedelta(days=1)
            for a in (ax, bx):
                a.axvspan(p0, p1, color="#fdf2e9", zorder=0, lw=0)
        channels = [c for c in CHANNEL_COLOURS if (f["channel"] == c).any()]
        for ch in channels:
            sel = (f["channel"] == ch).to_numpy()
            ax.scatter(times[sel], amount[sel], s=16, color=CHANNEL_COLOURS[ch], alpha=0.85, lw=0, zorder=3,
                       label=i18n.word(i18n.CHANNELS, ch, lang))
        alerted = f["alert"].to_numpy(dtype=bool)
        if alerted.any():
            ax.scatter(times[alerted], amount[alerted], s=70, facecolors="none", edgecolors=ALERT, lw=1.5, zorder=4,
                       label=i18n.t("alert", lang))
        if focus_txn is not None:
            sel = (f["txn_id"] == focus_txn).to_numpy()
            if sel.any():
                ax.scatter(times[sel], amount[sel], s=170, marker="*", color=ALERT, edgecolors="white", lw=0.8, zorder=5,
                           label=i18n.t("sec_alert_txn", lang))
        top = float(np.nanmax(np.abs(amount))) if len(amount) else 1.0
        ax.set_yscale("symlog", linthresh=100, linscale=0.4)
        lim = 10 ** math.ceil(math.log10(max(top, 100) * 1.05))
        ax.set_ylim(-lim, lim)
        top_k = int(math.log10(lim))
        first = 2 if top_k <= 5 else 3
        step = 1 if top_k - first <= 4 else 2
        ticks = [10 ** k for k in range(top_k, first - 1, -step)][::-1]
        ax.set_yticks([-t for t in ticks[::-1]] + [0] + ticks)
        ax.yaxis.set_major_formatter(_money_axis(lang))
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.axhline(0, color="#9aa5b1", lw=0.8)
        ax.text(1.005, 0.97, "▲ " + i18n.t("money_in", lang), transform=ax.transAxes, fontsize=8.5, color=MUTED, va="top")
        ax.text(1.005, 0.03, "▼ " + i18n.t("money_out", lang), transform=ax.transAxes, fontsize=8.5, color=MUTED, va="bottom")
        ax.set_ylabel("CNY" if lang == "en" else "金额（元）")
        ax.grid(axis="y", color=GRID, lw=0.6)
        ax.tick_params(axis="x", labelbottom=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 0.86), fontsize=8.5, handletextpad=0.3, borderaxespad=0.2)
        if title:
            ax.set_title(title)
        # flows by channel
        span_days = (f["time"].max() - f["time"].min()).days if len(f) else 0
        freq = "D" if span_days <= 45 else "W"
        if len(f):
            # stacked step areas (one polygon per channel and direction: light SVG, quick to draw)
            bucket = pd.to_datetime(f["time"]).dt.to_period("D" if freq == "D" else "W-SUN").dt.start_time
            g = f.assign(bucket=bucket.to_numpy()).groupby(["bucket", "direction", "channel"], observed=True)["amount"].sum()
            edges = pd.date_range(bucket.min(), bucket.max() + pd.Timedelta(days=1 if freq == "D" else 7),
                                  freq="D" if freq == "D" else "7D")
            starts = edges[:-1]
            for direction, s in (("in", 1.0), ("out", -1.0)):
                bottom = np.zeros(len(starts))
                for ch in channels:
                    vals = np.array([float(g.get((b, direction, ch), 0.0)) for b in starts])
                    if not vals.any():
                        continue
                    top = bottom + vals
                    bx.fill_between(edges, s * np.append(bottom, bottom[-1]), s * np.append(top, top[-1]), step="post",
                                    color=CHANNEL_COLOURS[ch], lw=0, alpha=0.9)
                    bottom = top
        bx.axhline(0, color="#9aa5b1", lw=0.8)
        bx.yaxis.set_major_formatter(_money_axis(lang))
        bx.set_ylabel(("per day" if freq == "D" else "per week") if lang == "en" else ("每日" if freq == "D" else "每周"))
        bx.grid(axis="y", color=GRID, lw=0.6)
        lo, hi = bx.get_ylim()
        m = max(abs(lo), abs(hi))
        bx.set_ylim(-m * 1.05, m * 1.05)
        locator = matplotlib.dates.AutoDateLocator(minticks=4, maxticks=9)
        bx.xaxis.set_major_locator(locator)
        bx.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%m-%d" if span_days < 200 else "%Y-%m"))
        return _svg(fig, "timeline", title or i18n.t("sec_timeline", lang))


# ---------------------------------------------------------------------------------------------
# Portfolio charts
# ---------------------------------------------------------------------------------------------
def daily_bars(days: Sequence[pd.Timestamp], counts: Sequence[int], lang: str, title: str = "",
               name: str = "alerts-per-day") -> str:
    """Alerts per day: bars, with a 7-day moving average line."""
    d = pd.Series(list(counts), index=pd.to_datetime(list(days)), dtype=float).sort_index()
    if len(d):
        full = pd.date_range(d.index.min(), d.index.max(), freq="D")
        d = d.reindex(full, fill_value=0.0)
    with matplotlib.rc_context(_RC):
        fig = _fig(9.6, 2.9)
        ax = fig.add_axes((0.07, 0.16, 0.9, 0.72))
        ax.bar(d.index, d.to_numpy(), width=0.9, color="#e6a19b", lw=0)
        if len(d) >= 7:
            ax.plot(d.index, d.rolling(7, min_periods=1).mean().to_numpy(), color=UP, lw=1.6,
                    label="7-day average" if lang == "en" else "7日均值")
            ax.legend(loc="upper left")
        ax.grid(axis="y", color=GRID, lw=0.6)
        ax.set_axisbelow(True)
        ax.xaxis.set_major_locator(matplotlib.dates.AutoDateLocator(minticks=4, maxticks=12))
        ax.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%Y-%m-%d" if len(d) < 60 else "%Y-%m"))
        if title:
            ax.set_title(title)
        return _svg(fig, name, title or i18n.t("sec_alerts_day", lang))


def hbars(labels: Sequence[str], values: Sequence[float], lang: str, title: str = "", name: str = "bars",
          colours: Sequence[str] | None = None, value_fmt: Any = None, note: Sequence[str] | None = None) -> str:
    """Horizontal bars with their values written at the end (largest first, as given)."""
    n = max(len(labels), 1)
    fmt = value_fmt or (lambda v: f"{v:,.0f}")
    with matplotlib.rc_context(_RC):
        fig = _fig(6.2, 0.3 * n + 0.75)
        ax = fig.add_axes((0.36, 0.08, 0.56, 0.84 if n > 3 else 0.7))
        y = np.arange(len(labels))[::-1]
        vals = np.asarray(values, dtype=float)
        ax.barh(y, vals, color=list(colours) if colours is not None else "#5b7db1", height=0.64)
        top = float(vals.max()) if len(vals) else 1.0
        for yi, v, i in zip(y, vals, range(len(vals))):
            text = fmt(v) + (f"  {note[i]}" if note is not None else "")
            ax.text(v + top * 0.015, yi, text, va="center", fontsize=8.5, color=INK)
        ax.set_xlim(0, top * 1.3 if top > 0 else 1)
        ax.set_yticks(y, [shorten(str(x), 38) for x in labels])
        ax.tick_params(axis="y", length=0, labelcolor=INK)
        ax.spines["left"].set_visible(False)
        ax.xaxis.set_visible(False)
        ax.spines["bottom"].set_visible(False)
        if title:
            ax.set_title(title)
        return _svg(fig, name, title or name)
