"""Comparisons a compliance officer reads: the customer against its peer group and its own history.

Built from the transaction's feature row (``peer_cash_ratio_30d``, ``peer_txn_freq_ratio_30d``,
``amount_vs_own_mean_90d``, ``amount_z_own_90d``, ``flow_vs_income_90d``) and the customer's peer
group (customer type x occupation or industry, :class:`amlscore.features.registry.CustomerRegistry`), in
English or Chinese. Undefined values (NaN: no history, no declared income) give no sentence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from amlscore.models.rules import texts

_TYPE_WORDS = {"individual": ("individual", "个人"), "corporate": ("corporate", "单位")}
_DIRECTION_WORDS = {"in": ("incoming", "转入"), "out": ("outgoing", "转出")}


def peer_group_words(group: str, lang: str) -> str:
    """``individual|self_employed`` -> "individual self-employed customers" / "个人客户（个体经营者）"."""
    ctype, _, occupation = group.partition("|")
    t = _TYPE_WORDS.get(ctype, (ctype, ctype))
    o = texts.INDUSTRIES.get(occupation, (occupation.replace("_", " "), occupation))
    if lang == "zh":
        return f"{t[1]}客户（{o[1]}）"
    return f"{t[0]} {o[0]} customers"


def _finite(v: object) -> float | None:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _times(r: float) -> str:
    return f"{r:.1f}" if r < 100 else f"{r:,.0f}"


def peer_comparisons(features: Mapping[str, float], group: str, direction: str, is_corporate: bool,
                     lang: str = "en") -> list[str]:
    """Sentences comparing this transaction's customer with its peers and with its own history."""
    zh = lang == "zh"
    g = peer_group_words(group, lang)
    out: list[str] = []
    cash = _finite(features.get("peer_cash_ratio_30d"))
    if cash is not None:
        if cash < 0.05:
            out.append(f"近30日无现金交易（同类客户：{g}）。" if zh else f"No cash over the last 30 days (peer group: {g}).")
        else:
            out.append(f"近30日现金交易额是{g}平均水平的{_times(cash)}倍。" if zh
                       else f"Cash over 30 days is {_times(cash)} times the average of {g}.")
    freq = _finite(features.get("peer_txn_freq_ratio_30d"))
    if freq is not None:
        out.append(f"近30日交易笔数是{g}平均水平的{_times(freq)}倍。" if zh
                   else f"Number of transactions over 30 days is {_times(freq)} times the average of {g}.")
    own = _finite(features.get("amount_vs_own_mean_90d"))
    d = _DIRECTION_WORDS.get(direction, (direction, direction))
    if own is not None:
        z = _finite(features.get("amount_z_own_90d"))
        if zh:
            tail = f"（偏离{z:+.1f}个标准差）" if z is not None else ""
            out.append(f"本笔金额是该客户前90日{d[1]}平均金额的{_times(own)}倍{tail}。")
        else:
            tail = f" ({z:+.1f} standard deviations)" if z is not None else ""
            out.append(f"This amount is {_times(own)} times the customer's own average {d[0]} amount over the previous 90 days{tail}.")
    income = _finite(features.get("flow_vs_income_90d"))
    if income is not None:
        what = ("申报年营业额", "declared annual turnover") if is_corporate else ("申报年收入", "declared annual income")
        out.append(f"近90日资金往来（年化）是{what[0]}的{_times(income)}倍。" if zh
                   else f"Money moved over 90 days, annualised, is {_times(income)} times the {what[1]}.")
    return out
