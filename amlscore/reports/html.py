"""HTML of the reports: jinja2 templates with autoescaping, inline CSS and inline SVG charts.

A report is one file that opens anywhere without a network: no script, no external stylesheet,
font or image. Charts come from :mod:`amlscore.reports.charts` as SVG text and are inserted as markup; every
other value goes through autoescaping. ``<html lang>`` is ``en`` or ``zh-CN``, and the CSS font
stack lists CJK fonts, so Chinese renders with whatever CJK font the reader has (Noto Sans CJK on
Debian: ``fonts-noto-cjk``).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from amlscore.reports import charts, i18n
from amlscore.reports.case_types import CaseFacts
from amlscore.reports.features_text import feature_value_text

TEMPLATES = Path(__file__).resolve().parent / "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The templates' environment: autoescape on for every template, strict undefined values."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    def bind(fn):  # noqa: ANN001, ANN202 - a formatter of amlscore.reports.i18n taking (value, lang, *args)
        @jinja2.pass_context
        def filt(ctx, value, *args):  # noqa: ANN001, ANN202
            return fn(value, ctx.get("lang", "en"), *args)
        return filt

    env.filters.update({name: bind(fn) for name, fn in {
        "cny": i18n.fmt_cny, "cny_short": i18n.fmt_cny_short, "num": i18n.fmt_num, "int": i18n.fmt_int,
        "pct": i18n.fmt_pct, "ratio": i18n.fmt_ratio, "score": i18n.fmt_score, "date": i18n.fmt_date,
        "datetime": i18n.fmt_datetime, "yesno": i18n.fmt_bool,
    }.items()})
    env.filters["hash"] = i18n.fmt_hash
    env.globals.update({"isinf": lambda v: isinstance(v, float) and math.isinf(v)})
    return env


def severity(score: float | None, threshold: float | None) -> str:
    """``high``, ``medium`` or ``low``: the colour class of a 0..100 score against the alert threshold."""
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return "none"
    thr = threshold if threshold is not None else 60.0
    if score >= thr:
        return "high"
    if score >= 0.7 * thr:
        return "medium"
    return "low"


def level_class(rank: int | None, n_levels: int) -> str:
    """CSS class of a risk level by its rank (0 = highest)."""
    if rank is None:
        return "lvl-none"
    if n_levels <= 1:
        return "lvl-0"
    return f"lvl-{min(4, round(rank * 4 / (n_levels - 1)))}"


def _labels(lang: str) -> dict[str, str]:
    return {k: i18n.pick(v, lang) for k, v in i18n.LABELS.items()}


def case_charts(f: CaseFacts) -> dict[str, Markup]:
    """The case's charts as SVG markup: ``waterfall`` (when attributions exist) and ``timeline``."""
    out: dict[str, Markup] = {}
    lang = f.lang
    s = f.score
    if s is not None and s.attributions and s.base_value is not None:
        labels = [f"{charts.shorten(a.label, 34)} = {feature_value_text(a.feature, a.value, lang)}" for a in s.attributions]
        out["waterfall"] = Markup(charts.waterfall(labels, [a.contribution for a in s.attributions], s.base_value, lang,
                                                   other=s.other_contribution, n_other=s.n_other))
    if len(f.transactions):
        period = (f.start, f.end)
        out["timeline"] = Markup(charts.timeline(f.transactions, lang, focus_txn=s.txn.txn_id if s is not None else None,
                                                 period=period))
    return out


def render_case(f: CaseFacts, narrative: str | None = None) -> str:
    """The case report as one self-contained HTML document."""
    from amlscore.reports.narrative import paragraphs, peer_sentences, strength

    lang = f.lang
    L = _labels(lang)
    s = f.score
    period = f.in_period if f.mode == "period" else f.transactions
    totals = {
        "start": i18n.fmt_date(f.start if f.mode == "period" else f.transactions["time"].min(), lang),
        "end": i18n.fmt_date(f.end if f.mode == "period" else f.transactions["time"].max(), lang),
        "n": len(period),
        "in": float(period.loc[period["direction"] == "in", "amount"].sum()),
        "out": float(period.loc[period["direction"] == "out", "amount"].sum()),
        "n_in": int((period["direction"] == "in").sum()),
        "n_out": int((period["direction"] == "out").sum()),
    }
    window = f.transactions
    by_channel = []
    if len(window):
        g = window.groupby(["channel", "direction"])["amount"].agg(["sum", "size"])
        for ch in charts.CHANNEL_COLOURS:
            if ch not in g.index.get_level_values(0):
                continue
            row = {"channel": ch, "label": i18n.word(i18n.CHANNELS, ch, lang), "colour": charts.CHANNEL_COLOURS[ch]}
            for d in ("in", "out"):
                row[f"sum_{d}"] = float(g["sum"].get((ch, d), 0.0))
                row[f"n_{d}"] = int(g["size"].get((ch, d), 0))
            by_channel.append(row)
    paras = narrative.split("\n\n") if narrative is not None else paragraphs(f)
    ctx = {
        "f": f, "s": s, "L": L, "lang": lang, "html_lang": i18n.HTML_LANG[lang], "i18n": i18n,
        "charts": case_charts(f), "totals": totals, "by_channel": by_channel,
        "severity": severity(s.suspicion_score if s else None, s.threshold if s else None),
        "level_class": level_class(f.rating.level_rank if f.rating else None, f.rating.n_levels if f.rating else 5),
        "peer_lines": peer_sentences(f.peers, lang, limit=4),
        "strength": strength,
        "narrative": paras,
        "fv": lambda name, v: feature_value_text(name, v, lang),
        "word": lambda table, key: i18n.word(getattr(i18n, table), key, lang),
        "t": lambda key, **kw: i18n.t(key, lang, **kw),
        "level_of": level_class,
        "sev": severity,
    }
    return environment().get_template("case.html.j2").render(**ctx)


def render_portfolio(p: Any) -> str:
    """The portfolio report (:class:`amlscore.reports.portfolio.PortfolioFacts`) as one self-contained HTML document."""
    from amlscore.reports.portfolio import portfolio_charts

    lang = p.lang
    ctx = {
        "p": p, "L": _labels(lang), "lang": lang, "html_lang": i18n.HTML_LANG[lang], "i18n": i18n,
        "charts": {k: Markup(v) for k, v in portfolio_charts(p).items()},
        "t": lambda key, **kw: i18n.t(key, lang, **kw),
        "word": lambda table, key: i18n.word(getattr(i18n, table), key, lang),
        "level_of": level_class,
    }
    return environment().get_template("portfolio.html.j2").render(**ctx)
