"""Short labels of the catalogue's features, in English and Chinese.

The catalogue (:mod:`amlscore.features.catalogue`) words each feature as a full English sentence; an
explanation shown to a compliance officer in Chinese, a chart axis or a table needs a few words in
either language. Feature names are systematic (``out_sum_24h``, ``cash_dep_cnt_7d``,
``share_atm_30d``), so most labels are composed from their parts; the rest are listed.

:func:`feature_label` is the one wording of a feature in the whole package: the model set's
explanations (and so the API responses and the audit log), the rule-condition texts and the reports
all call it, so the same alert reads the same everywhere. The short label is the one chosen because
it exists for every catalogue feature in both languages (a test checks it), it is composed the same
way for every window and direction, and it fits a table column or a chart axis as well as a
sentence. It sits in the features layer, the lowest one that knows the feature names, so every
layer above can import it.
"""

from __future__ import annotations

import functools
import re

_WINDOW = {
    "1h": ("1 h", "1小时"), "24h": ("24 h", "24小时"), "7d": ("7 days", "7日"), "30d": ("30 days", "30日"),
    "90d": ("90 days", "90日"),
}
_FLOW = {"in": ("incoming", "转入"), "out": ("outgoing", "转出")}
_STAT = {
    "cnt": ("count", "笔数"), "sum": ("amount", "金额"), "mean": ("mean amount", "平均金额"),
    "max": ("largest amount", "最大金额"), "std": ("spread of amounts", "金额标准差"),
}
_CASH = {
    "cash_dep_cnt": ("cash deposits", "现金存款笔数"), "cash_dep_sum": ("cash deposited", "现金存款金额"),
    "cash_wd_cnt": ("cash withdrawals", "现金取款笔数"), "cash_wd_sum": ("cash withdrawn", "现金取款金额"),
    "near_threshold_cash_cnt": ("cash just below the threshold", "略低于大额标准的现金笔数"),
    "near_threshold_cash_sum": ("cash just below the threshold, amount", "略低于大额标准的现金金额"),
    "fan_in": ("distinct payers", "不同付款方数"), "fan_out": ("distinct payees", "不同收款方数"),
    "new_cp_cnt": ("first-time counterparties", "新交易对手笔数"),
    "corp_indiv_cnt": ("corporate-individual transfers", "公私转账笔数"),
    "corp_indiv_sum": ("corporate-individual amount", "公私转账金额"),
    "high_risk_cnt": ("high-risk jurisdiction transactions", "高风险国家（地区）交易笔数"),
    "high_risk_sum": ("high-risk jurisdiction amount", "高风险国家（地区）交易金额"),
    "ip_abroad_cnt": ("sessions from abroad", "境外登录次数"),
    "ip_outside_region_cnt": ("sessions outside home region", "开户地以外登录次数"),
    "ip_customers": ("customers on this IP", "同一IP的客户数"),
    "device_customers": ("customers on this device", "同一设备的客户数"),
    "operator_customers": ("customers of this operator", "同一操作人代理的客户数"),
    "passthrough_ratio": ("pass-through ratio", "快进快出比例"),
    "residual_balance_ratio": ("residual balance ratio", "资金留存比例"),
    "peer_cash_ratio": ("cash vs peer average", "现金额与同类客户平均之比"),
    "peer_txn_freq_ratio": ("transactions vs peer average", "交易笔数与同类客户平均之比"),
    "amount_vs_own_mean": ("amount vs own mean", "金额与本人均值之比"),
    "amount_z_own": ("amount z-score vs own history", "金额相对本人历史的Z值"),
    "flow_vs_income": ("flows vs declared income", "资金流量与申报收入之比"),
    "in_vs_income": ("money in vs declared income", "转入金额与申报收入之比"),
    "cash_share": ("cash share", "现金占比"), "round_amount_share": ("round-amount share", "整数金额占比"),
    "night_share": ("night-time share", "夜间交易占比"), "cross_border_share": ("cross-border share", "跨境交易占比"),
    "in_share": ("incoming share of amount", "转入金额占比"), "reactivated": ("reactivated", "长期不动后重新启用"),
    "cp_fan_in": ("counterparty's distinct payers", "交易对手的不同付款方数"),
    "cp_fan_out": ("counterparty's distinct payees", "交易对手的不同收款方数"),
    "cp_in_sum": ("counterparty's money in", "交易对手转入金额"),
    "cp_out_sum": ("counterparty's money out", "交易对手转出金额"),
    "scatter_gather": ("scatter-gather intermediaries", "分散-汇聚中间账户数"),
    "gather_scatter": ("payer as a hub (gather-scatter)", "付款方汇聚-分散程度"),
    "cycle_len": ("shortest money cycle", "最短资金回流环长度"),
    "cycle_cnt": ("money cycles", "资金回流环数"),
    "chain_len": ("pass-through chain hops", "快进快出链条跳数"),
    "chain_kept_share": ("share moved on along the chain", "链条转出金额占比"),
    "payer_indiv_share": ("payer's share paid to individuals", "付款方对个人付款占比"),
    "payer_new_indiv_payees": ("payer's new individual payees", "付款方新增个人收款方数"),
    "payer_payees": ("payer's distinct payees", "付款方不同收款方数"),
    "payer_indiv_share_vs_peers": ("payer's share to individuals vs peers", "付款方对个人付款占比高于同类客户的幅度"),
    "reported_cps": ("reported counterparties", "已报告的交易对手数"),
    "reported_distance": ("hops to a reported customer", "与已报告客户的距离"),
    "reported_in_sum": ("money in from reported customers", "来自已报告客户的转入金额"),
    "reported_out_sum": ("money out to reported customers", "转给已报告客户的金额"),
}
_FIXED = {
    "cp_reported": ("counterparty already reported", "交易对手已被报告"),
    "reported_2hop_30d": ("reported customers two hops away, 30 days", "30日两跳内已报告客户数"),
    "id_component_size": ("customers linked by shared identifiers", "共用标识关联客户群规模"),
    "id_component_growth": ("linked customers joined in 7 days", "关联客户群7日新增人数"),
    "id_component_reported": ("reported customers in the linked group", "关联客户群中已报告客户数"),
    "id_component_reported_share": ("share of the linked group reported", "关联客户群中已报告客户占比"),
    "is_cash": ("cash transaction", "现金交易"),
    "is_large_cash": ("large cash (≥ 50,000)", "大额现金（≥5万元）"),
    "is_near_threshold_cash": ("cash just below the threshold", "略低于大额标准的现金"),
    "is_round_amount": ("round amount", "整数金额"),
    "channel_code": ("channel", "交易渠道"),
    "txn_type_code": ("transaction type", "交易类型"),
    "is_in": ("money in", "资金转入"),
    "amount": ("transaction amount", "交易金额"),
    "log_amount": ("amount (log)", "交易金额（对数）"),
    "hour_local": ("hour of day", "交易时点"),
    "is_night": ("at night", "夜间交易"),
    "is_weekend": ("at the weekend", "周末交易"),
    "hours_since_last_in": ("hours since last money in", "距上次转入小时数"),
    "out_within_24h_of_in": ("out within 24 h of money in", "转入后24小时内转出"),
    "is_new_counterparty": ("first-time counterparty", "首次交易对手"),
    "is_corp_indiv": ("corporate-individual transfer", "公私转账"),
    "is_cross_border": ("cross-border", "跨境交易"),
    "is_high_risk_country": ("high-risk jurisdiction", "高风险国家（地区）"),
    "is_ip_abroad": ("IP address abroad", "境外IP"),
    "is_ip_outside_home_region": ("IP outside home region", "开户地以外IP"),
    "is_operated_by_other": ("executed by someone else", "他人代为操作"),
    "agent_other_customers": ("other customers of the agent", "同一代理人的其他客户数"),
    "phone_other_customers": ("other customers with this phone", "同一电话的其他客户数"),
    "emergency_phone_other_customers": ("customers sharing the emergency phone", "共用紧急联系人电话的客户数"),
    "days_since_prev_txn": ("days since previous transaction", "距上笔交易天数"),
    "is_reactivation": ("dormant account reactivated", "长期不动户启用"),
    "account_age_days": ("account age (days)", "开户天数"),
    "is_corporate": ("corporate customer", "单位客户"),
}
#: The contract's channels in words (also the reports' channel names, :data:`amlscore.reports.i18n.CHANNELS`).
CHANNEL_WORDS = {
    "online_banking": ("online banking", "网上银行"), "mobile_banking": ("mobile banking", "手机银行"),
    "phone_banking": ("phone banking", "电话银行"), "pos": ("POS", "POS机"), "atm": ("ATM", "ATM"),
    "counter": ("counter", "柜面"),
}
_WIN_RE = "(" + "|".join(_WINDOW) + ")"


@functools.lru_cache(maxsize=4096)
def short_label_pair(name: str) -> tuple[str, str] | None:
    """``(English, Chinese)`` short label of a catalogue feature, or None when the name is not one.

    Cached (a pure function of the name; the catalogue has 156 features): every explained decision
    labels its top contributions and anomaly shares in this way, and the regular expressions cost
    ~0.1 ms a decision.
    """
    if name in _FIXED:
        return _FIXED[name]
    m = re.fullmatch(rf"(in|out)_(cnt|sum|mean|max|std)_{_WIN_RE}", name)
    if m:
        d, s, w = m.groups()
        en = f"{_FLOW[d][0]} {_STAT[s][0]}, {_WINDOW[w][0]}"
        zh = f"{_WINDOW[w][1]}{_FLOW[d][1]}{_STAT[s][1]}"
        return en, zh
    m = re.fullmatch(rf"share_([a-z_]+)_{_WIN_RE}", name)
    if m and m.group(1) in CHANNEL_WORDS:
        ch, w = m.groups()
        return f"{CHANNEL_WORDS[ch][0]} share, {_WINDOW[w][0]}", f"{_WINDOW[w][1]}{CHANNEL_WORDS[ch][1]}交易占比"
    m = re.fullmatch(rf"([a-z_]+?)_{_WIN_RE}", name)
    if m and m.group(1) in _CASH:
        stem, w = m.groups()
        en, zh = _CASH[stem]
        return f"{en}, {_WINDOW[w][0]}", f"{_WINDOW[w][1]}{zh}"
    return None


def feature_label(name: str, lang: str = "en") -> str:
    """A feature's label in ``lang`` (``"en"`` or ``"zh"``): its short label; the bare name when it has none."""
    pair = short_label_pair(name)
    if pair is None:
        return name
    return pair[1] if lang == "zh" else pair[0]


def has_label(name: str) -> bool:
    """True when ``name`` has a short label (every catalogue feature has; a test checks it)."""
    return short_label_pair(name) is not None
