"""The first draft of a report's narrative (可疑行为描述), for the officer to edit on the decision form.

Built only from what the case holds: the customer's facts, the alerted transactions (amounts,
channels, counterparties, countries), and what each decision recorded as its reasons (the rules
fired, worded; the features that raised the score most). The officer's edited text is what the
filing carries; this draft is never filed unread (a suspicious decision needs a narrative typed
into or kept on the form, and the form shows it).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd


def _money(x: float) -> str:
    return f"CNY {x:,.2f}"


def draft_narrative(case: dict[str, Any], alerts: list[dict[str, Any]], customer: dict[str, Any] | None) -> str:
    """A plain-English draft describing the suspicious activity of a case."""
    facts = customer or {}
    who = f"Customer {case['customer_id']}"
    kind = facts.get("customer_type")
    if kind:
        who += f" ({kind}"
        if facts.get("occupation_or_industry"):
            who += f", {facts['occupation_or_industry']}"
        if facts.get("residence_country"):
            who += f", resident in {facts['residence_country']}"
        who += ")"
    if not alerts:
        return f"{who}: no alerted transaction is recorded in this case."
    times = [pd.Timestamp(a["txn_time"]) for a in alerts]
    amounts = [float(a["txn"].get("amount") or 0.0) for a in alerts]
    out_total = sum(x for a, x in zip(alerts, amounts) if a["txn"].get("direction") == "out")
    in_total = sum(x for a, x in zip(alerts, amounts) if a["txn"].get("direction") == "in")
    channels = Counter(str(a["txn"].get("channel") or "other") for a in alerts)
    types = Counter(str(a["txn"].get("txn_type") or "other") for a in alerts)
    counterparties = {str(a["txn"].get("counterparty_id")) for a in alerts if a["txn"].get("counterparty_id")}
    countries = sorted({str(a["txn"].get("counterparty_country")) for a in alerts
                        if a["txn"].get("counterparty_country") not in (None, "", facts.get("residence_country"))})
    lines = [
        f"{who} made {len(alerts)} transaction(s) that the monitoring system alerted on between "
        f"{min(times):%Y-%m-%d} and {max(times):%Y-%m-%d}, totalling {_money(sum(amounts))} "
        f"({_money(in_total)} received, {_money(out_total)} paid out).",
        "Channels: " + ", ".join(f"{c} ({n})" for c, n in channels.most_common()) + "; types: "
        + ", ".join(f"{t} ({n})" for t, n in types.most_common()) + ".",
    ]
    if counterparties:
        lines.append(f"The transactions involved {len(counterparties)} counterpart"
                     f"{'y' if len(counterparties) == 1 else 'ies'}"
                     + (f", including counterparties in {', '.join(countries)}" if countries else "") + ".")
    reasons: Counter[str] = Counter()
    features: Counter[str] = Counter()
    for a in alerts:
        e = a.get("explanation") or {}
        for text in ((e.get("rules_text") or {}).get("en") or [])[1:] or ((e.get("rules_text") or {}).get("en") or []):
            reasons[str(text)] += 1
        for c in e.get("top_contributions") or []:
            if c.get("direction") == "raises" and c.get("label"):
                features[str(c["label"])] += 1
    if reasons:
        lines.append("Indicators recorded with the alerts: " + "; ".join(r.rstrip(".") for r, _ in reasons.most_common(5)) + ".")
    if features:
        lines.append("The behaviour that raised the suspicion score most: "
                     + ", ".join(f for f, _ in features.most_common(5)) + ".")
    lines.append(f"The highest suspicion score in the case is {max(a['score'] for a in alerts):.1f} of 100.")
    lines.append("[Analyst: state why this activity has no apparent economic purpose or lawful source, what "
                 "due diligence found, and what the customer said, before deciding.]")
    return "\n".join(lines)
