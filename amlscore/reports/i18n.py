"""Words and number formats of the reports, in English (``en``) and Chinese (``zh``).

Every label a report prints comes from here (or from :mod:`amlscore.models.rules.texts`, which already words
the risk rating), so a test can check that both languages have every entry. Numbers are formatted
for people: CNY with thousands separators and two decimals, ratios with one decimal, dates in ISO
form on the bank's clock.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.features.labels import CHANNEL_WORDS
from amlscore.models.rules import texts as rule_texts

LANGS: tuple[str, ...] = ("en", "zh")
HTML_LANG = {"en": "en", "zh": "zh-CN"}


def check_lang(lang: str) -> str:
    """``lang`` if it is a report language; else an :class:`AmlError` naming the allowed values."""
    if lang not in LANGS:
        raise AmlError(f"The 'lang' parameter must be one of {', '.join(LANGS)}. Got {lang!r} instead.")
    return lang


def pick(pair: tuple[str, str], lang: str) -> str:
    """The English or Chinese half of an ``(en, zh)`` pair."""
    return pair[1] if lang == "zh" else pair[0]


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------
LABELS: dict[str, tuple[str, str]] = {
    # document
    "case_report": ("Case report", "案件调查报告"),
    "portfolio_report": ("Portfolio report", "监测总体情况报告"),
    "generated_at": ("Generated", "生成时间"),
    "confidential": ("Confidential: for anti-money-laundering use only", "内部资料 仅供反洗钱工作使用"),
    "case": ("Case", "案件"),
    "alert": ("Alert", "预警"),
    "request_id": ("Request", "请求编号"),
    "customer": ("Customer", "客户"),
    "period": ("Period", "期间"),
    "bank_time": ("bank time, UTC+8", "北京时间"),
    # verdict
    "verdict": ("Verdict", "结论"),
    "suspicion_score": ("Suspicion score", "可疑评分"),
    "alert_raised": ("Alert raised", "已触发预警"),
    "no_alert": ("No alert", "未触发预警"),
    "risk_level": ("Customer risk level", "客户风险等级"),
    "alerts_in_period": ("Alerts in period", "期间预警笔数"),
    "highest_score": ("Highest score in period", "期间最高评分"),
    "of_100": ("of 100", "/100"),
    "threshold": ("alert threshold", "预警阈值"),
    # sections
    "sec_summary": ("Summary", "摘要"),
    "sec_profile": ("Customer profile", "客户基本情况"),
    "sec_rating": ("Customer risk rating", "客户洗钱风险等级评定"),
    "sec_score": ("Suspicion score of the alerted transaction", "预警交易可疑评分"),
    "sec_score_period": ("Suspicion score of the highest-scored transaction", "期间最高评分交易的可疑评分"),
    "sec_attribution": ("What drove the score", "评分影响因素"),
    "sec_rules": ("Rules fired", "触发的监测规则"),
    "sec_timeline": ("Transactions", "交易情况"),
    "sec_peers": ("Comparison with peers", "与同类客户比较"),
    "sec_links": ("Counterparties and shared identifiers", "交易对手及共用标识"),
    "sec_narrative": ("Draft narrative for the suspicious-transaction report", "可疑交易报告描述（草稿）"),
    "sec_versions": ("Model, data and configuration versions", "模型、数据及配置版本"),
    "sec_alert_txn": ("Alerted transaction", "预警交易"),
    "sec_alerted": ("Alerted transactions", "预警交易列表"),
    # profile fields
    "customer_id": ("Customer ID", "客户号"),
    "customer_type": ("Type", "客户类型"),
    "occupation": ("Occupation / industry", "职业 / 行业"),
    "peer_group": ("Peer group", "同类客户组"),
    "born": ("Born / incorporated", "出生 / 成立日期"),
    "age": ("Age", "年龄"),
    "years": ("years", "岁"),
    "years_corp": ("years", "年"),
    "nationality": ("Nationality", "国籍 / 注册地"),
    "residence": ("Residence", "居住国"),
    "home_region": ("Account region", "开户地区"),
    "id_document": ("Identity document", "身份证件"),
    "pep": ("Politically exposed person", "政治公众人物"),
    "watchlist": ("On a watch list", "列入监控名单"),
    "refused_cdd": ("Refused due diligence", "拒绝尽职调查"),
    "resident": ("Resident", "居民"),
    "onboarding": ("Relationship opened", "建立业务关系"),
    "onboarding_channel": ("Opened via", "开户渠道"),
    "agent": ("Agent", "代理人"),
    "phone": ("Phone", "联系电话"),
    "emergency_phone": ("Emergency contact phone", "紧急联系人电话"),
    "ownership_layers": ("Ownership layers", "股权层级"),
    "income": ("Declared annual income", "申报年收入"),
    "turnover": ("Declared annual turnover", "申报年营业额"),
    "accounts": ("Accounts", "账户"),
    "prior_reports": ("Earlier reports", "既往报告"),
    "prior_reports_value": ("{s} suspicious, {n} not suspicious", "可疑 {s} 份，排除 {n} 份"),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    "unknown": ("unknown", "未知"),
    "none": ("none", "无"),
    # rating
    "rating_date": ("Rated at", "评级日"),
    "rating_score": ("Weighted score", "加权总分"),
    "rating_basis": ("Basis", "评级依据"),
    "next_review": ("Next review by", "下次复评日"),
    "element": ("Element", "基本要素"),
    "sub_item": ("Sub-item", "子项"),
    "situation": ("Situation or value", "情况或数值"),
    "item_score": ("Score", "得分"),
    "weight": ("Weight", "权重"),
    "points": ("Points", "分值"),
    "missing_info": ("information missing: scored conservatively", "信息缺失，从严评分"),
    "basis_weighted_score": ("weighted score", "加权评分"),
    "basis_direct_to_highest": ("directly rated highest", "直接定为最高风险"),
    "basis_direct_to_lowest": ("directly rated lowest", "直接定为最低风险"),
    "rating_total": ("Total", "合计"),
    # score
    "component": ("Component", "组成部分"),
    "value": ("Value", "数值"),
    "rule_score": ("Rule score", "规则评分"),
    "lgbm_probability": ("Model probability (LightGBM)", "模型概率（LightGBM）"),
    "anomaly_score": ("Anomaly score (Isolation Forest)", "异常评分（孤立森林）"),
    "fused_score": ("Suspicion score (fused)", "可疑评分（融合）"),
    "fusion_term": ("Term in the fused log-odds", "融合对数几率分项"),
    "fusion_intercept": ("Intercept", "截距"),
    "fusion_caption": ("The fused score is 100 × sigmoid(intercept + the three terms); each term grows with its component.",
                       "融合评分 = 100 × sigmoid(截距 + 三个分项)；各分项随其组成部分单调增加。"),
    "anomaly_share": ("Share of the isolation", "隔离贡献占比"),
    "top_reasons": ("Main reasons", "主要原因"),
    "no_model": ("No model set was available: the suspicion score is the rule score alone.",
                 "未加载模型：可疑评分仅为规则评分。"),
    "attr_caption": ("Contributions to the model's log-odds (TreeSHAP): red raises the suspicion, blue lowers it.",
                     "各特征对模型对数几率的贡献（TreeSHAP）：红色提高可疑程度，蓝色降低。"),
    "attr_base": ("average transaction", "平均交易"),
    "attr_other": ("{n} other features", "其余 {n} 个特征"),
    "attr_final": ("this transaction", "本笔交易"),
    "feature": ("Feature", "特征"),
    "feature_value": ("Value", "取值"),
    "contribution": ("Contribution", "贡献"),
    "anomaly_attr": ("Most unusual values (anomaly model)", "最异常的特征（异常检测模型）"),
    "rules_none": ("No rule fired.", "未触发监测规则。"),
    "rule": ("Rule", "规则"),
    "conditions": ("Conditions (value vs threshold)", "条件（实际值与阈值）"),
    # transactions
    "timeline_caption": ("Each dot is a transaction: money in above the line, money out below (log scale), colour by "
                         "channel; alerted transactions are ringed in red, the one this report explains is starred. "
                         "Bars: amounts in and out per day or week, by channel. The shaded band is the case period.",
                         "每个点代表一笔交易：横线以上为转入，以下为转出（对数刻度），颜色表示渠道；红圈为预警交易，"
                         "星号为本报告解释的交易。柱形图：按渠道分列的每日或每周转入、转出金额。阴影为案件期间。"),
    "txn_id": ("Transaction", "交易号"),
    "time": ("Time", "时间"),
    "direction": ("Direction", "方向"),
    "amount": ("Amount", "金额"),
    "channel": ("Channel", "渠道"),
    "txn_type": ("Type", "交易类型"),
    "counterparty": ("Counterparty", "交易对手"),
    "country": ("Country", "国家（地区）"),
    "ip": ("IP address", "IP地址"),
    "device": ("Device", "设备"),
    "score": ("Score", "评分"),
    "in": ("in", "转入"),
    "out": ("out", "转出"),
    "money_in": ("Money in", "转入"),
    "money_out": ("Money out", "转出"),
    "n_txns": ("Transactions", "交易笔数"),
    "totals_line": ("{n} transactions from {start} to {end}: {in_} in ({n_in}), {out} out ({n_out}).",
                    "{start}至{end}共{n}笔交易：转入{in_}（{n_in}笔），转出{out}（{n_out}笔）。"),
    "by_channel": ("By channel", "按渠道"),
    "more_alerted": ("and {n} more", "另有{n}笔"),
    "more_customers": ("and {n} more", "另有{n}名"),
    "more_rows": ("{n} more not shown", "另有{n}项未列出"),
    "source_audit log": ("as recorded in the audit log", "审计日志记录"),
    "source_audit log (explained later)": ("computed after the decision, frozen in the audit log", "决策后计算并存入审计日志"),
    "source_recomputed": ("recomputed with the model set", "由模型集重新计算"),
    "source_rules only": ("rules only (no model set)", "仅规则（无模型）"),
    "explanation": ("Explanation", "解释来源"),
    # peers
    "peer_intro": ("Over the 30 days to {day}, compared with the average of {n} {group} (this customer excluded):",
                   "截至 {day} 的30日内，与 {n} 名{group}的平均值（不含本客户）相比："),
    "metric": ("Measure", "指标"),
    "this_customer": ("This customer", "本客户"),
    "peer_average": ("Peer average", "同类平均"),
    "ratio": ("Ratio", "倍数"),
    "peers_none": ("No peer group to compare with.", "无可比较的同类客户。"),
    "peer_bar_caption": ("Bars: the customer against the peer average (an average under CNY 1,000 or one transaction "
                         "counts as that), full at 5× or more; highlighted from 1.5×.",
                         "条形：本客户与同类平均之比（平均值低于1,000元或1笔时按1,000元或1笔计），5倍及以上为满格；1.5倍以上标亮。"),
    # links
    "counterparties": ("Counterparties", "交易对手"),
    "cp_customer": ("customer of the bank", "本行客户"),
    "cp_external": ("external", "他行 / 外部"),
    "shared_ids": ("Identifiers shared with other customers", "与其他客户共用的标识"),
    "identifier": ("Identifier", "标识"),
    "kind": ("Kind", "类别"),
    "other_customers": ("Other customers", "其他客户"),
    "first_last": ("First – last seen", "首次 – 末次出现"),
    "shared_none": ("No IP address, device, agent, operator or phone is shared with another customer.",
                    "未发现与其他客户共用的IP地址、设备、代理人、操作人或电话。"),
    "cp_none": ("No counterparties recorded in the period.", "期间无交易对手记录。"),
    "txns_in_out": ("In / out", "转入 / 转出"),
    "kind_ip": ("IP address", "IP地址"),
    "kind_device": ("Device", "设备"),
    "kind_agent": ("Agent", "代理人"),
    "kind_operator": ("Operator", "操作人"),
    "kind_phone": ("Phone", "电话"),
    "kind_emergency_phone": ("Emergency contact phone", "紧急联系人电话"),
    # narrative
    "narrative_hint": ("A draft written from the facts above. Edit it before filing: check every statement, "
                       "add what the investigation found and remove what does not hold.",
                       "本草稿根据上述事实自动生成。报送前请逐句核实、补充调查结论，并删除不成立的内容。"),
    # versions
    "model_set": ("Model set", "模型集"),
    "model_version": ("Registered version", "注册版本"),
    "model_alias": ("Alias", "别名"),
    "run_id": ("MLflow run", "MLflow运行"),
    "data_fingerprint": ("Data fingerprint", "数据指纹"),
    "rules_config": ("Rules configuration", "规则配置"),
    "feature_params": ("Feature parameters", "特征参数"),
    "contract_version": ("Data contract", "数据契约版本"),
    "code_version": ("amlscore", "amlscore版本"),
    "audit_record": ("Audit record", "审计记录"),
    "meta_trained_at": ("Trained at", "训练时间"),
    "meta_code_version": ("Code version (git)", "代码版本（git）"),
    "meta_train_cutoff": ("Training cut-off", "训练截止日"),
    "meta_git_commit": ("Code version (git)", "代码版本（git）"),
    "meta_model_set_hash": ("Model set hash", "模型集哈希"),
    "caller": ("Caller", "调用方"),
    "decided_at": ("Decided at", "决策时间"),
    "not_available": ("not available", "不可用"),
    # portfolio
    "sec_alerts_day": ("Alerts per day", "每日预警数"),
    "sec_alerts_channel": ("Alerts per channel", "按渠道预警数"),
    "sec_alerts_typology": ("Alerts per typology", "按类型预警数"),
    "sec_risk_levels": ("Customer risk levels", "客户风险等级分布"),
    "sec_reviews": ("Reviews overdue", "逾期未复评"),
    "alerts": ("Alerts", "预警数"),
    "alert_rate": ("Alert rate", "预警率"),
    "customers": ("Customers", "客户数"),
    "share": ("Share", "占比"),
    "scored_txns": ("Transactions scored", "已评分交易"),
    "alerted_customers": ("Customers alerted", "涉及预警客户"),
    "days_overdue": ("Days overdue", "逾期天数"),
    "rated_at": ("Last rated", "上次评级"),
    "level": ("Level", "等级"),
    "overdue_none": ("No review is overdue.", "无逾期未复评的客户。"),
    "overdue_no_history": ("No rating history was given (--history: a ratings.csv written earlier by `amlscore rate`), "
                           "so no review can be overdue yet. Reviews due in the next 90 days: {n}.",
                           "未提供评级历史（--history：此前 `amlscore rate` 输出的 ratings.csv），无法判断逾期；"
                           "未来90日内到期的复评：{n} 户。"),
    "due_90": ("Reviews due within 90 days", "90日内到期复评"),
    "unrated_new": ("New customers not rated within 10 working days", "未在10个工作日内评级的新客户"),
    "typology": ("Typology", "类型"),
    "typology_basis_rules": ("Typology indicated by the strongest rule fired (alerts with no rule fired: model only).",
                             "类型取自触发的最高权重规则（未触发规则的预警归为“仅模型”）。"),
    "typology_truth": ("Known typology (synthetic data ground truth)", "已知类型（合成数据真实标签）"),
    "alerts_source": ("Source of alerts", "预警来源"),
    "source_audit": ("serving audit log", "服务审计日志"),
    "source_batch": ("batch scoring of the data set with the model set", "使用模型集对数据集批量评分"),
    "source_rules": ("transaction rules only (no model set available)", "仅交易规则（无可用模型）"),
    "as_of": ("As of", "截至"),
    "alerts_total": ("Alerts", "预警总数"),
    "model_only": ("model only (no rule fired)", "仅模型（未触发规则）"),
}


def t(key: str, lang: str, **kwargs: Any) -> str:
    """The label ``key`` in ``lang``, with ``{placeholders}`` filled from ``kwargs``."""
    text = pick(LABELS[key], lang)
    return text.format(**kwargs) if kwargs else text


# Value sets of the contract, in words.
CUSTOMER_TYPES = {"individual": ("individual", "个人"), "corporate": ("corporate", "单位")}
DIRECTIONS = {"in": ("in", "转入"), "out": ("out", "转出")}
CHANNELS = CHANNEL_WORDS
TXN_TYPES = {
    "transfer": ("transfer", "转账"),
    "cash_deposit": ("cash deposit", "现金存款"),
    "cash_withdrawal": ("cash withdrawal", "现金取款"),
    "purchase": ("purchase", "消费"),
    "remittance": ("remittance", "汇款"),
    "bill_payment": ("bill payment", "缴费"),
    "salary": ("salary", "代发工资"),
    "other": ("other", "其他"),
}
COUNTERPARTY_TYPES = {"individual": ("individual", "个人"), "corporate": ("corporate", "单位"), "unknown": ("unknown", "未知")}
ONBOARDING_CHANNELS = {
    "counter": ("counter", "柜面"),
    "online": ("online", "线上"),
    "agent": ("agent", "代理人"),
    "intermediary": ("intermediary", "中介机构"),
}
ID_DOCUMENTS = {k: rule_texts.CASES[("id_document", k)] for k in
                ("resident_id", "passport", "foreign_id", "hmt_permit", "business_license", "other")}
INDUSTRIES = rule_texts.INDUSTRIES
TYPOLOGIES = {
    "structuring": ("structuring", "拆分交易"),
    "fan_in": ("fan-in", "分散转入集中转出"),
    "fan_out": ("fan-out", "集中转入分散转出"),
    "rapid_pass_through": ("rapid pass-through", "快进快出"),
    "shared_ip_device": ("shared IP or device", "共用IP或设备"),
    "ip_abroad": ("online banking from abroad or another region", "异地或境外登录"),
    "corp_to_personal": ("corporate-to-personal transfers", "公转私"),
    "dormant_reactivation": ("dormant account reactivated", "长期不动户突然启用"),
    "high_risk_remittance": ("remittances to high-risk jurisdictions", "向高风险国家（地区）汇款"),
    "agent_ring": ("agent ring", "代理人关联账户"),
    "cycle": ("circular transfers", "循环转账"),
    "slow_layering": ("slow layering through intermediaries", "多层中转缓慢分层"),
    "model_only": LABELS["model_only"],
    "none": ("not laundering (false alert)", "非洗钱（误报）"),
}


def word(table: dict[str, tuple[str, str]], key: Any, lang: str) -> str:
    """``key`` in words from ``table``; unknown or empty keys come back as text (``?`` when empty)."""
    if key is None or (isinstance(key, float) and math.isnan(key)) or key is pd.NA:
        return t("unknown", lang)
    k = str(key)
    return pick(table[k], lang) if k in table else k


def peer_group_words(name: str, lang: str) -> str:
    """A peer group code ``"individual|self_employed"`` as a noun phrase naming its customers.

    ``en``: "individual self-employed customers"; ``zh``: "个体经营者类个人客户".
    """
    ctype, _, occupation = str(name).partition("|")
    occ = word(INDUSTRIES, occupation, lang) if occupation else ""
    if lang == "zh":
        kind = "个人客户" if ctype == "individual" else "单位客户"
        return f"{occ}类{kind}" if occ else kind
    kind = "individual" if ctype == "individual" else "corporate"
    return f"{kind} {occ} customers" if occ else f"{kind} customers"


# ---------------------------------------------------------------------------------------------
# Numbers and dates
# ---------------------------------------------------------------------------------------------
def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def fmt_cny(v: Any, lang: str, decimals: int = 2) -> str:
    """An amount in CNY: ``CNY 1,234,567.89`` (en) or ``1,234,567.89元`` (zh)."""
    if _is_missing(v):
        return t("unknown", lang)
    s = f"{float(v):,.{decimals}f}"
    return f"{s}元" if lang == "zh" else f"CNY {s}"


def fmt_cny_short(v: Any, lang: str) -> str:
    """A compact amount for chart labels and sentences: ``CNY 1.23 m`` / ``123.4 万元``."""
    if _is_missing(v):
        return t("unknown", lang)
    x = float(v)
    if lang == "zh":
        if abs(x) >= 1e8:
            return f"{x / 1e8:,.2f} 亿元"
        if abs(x) >= 1e4:
            return f"{x / 1e4:,.1f} 万元"
        return f"{x:,.0f} 元"
    if abs(x) >= 1e6:
        return f"CNY {x / 1e6:,.2f} m"
    if abs(x) >= 1e4:
        return f"CNY {x / 1e3:,.1f} k"
    return f"CNY {x:,.0f}"


def fmt_int(v: Any, lang: str = "en") -> str:
    """A whole number with thousands separators."""
    if _is_missing(v):
        return t("unknown", lang)
    return f"{int(round(float(v))):,}"


def fmt_num(v: Any, lang: str = "en", decimals: int = 2) -> str:
    """A number with thousands separators and at most ``decimals`` decimals (no trailing zeros)."""
    if _is_missing(v):
        return t("unknown", lang)
    x = float(v)
    if x.is_integer():
        return f"{int(x):,}"
    if abs(x) < 0.5 * 10 ** -decimals:
        return "< " + f"{10 ** -decimals:.{decimals}f}"
    return f"{x:,.{decimals}f}".rstrip("0").rstrip(".")


def fmt_pct(v: Any, lang: str = "en", decimals: int = 1) -> str:
    """A share (0..1) as a percentage."""
    if _is_missing(v):
        return t("unknown", lang)
    return f"{100 * float(v):.{decimals}f}%"


def fmt_ratio(v: Any, lang: str = "en") -> str:
    """A multiple: ``4.2×``."""
    if _is_missing(v) or math.isinf(float(v)):
        return "—"
    x = float(v)
    return f"{x:,.1f}×" if x < 100 else f"{x:,.0f}×"


def fmt_score(v: Any, lang: str = "en") -> str:
    """A 0..100 score with one decimal."""
    if _is_missing(v):
        return "—"
    return f"{float(v):.1f}"


def fmt_bool(v: Any, lang: str) -> str:
    if _is_missing(v):
        return t("unknown", lang)
    return t("yes", lang) if bool(v) else t("no", lang)


def fmt_date(v: Any, lang: str = "en") -> str:
    """A date as ``YYYY-MM-DD``."""
    if _is_missing(v) or v is pd.NaT:
        return t("unknown", lang)
    if isinstance(v, (datetime, pd.Timestamp)):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, date):
        return v.isoformat()
    return str(v)[:10]


def fmt_datetime(v: Any, lang: str = "en") -> str:
    """A local (bank clock) timestamp as ``YYYY-MM-DD HH:MM``."""
    if _is_missing(v) or v is pd.NaT:
        return t("unknown", lang)
    return pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")


def fmt_hash(v: Any, n: int = 12) -> str:
    """A hash shortened to ``n`` characters (``—`` when unknown)."""
    if _is_missing(v) or not str(v):
        return "—"
    return str(v)[:n]
