"""A draft narrative for a suspicious-transaction report, written from the facts of a case.

The draft follows the order of the "description of suspicious characteristics" of a PBoC
suspicious-transaction report: who the customer is and how it is rated; what moved, when and
through which channels; what looks suspicious (rules fired, the model's main reasons, comparison
with peers); links to other customers; then a placeholder for what only the officer can write (the
investigation, the customer's explanation, the measures taken). It states facts and attributes
judgements to the rules and the model; it never concludes for the officer.

Sentences come from :class:`amlscore.reports.case_types.CaseFacts` only, so the draft and the report agree.
"""

from __future__ import annotations

import math

from amlscore.reports import i18n
from amlscore.reports.case_types import CaseFacts, PeerComparison, PeerMetric
from amlscore.reports.features_text import feature_value_text

#: A peer measure is worth a sentence when the customer is this many times the peer average.
PEER_SENTENCE_MIN_RATIO = 1.5


#: English subject and verb of each peer measure (the Chinese label reads as it is).
_EN_SUBJECT = {
    "cash_dep_sum": ("Cash deposits", "are"),
    "cash_wd_sum": ("Cash withdrawals", "are"),
    "in_sum": ("Money received", "is"),
    "out_sum": ("Money paid out", "is"),
    "n_txn": ("The number of transactions", "is"),
    "cross_border_sum": ("The cross-border amount", "is"),
    "high_risk_sum": ("The amount moved with high-risk jurisdictions", "is"),
    "n_near_threshold_cash": ("Cash transactions just below the large-value threshold", "are"),
    "n_night": ("Night-time transactions", "are"),
    "n_operated_by_other": ("Transactions executed by someone else", "are"),
}


def peer_sentence(m: PeerMetric, peers: PeerComparison, lang: str) -> str:
    """One peer comparison in words, e.g. "Cash deposits over 30 days are 4.2 times the average of
    individual self-employed customers (CNY 412,000.00 against CNY 98,120.50)."."""
    def val(v: float) -> str:
        return i18n.fmt_cny(v, lang) if m.kind == "amount" else i18n.fmt_num(v, lang, 1)

    days = (peers.end - peers.start).days + 1
    times = i18n.fmt_ratio(m.ratio).rstrip("×")
    if lang == "zh":
        if math.isinf(m.ratio):
            return f"{days}日内{m.label}为{val(m.customer_value)}，而{peers.n_peers:,}名{peers.group_words}平均为零。"
        return (f"{days}日内{m.label}为{peers.group_words}平均值的{times}倍"
                f"（本客户{val(m.customer_value)}，同类平均{val(m.peer_mean)}）。")
    subject, verb = _EN_SUBJECT.get(m.key, (m.label[:1].upper() + m.label[1:], "is"))
    if math.isinf(m.ratio):
        come = "come" if verb == "are" else "comes"
        return (f"{subject} over {days} days {come} to {val(m.customer_value)}, while the "
                f"{peers.n_peers:,} {peers.group_words} averaged none.")
    return (f"{subject} over {days} days {verb} {times} times the average of {peers.group_words} "
            f"({val(m.customer_value)} against {val(m.peer_mean)}).")


def peer_sentences(peers: PeerComparison | None, lang: str, min_ratio: float = PEER_SENTENCE_MIN_RATIO,
                   limit: int = 3) -> list[str]:
    """Sentences for the measures where the customer stands out most (at least ``min_ratio`` times)."""
    if peers is None:
        return []
    notable = [m for m in peers.metrics if m.customer_value > 0 and strength(m) >= min_ratio]
    notable.sort(key=lambda m: (-strength(m), m.key))
    return [peer_sentence(m, peers, lang) for m in notable[:limit]]


#: Peer averages below these are taken as these when ranking (as the peer features do): one
#: transaction against peers averaging none is not 'infinitely' unusual.
STRENGTH_FLOORS = {"amount": 1000.0, "count": 1.0}


def strength(m: PeerMetric) -> float:
    """How far the customer stands out on a measure: its value over the peer average, the average
    taken at least :data:`STRENGTH_FLOORS` (so a tiny or zero average does not dominate)."""
    return m.customer_value / max(m.peer_mean, STRENGTH_FLOORS.get(m.kind, 1.0))


def _join(items: list[str], lang: str) -> str:
    if lang == "zh":
        return "、".join(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def paragraphs(f: CaseFacts) -> list[str]:
    """The draft as paragraphs, in ``f.lang``."""
    lang = f.lang
    zh = lang == "zh"
    p = f.profile
    out: list[str] = []

    # 1. the customer
    ctype = i18n.word(i18n.CUSTOMER_TYPES, p.customer_type, lang)
    occ = i18n.word(i18n.INDUSTRIES, p.occupation, lang)
    opened = i18n.fmt_date(p.onboarded_at, lang)
    via = i18n.word(i18n.ONBOARDING_CHANNELS, p.onboarding_channel, lang)
    flags = []
    if p.is_pep:
        flags.append("政治公众人物" if zh else "a politically exposed person")
    if p.on_watchlist:
        flags.append("列入监控名单" if zh else "on a watch list")
    if p.refused_cdd:
        flags.append("曾拒绝尽职调查" if zh else "has refused due diligence")
    if zh:
        s = (f"客户{p.customer_id}为{ctype}客户，{'行业' if p.customer_type == 'corporate' else '职业'}为{occ}，"
             f"国籍（注册地）{p.nationality or '未知'}，于{opened}通过{via}建立业务关系")
        s += f"，开户地区{p.home_region}。" if p.home_region else "。"
        if flags:
            s += "该客户" + "，".join(flags) + "。"
        if p.reports_suspicious:
            s += f"本机构此前已就该客户报送可疑交易报告{p.reports_suspicious}份。"
        if f.rating is not None:
            r = f.rating
            s += f"截至{i18n.fmt_date(r.as_of, lang)}，本机构评定其洗钱风险等级为{r.level_name}（加权总分{r.score:.2f}）。"
    else:
        s = (f"Customer {p.customer_id} is an {ctype} customer" if ctype[0] in "aeiou" else f"Customer {p.customer_id} is a {ctype} customer")
        s += f" ({'industry' if p.customer_type == 'corporate' else 'occupation'}: {occ}), of nationality " \
             f"{p.nationality or 'unknown'}, with the bank since {opened} (opened via {via}"
        s += f", account region {p.home_region})." if p.home_region else ")."
        if flags:
            s += " The customer is " + _join(flags, lang) + "."
        if p.reports_suspicious:
            s += f" The bank has filed {p.reports_suspicious} earlier suspicious-transaction report(s) on this customer."
        if f.rating is not None:
            r = f.rating
            s += f" As of {i18n.fmt_date(r.as_of, lang)} the bank rates it {r.level_name} (weighted score {r.score:.2f})."
    out.append(s)

    # 2. the activity
    period = f.in_period
    n = len(period)
    s_in = float(period.loc[period["direction"] == "in", "amount"].sum())
    s_out = float(period.loc[period["direction"] == "out", "amount"].sum())
    n_in = int((period["direction"] == "in").sum())
    by_channel = period.groupby("channel")["amount"].sum().sort_values(ascending=False)
    main = [i18n.word(i18n.CHANNELS, c, lang) for c in by_channel.index[:2]]
    start, end = i18n.fmt_date(f.start, lang), i18n.fmt_date(f.end, lang)
    if f.mode == "alert" and f.score is not None:
        t = f.score.txn
        kind = i18n.word(i18n.TXN_TYPES, t.txn_type, lang)
        chan = i18n.word(i18n.CHANNELS, t.channel, lang)
        cp = t.counterparty_id or (i18n.word(i18n.COUNTERPARTY_TYPES, t.counterparty_type, lang)
                                   + (f"（{t.counterparty_country}）" if zh and t.counterparty_country else
                                      (f" ({t.counterparty_country})" if t.counterparty_country else "")))
        if zh:
            out.append(f"{i18n.fmt_datetime(t.time, lang)}（北京时间），该客户通过{chan}{i18n.word(i18n.DIRECTIONS, t.direction, lang)}"
                       f"{i18n.fmt_cny(t.amount, lang)}（{kind}，交易对手：{cp}，交易号{t.txn_id}）。")
        else:
            verb = "received" if t.direction == "in" else "paid out"
            out.append(f"On {i18n.fmt_datetime(t.time, lang)} (bank time) the customer {verb} {i18n.fmt_cny(t.amount, lang)} "
                       f"by {chan} ({kind}; counterparty: {cp}; transaction {t.txn_id}).")
        w0, w1 = f.transactions["time"].min(), f.transactions["time"].max()
        period = f.transactions
        n = len(period)
        s_in = float(period.loc[period["direction"] == "in", "amount"].sum())
        s_out = float(period.loc[period["direction"] == "out", "amount"].sum())
        n_in = int((period["direction"] == "in").sum())
        start, end = i18n.fmt_date(w0, lang), i18n.fmt_date(w1, lang)
    if n:
        if zh:
            out.append(f"{start}至{end}期间，该客户共发生交易{n:,}笔，转入{i18n.fmt_cny(s_in, lang)}（{n_in:,}笔），"
                       f"转出{i18n.fmt_cny(s_out, lang)}（{n - n_in:,}笔），主要通过{_join(main, lang)}办理。")
        else:
            out.append(f"From {start} to {end} the customer made {n:,} transactions: {i18n.fmt_cny(s_in, lang)} in "
                       f"({n_in:,}) and {i18n.fmt_cny(s_out, lang)} out ({n - n_in:,}), mainly by {_join(main, lang)}.")

    # 3. what looks suspicious
    parts: list[str] = []
    sc = f.score
    if sc is not None and sc.rules:
        names = [r.name for r in sc.rules]
        parts.append(f"交易触发以下监测规则：{_join(names, lang)}。" if zh else
                     f"The transaction fired the monitoring rule(s): {_join(names, lang)}.")
    if sc is not None and sc.attributions:
        ups = [a for a in sc.attributions if a.contribution > 0][:3]
        if ups:
            items = [f"{a.label}（{feature_value_text(a.feature, a.value, lang)}）" if zh else
                     f"{a.label} ({feature_value_text(a.feature, a.value, lang)})" for a in ups]
            thr = f"，预警阈值{sc.threshold:.1f}" if zh and sc.threshold is not None else (
                f", alert threshold {sc.threshold:.1f}" if sc.threshold is not None else "")
            parts.append(f"监测模型给出的可疑评分为{sc.suspicion_score:.1f}/100{thr}，主要依据为{_join(items, lang)}。" if zh else
                         f"The monitoring model scored it {sc.suspicion_score:.1f} of 100{thr}, mainly because of "
                         f"{_join(items, lang)}.")
    elif sc is not None and sc.rules:
        parts.append(f"规则评分为{sc.suspicion_score:.1f}/100。" if zh else f"Its rule score is {sc.suspicion_score:.1f} of 100.")
    elif sc is not None:
        parts.append("期间未触发监测规则。" if zh else "No monitoring rule fired in the period.")
    parts += peer_sentences(f.peers, lang)
    if f.mode == "period" and f.alert_count:
        parts.append(f"期间共有{f.alert_count}笔交易触发预警。" if zh else f"{f.alert_count} transaction(s) in the period raised an alert.")
    if parts:
        out.append(("" if zh else " ").join(parts))

    # 4. links
    link_parts: list[str] = []
    strong = [s for s in f.shared if s.kind != "ip" or s.n_others <= 5]
    for s in strong[:3]:
        kind = i18n.t(f"kind_{s.kind}", lang)
        risky = [o.customer_id for o in s.others if o.reports_suspicious]
        if zh:
            t = f"该客户与其他{s.n_others}名客户共用{kind}{s.value}"
            t += f"，其中{_join(risky, lang)}曾被报送可疑交易报告。" if risky else "。"
        else:
            t = f"The customer shares {kind.lower() if kind != 'IP address' else kind} {s.value} with {s.n_others} other customer(s)"
            t += f", of whom {_join(risky, lang)} {'has' if len(risky) == 1 else 'have'} been reported as suspicious before." if risky else "."
        link_parts.append(t)
    internal = [c for c in f.counterparties if c.customer_id][:3]
    if internal:
        ids = [c.customer_id for c in internal if c.customer_id]
        link_parts.append(f"主要行内交易对手为{_join(ids, lang)}。" if zh else
                          f"Its main counterparties within the bank are {_join(ids, lang)}.")
    if link_parts:
        out.append(("" if zh else " ").join(link_parts))

    # 5. the officer's part
    out.append("【待补充：调查核实情况（资金来源与去向、客户解释、相关证明材料）、可疑性判断及已采取的措施。】" if zh else
               "[To complete: what the investigation found (source and destination of the funds, the customer's "
               "explanation, supporting documents), the assessment of suspicion and the measures taken.]")
    return out


def draft_narrative(f: CaseFacts) -> str:
    """The draft narrative as text: paragraphs separated by a blank line."""
    return "\n\n".join(paragraphs(f))
