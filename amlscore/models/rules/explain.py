"""Ratings and rule scores in words, in English (``lang="en"``) or Chinese (``lang="zh"``).

Every sub-item line gives the customer's situation or measured value, the band it fell in, the
score, the weight and the contribution (weight x score / m), so that the lines add up to the
score a compliance officer sees. Every fired rule gives each condition's value and threshold.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.features.labels import feature_label
from amlscore.models.rules import spec, texts
from amlscore.models.rules.config import RulesConfig, load_rules_config
from amlscore.models.rules.transaction_rules import RuleScore

_OPS = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "==": "="}
# How each input's value is shown.
_INPUT_KIND = {
    "suspicious_reports": "count", "ownership_layers": "count", "age_years": "count", "years_in_existence": "count",
    "cash_share": "share", "non_face_to_face_share": "share", "cross_border_share": "share",
    "operated_by_other_share": "share", "peer_cash_ratio": "ratio", "peer_txn_freq_ratio": "ratio",
    "high_risk_txn_count": "count", "operator_customers": "count", "unusual_txn_count": "count",
}


def _check_lang(lang: str) -> str:
    if lang not in texts.LANGS:
        raise AmlError(f"The 'lang' parameter must be one of {', '.join(texts.LANGS)}. Got {lang!r} instead.")
    return lang


def fmt_number(v: float) -> str:
    """A number for people: thousands separators, at most 2 decimals, no trailing zeros."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "?"
    v = float(v)
    if v.is_integer():
        return f"{int(v):,}"
    return f"{v:,.2f}".rstrip("0").rstrip(".") if abs(v) >= 0.01 else f"{v:.3g}"


def _fmt_value(input_id: str, v: float) -> str:
    kind = _INPUT_KIND.get(input_id, "number")
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "?"
    if kind == "share":
        return f"{100 * v:.0f}%" if abs(100 * v - round(100 * v)) < 0.05 else f"{100 * v:.1f}%"
    if kind == "ratio":
        return f"{v:.2f}×"
    return fmt_number(v)


def _band_text(input_id: str, edges: list[float], v: float, lang: str) -> str:
    if v is None or math.isnan(v):
        return ""
    i = int(np.searchsorted(np.asarray(edges, dtype=float), v, side="right"))
    f = lambda e: _fmt_value(input_id, e)  # noqa: E731
    if i == 0:
        return f"< {f(edges[0])}"
    if i == len(edges):
        return f"≥ {f(edges[-1])}"
    joiner = " 且 " if lang == "zh" else " and "
    return f"≥ {f(edges[i - 1])}{joiner}< {f(edges[i])}"


def _line_parts(config: RulesConfig, sub_item: str, case: str, input_id: str, has_value: bool, score: int,
                weight: float, missing: bool, lang: str) -> tuple[str, str]:
    """The sub-item sentence around its value: ``before + value_text + after`` (no value: ``before + after``)."""
    zh = lang == "zh"
    s = spec.SUB_ITEMS_BY_ID[sub_item]
    table = config.sub_items[sub_item]
    m = config.max_item_score
    head = f"{texts.pick(texts.ELEMENTS[s.element], lang)} › {texts.pick(texts.SUB_ITEMS[sub_item], lang)}"
    after_value = ""
    if s.kind == "categories":
        if case:
            detail = texts.pick(texts.CASES[(sub_item, case)], lang)
            if missing:
                detail += (f"（部分信息缺失，按不低于{table.missing}分计）" if zh
                           else f" (some information missing: scored at least {table.missing})")
        else:
            detail = (f"信息缺失或存疑，从严按{table.missing}分计" if zh
                      else f"information missing or doubtful, scored conservatively at {table.missing}")
    else:
        label = texts.pick(texts.INPUTS[(sub_item, input_id)], lang) if input_id else ""
        if not has_value:
            detail = (f"{label}未知：信息缺失，从严按{table.missing}分计" if zh
                      else f"{label} unknown: information missing, scored conservatively at {table.missing}")
        else:
            detail = f"{label} "
            if missing:
                after_value = (f"；其他信息缺失，按不低于{table.missing}分计" if zh
                               else f"; other information missing, scored at least {table.missing}")
    contribution = weight * score / m
    if zh:
        tail = f" → 得分 {score}/{m} × 权重 {fmt_number(weight)} ÷ {m} = {contribution:.2f} 分。"
        sep = "："
    else:
        tail = f" → score {score} of {m} × weight {fmt_number(weight)} ÷ {m} = {contribution:.2f} points."
        sep = ": "
    if s.kind == "inputs" and has_value:
        return f"{head}{sep}{detail}", f"{after_value}{tail}"
    return f"{head}{sep}{detail}{tail}", ""


def _value_text(config: RulesConfig, sub_item: str, input_id: str, value: float, lang: str) -> str:
    band = _band_text(input_id, config.sub_items[sub_item].inputs[input_id].edges, value, lang)
    return f"{_fmt_value(input_id, value)}（{band}）" if lang == "zh" else f"{_fmt_value(input_id, value)} ({band})"


def sub_item_line(config: RulesConfig, sub_item: str, case: str, input_id: str, value: float, score: int,
                  weight: float, contribution: float, missing: bool, lang: str = "en") -> str:
    """One sub-item of a rating in words (``contribution`` is weight x score / m, as in the breakdown)."""
    has_value = bool(input_id) and value is not None and not math.isnan(value)
    before, after = _line_parts(config, sub_item, case, input_id, has_value, int(score), float(weight), bool(missing), lang)
    if has_value and spec.SUB_ITEMS_BY_ID[sub_item].kind == "inputs":
        return before + _value_text(config, sub_item, input_id, float(value), lang) + after
    return before + after


def explain_rating(result, customer_id: str, lang: str = "en") -> list[str]:  # noqa: ANN001 - RatingResult (no import cycle)
    """The rating of one customer in words: level, basis, overrides, direct-to-lowest, every sub-item, review.

    Parameters
    ----------
    result : RatingResult
    customer_id : str
    lang : {"en", "zh"}

    Returns
    -------
    list of str
        One sentence per line.
    """
    lang = _check_lang(lang)
    zh = lang == "zh"
    config: RulesConfig = result.config
    r = result.ratings
    rows = r.index[(r["customer_id"] == str(customer_id)).to_numpy()]
    if len(rows) == 0:
        raise AmlError(f"customer {customer_id!r} is not in this rating")
    row = r.loc[rows[0]]
    level = config.level(row["level"])
    level_name = level.name.zh if zh else level.name.en
    ctype = {"individual": ("individual", "个人"), "corporate": ("corporate", "单位")}[row["customer_type"]]
    new = ("new customer", "新客户") if row["is_new"] else ("existing customer", "存量客户")
    day = pd.Timestamp(row["rated_at"]).date().isoformat()
    lines: list[str] = []
    if zh:
        lines.append(f"客户 {customer_id}（{ctype[1]}，{new[1]}），评级日 {day}：{level_name}。"
                     f"加权总分 {row['score']:.2f}/100（权重方案 {row['weight_set']}，配置 {config.short_hash}）。")
    else:
        lines.append(f"Customer {customer_id} ({ctype[0]}, {new[0]}), rated {day}: {level_name}. "
                     f"Weighted score {row['score']:.2f} of 100 (weight set {row['weight_set']}, configuration {config.short_hash}).")
    score_level = config.level(row["score_level"])
    band = f"[{fmt_number(score_level.band[0])}, {fmt_number(score_level.band[1])}{']' if score_level.band[1] == 100 else ')'}"
    basis = row["rating_basis"]
    if basis == "direct_to_highest":
        reasons = ("；" if zh else "; ").join(texts.pick(texts.HIGHEST_REASONS[k], lang) for k in row["highest_reasons"].split("|") if k)
        lines.append(f"直接定为最高风险等级：{reasons}。" if zh else f"Directly rated at the highest level: {reasons}.")
    elif basis == "direct_to_lowest":
        lines.append("符合直接定为最低风险等级的条件，且不存在任何排除情形。" if zh
                     else "Directly rated at the lowest level: a direct-to-lowest candidate with no exclusion.")
    sl = score_level.name.zh if zh else score_level.name.en
    lines.append(f"按加权总分，所在区间 {band} 对应{sl}。" if zh else f"By the weighted score alone, the band {band} gives {sl}.")
    parts = ("，" if zh else ", ").join(
        f"{texts.pick(texts.ELEMENTS[el], lang)} {row[f'score_{el}']:.2f}" for el in spec.ELEMENTS)
    lines.append(f"各基本要素得分：{parts}。" if zh else f"Elements: {parts}.")
    if row["lowest_refusals"]:
        reasons = ("；" if zh else "; ").join(texts.pick(texts.LOWEST_REFUSALS[k], lang) for k in row["lowest_refusals"].split("|") if k)
        cand = ("" if row["lowest_candidate"] else ("（且不属于候选行业）" if zh else " (and not a candidate industry)"))
        lines.append(f"不可直接定为最低风险：{reasons}{cand}。" if zh else f"Not eligible for direct rating at the lowest level: {reasons}{cand}.")
    elif basis != "direct_to_lowest":
        lines.append("不存在直接定为最低风险的排除情形，但不属于候选行业。" if zh
                     else "No exclusion from direct rating at the lowest level, but not a candidate industry.")
    b = result.breakdown
    mine = b[(b["customer_id"] == str(customer_id)).to_numpy()]
    for t in mine.itertuples(index=False):
        lines.append(sub_item_line(config, str(t.sub_item), str(t.case), str(t.input), float(t.value), int(t.score),
                                   float(t.weight), float(t.contribution), bool(t.missing), lang))
    if row["n_missing"]:
        lines.append(f"{row['n_missing']} 个子项信息缺失或存疑，已从严评分。" if zh
                     else f"{row['n_missing']} sub-item(s) had missing or doubtful information and were scored conservatively.")
    nxt = pd.Timestamp(row["next_review"]).date().isoformat()
    first = ("，首次评级" if zh else ", first rating") if row["is_first_rating"] else ""
    lines.append(f"下次复评不晚于 {nxt}（每 {row['review_interval_months']} 个月{first}）。" if zh
                 else f"Next review by {nxt} (every {row['review_interval_months']} months{first}).")
    return lines


def _small_codes(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and their labels for a low-cardinality column (categorical or not)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.codes.to_numpy(dtype=np.int64), np.asarray(s.cat.categories.astype(str), dtype=object)
    codes, uniques = pd.factorize(s.astype(str))
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def breakdown_text(result, lang: str = "en") -> pd.Series:  # noqa: ANN001 - RatingResult
    """:func:`sub_item_line` for every row of ``result.breakdown`` (same index), vectorised: each sentence
    is formatted once per distinct (sub-item, case, input, score, weight, missing) and each value once."""
    lang = _check_lang(lang)
    b = result.breakdown
    config = result.config
    if len(b) == 0:
        return pd.Series([], index=b.index, dtype=object)
    value = b["value"].to_numpy(dtype=float)
    item_c, item_l = _small_codes(b["sub_item"])
    case_c, case_l = _small_codes(b["case"])
    input_c, input_l = _small_codes(b["input"])
    has_value = (input_l[input_c] != "") & ~np.isnan(value)
    weight_c, weight_l = pd.factorize(b["weight"].to_numpy(dtype=float))
    score = b["score"].to_numpy(dtype=np.int64)
    missing = b["missing"].to_numpy(dtype=bool)
    # the seven small codes packed into one integer key, grouped by hashing (a row-wise unique sorts: slow)
    columns = [item_c + 1, case_c + 1, input_c + 1, has_value.astype(np.int64), score, weight_c + 1, missing.astype(np.int64)]
    key = np.zeros(len(b), dtype=np.int64)
    for col in columns:
        key = key * (int(col.max()) + 1) + col
    group, _ = pd.factorize(key)
    first = np.unique(group, return_index=True)[1]
    before = np.empty(len(first), dtype=object)
    after = np.empty(len(first), dtype=object)
    for g, row in enumerate(first):
        before[g], after[g] = _line_parts(config, item_l[item_c[row]], case_l[case_c[row]], input_l[input_c[row]],
                                          bool(has_value[row]), int(score[row]), float(weight_l[weight_c[row]]),
                                          bool(missing[row]), lang)
    middle = np.full(len(b), "", dtype=object)
    pair = np.where(has_value, item_c * (len(input_l) + 1) + input_c, -1)
    for p in np.unique(pair[pair >= 0]):
        rows = np.flatnonzero(pair == p)
        sub_item, input_id = item_l[p // (len(input_l) + 1)], input_l[p % (len(input_l) + 1)]
        edges = config.sub_items[sub_item].inputs[input_id].edges
        bands = [_band_text(input_id, edges, v, lang) for v in [edges[0] - 1] + list(edges)]  # one label per bin
        uv, inverse = np.unique(value[rows], return_inverse=True)
        bin_of = np.searchsorted(np.asarray(edges, dtype=float), uv, side="right")
        left, right = ("（", "）") if lang == "zh" else (" (", ")")
        texts_u = np.array([f"{_fmt_value(input_id, float(v))}{left}{bands[k]}{right}" for v, k in zip(uv, bin_of)], dtype=object)
        middle[rows] = texts_u[inverse.reshape(-1)]
    return pd.Series(before[group] + middle + after[group], index=b.index, dtype=object)


def explain_rules(result: RuleScore, config: RulesConfig | None = None, lang: str = "en") -> list[str]:
    """A rule score in words: the score and how it combines, then every fired rule with each
    condition's value and threshold."""
    lang = _check_lang(lang)
    zh = lang == "zh"
    config = config if config is not None else load_rules_config()
    rules = config.transaction_rules.rules
    short = result.config_hash[:12]
    if not result.fired:
        return [f"未触发任何规则：规则评分 0/100（配置 {short}）。" if zh else f"No rule fired: rule score 0 of 100 (configuration {short})."]
    k = len(result.fired)
    lines = [f"规则评分 {result.score:.1f}/100，共触发 {k} 条规则（按 100 ×（1 − ∏(1 − 权重)）合成；配置 {short}）。" if zh
             else f"Rule score {result.score:.1f} of 100 from {k} rule(s) fired (combined as 100 × (1 − Π(1 − weight))); configuration {short}."]
    for f in result.fired:
        rule = rules.get(f.rule_id)
        name = (rule.name.zh if zh else rule.name.en) if rule is not None else f.rule_id
        conds = ("；" if zh else "; ").join(
            f"{feature_label(c.feature, lang)} {fmt_number(c.value)} {_OPS[c.op]} {fmt_number(c.threshold)}" for c in f.conditions)
        lines.append(f"{name}（权重 {f.weight:.2f}）：{conds}。" if zh else f"{name} (weight {f.weight:.2f}): {conds}.")
    return lines
