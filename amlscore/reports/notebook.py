"""Small helpers to read reports inside Jupyter (the notebooks import these; they define no logic).

* :func:`show` displays a report file or HTML text in an isolated frame (its CSS stays inside);
* :func:`summary` lists the key facts of a case as a two-column table;
* :func:`waterfall_of` draws the case report's waterfall for a model-set explanation.
"""

from __future__ import annotations

import html as _html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from amlscore.core.decision import Explanation
from amlscore.reports import i18n


class _Frame:
    def __init__(self, page: str, height: int) -> None:
        self.page = page
        self.height = height

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{_html.escape(self.page, quote=True)}" style="width:100%;height:{self.height}px;'
                f'border:1px solid #ddd"></iframe>')


def show(report: str | Path, height: int = 900) -> _Frame:
    """A displayable frame showing a report (a path to an HTML file, or the HTML itself)."""
    text = str(report)
    page = Path(text).read_text(encoding="utf-8") if not text.lstrip().startswith("<") else text
    return _Frame(page, height)


def summary(facts: Any) -> pd.DataFrame:
    """The verdict and main facts of a case, one per row, in the case's language."""
    lang = facts.lang
    s, r, p = facts.score, facts.rating, facts.profile
    rows = [
        (i18n.t("customer", lang), f"{p.customer_id} · {i18n.word(i18n.CUSTOMER_TYPES, p.customer_type, lang)} · "
                                   f"{i18n.word(i18n.INDUSTRIES, p.occupation, lang)}"),
        (i18n.t("txn_id", lang), f"{s.txn.txn_id} · {i18n.fmt_datetime(s.txn.time, lang)} · {i18n.fmt_cny(s.txn.amount, lang)} "
                                 f"{i18n.word(i18n.DIRECTIONS, s.txn.direction, lang)}"),
        (i18n.t("suspicion_score", lang), f"{i18n.fmt_score(s.suspicion_score)} "
                                          f"({i18n.t('alert_raised' if s.alert else 'no_alert', lang)})"),
        (i18n.t("risk_level", lang), f"{r.level_name} ({r.score:.2f})" if r is not None else i18n.t("not_available", lang)),
        (i18n.t("sec_rules", lang), "; ".join(x.name for x in s.rules) or i18n.t("none", lang)),
        (i18n.t("top_reasons", lang), "; ".join(a.label for a in s.attributions[:3] if a.contribution > 0) or "—"),
        (i18n.t("alerts_in_period", lang), str(len(facts.alerted))),
        (i18n.t("shared_ids", lang), str(facts.n_shared_total)),
    ]
    return pd.DataFrame(rows, columns=["", ""]).set_axis(["fact", "value"], axis=1)


class _Svg:
    def __init__(self, svg: str) -> None:
        self.svg = svg

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_html_(self) -> str:
        return self.svg


def waterfall_of(explanation: Explanation | Mapping[str, Any], lang: str = "en", top: int = 10) -> _Svg:
    """The case report's waterfall of a model-set explanation (:meth:`ModelSet.explain_vector` or its dict)."""
    import math

    from amlscore.features.labels import feature_label
    from amlscore.reports import charts
    from amlscore.reports.features_text import feature_value_text

    d = explanation.to_dict() if isinstance(explanation, Explanation) else dict(explanation)
    items = sorted(d.get("lgbm_contributions") or [], key=lambda c: -abs(c["contribution"]))[:top]
    base = float(d["lgbm_expected_value"])
    p = float((d.get("components") or {}).get("lgbm_probability", float("nan")))
    listed = sum(c["contribution"] for c in items)
    other = (math.log(p) - math.log1p(-p) - base - listed) if 0 < p < 1 else 0.0
    labels = [f"{charts.shorten(feature_label(c['feature'], lang), 34)} = {feature_value_text(c['feature'], c['value'], lang)}"
              for c in items]
    from amlscore.features.catalogue import FEATURE_NAMES

    return _Svg(charts.waterfall(labels, [c["contribution"] for c in items], base, lang, other=other,
                                 n_other=max(len(FEATURE_NAMES) - len(items), 0)))
