"""Words a compliance officer reads, in English and Chinese.

Every element, sub-item, case, input, override, refusal and suppression reason declared in
:mod:`amlscore.models.rules.spec` has an entry here in both languages (a test checks it). Transaction
rule names are data and live with each rule in the configuration; their conditions name features
with :func:`amlscore.features.labels.feature_label`, the package's one feature wording.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["en", "zh"]
LANGS: tuple[str, ...] = ("en", "zh")

ELEMENTS = {
    "customer": ("Customer characteristics", "客户特性"),
    "geography": ("Geography", "地域"),
    "business": ("Business", "业务"),
    "industry": ("Industry and occupation", "行业（含职业）"),
}

SUB_ITEMS = {
    "information_disclosure": ("Public information disclosure", "公开信息披露程度"),
    "relationship_channel": ("Relationship channel", "建立业务关系的渠道"),
    "id_document": ("Identity document type", "身份证件种类"),
    "report_history": ("Suspicious-report history", "可疑交易报告记录"),
    "ownership_complexity": ("Ownership complexity", "股权或控制权结构复杂程度"),
    "adverse_records": ("Adverse records", "负面信息记录"),
    "age": ("Age", "年龄"),
    "corporate_age": ("Years in existence", "成立年限"),
    "sanctioned_jurisdiction": ("Sanctioned or monitored jurisdictions", "受制裁或监控的国家（地区）"),
    "fatf_jurisdiction": ("FATF-listed jurisdictions", "金融行动特别工作组（FATF）列名国家（地区）"),
    "predicate_crime_region": ("Serious predicate-crime regions", "上游犯罪高发地区"),
    "offshore_jurisdiction": ("Offshore centres and tax havens", "离岸金融中心及避税地"),
    "distance": ("Distance from the bank's region", "与本机构经营地域的距离"),
    "cash_intensity": ("Cash intensity", "现金交易密集程度"),
    "non_face_to_face": ("Non-face-to-face use", "非面对面交易"),
    "cross_border": ("Cross-border activity", "跨境交易"),
    "agent_transactions": ("Agent transactions", "代理交易"),
    "unusual_activity": ("Frequency of unusual activity", "异常交易频率"),
    "industry_risk": ("Industry or occupation", "行业或职业"),
    "pep_association": ("Politically exposed persons", "与政治公众人物的关联"),
}

# (sub_item, case) -> (en, zh): what the customer's situation is, as a phrase.
CASES = {
    ("information_disclosure", "public_body"): ("a state organ or state-owned enterprise (public disclosure)", "国家机关或国有企业（信息公开）"),
    ("information_disclosure", "listed_company"): ("a listed company (public disclosure)", "上市公司（信息公开）"),
    ("information_disclosure", "private"): ("a non-listed private entity (limited public information)", "非上市的非国有主体（公开信息有限）"),
    ("information_disclosure", "offshore"): ("an offshore company (little public information)", "离岸公司（公开信息很少）"),
    ("relationship_channel", "counter"): ("opened face to face at the counter", "柜面面对面开立"),
    ("relationship_channel", "online"): ("opened online, not face to face", "线上非面对面开立"),
    ("relationship_channel", "agent"): ("opened through an agent", "通过代理人开立"),
    ("relationship_channel", "intermediary"): ("opened through an intermediary", "通过中介机构开立"),
    ("id_document", "resident_id"): ("resident identity card", "居民身份证"),
    ("id_document", "passport"): ("passport", "护照"),
    ("id_document", "foreign_id"): ("foreign identity document", "外国身份证件"),
    ("id_document", "hmt_permit"): ("Hong Kong, Macao or Taiwan travel permit", "港澳台居民通行证件"),
    ("id_document", "business_license"): ("business licence", "营业执照"),
    ("id_document", "other"): ("another kind of document", "其他证件"),
    ("adverse_records", "watchlist_or_refused_cdd"): ("on a watch list or refused due diligence", "列入监控名单或拒绝尽职调查"),
    ("adverse_records", "shared_phone"): ("phone number shared with several unrelated customers", "手机号码与多名其他客户相同"),
    ("adverse_records", "none_found"): ("none found in the bank's own records (external records not available)", "本机构记录中未发现（无外部信息来源）"),
    ("sanctioned_jurisdiction", "customer_country"): ("nationality or residence in a sanctioned or monitored country", "国籍或居住地为受制裁或监控的国家（地区）"),
    ("sanctioned_jurisdiction", "counterparty_country"): ("counterparties in sanctioned or monitored countries", "交易对手位于受制裁或监控的国家（地区）"),
    ("sanctioned_jurisdiction", "none"): ("no link found", "未发现关联"),
    ("fatf_jurisdiction", "customer_black"): ("nationality or residence on the FATF call-for-action list", "国籍或居住地被FATF列为需采取行动的国家（地区）"),
    ("fatf_jurisdiction", "customer_grey"): ("nationality or residence on the FATF increased-monitoring list", "国籍或居住地被FATF列为加强监控的国家（地区）"),
    ("fatf_jurisdiction", "counterparty_black"): ("counterparties in FATF call-for-action countries", "交易对手位于FATF需采取行动的国家（地区）"),
    ("fatf_jurisdiction", "counterparty_grey"): ("counterparties in FATF increased-monitoring countries", "交易对手位于FATF加强监控的国家（地区）"),
    ("fatf_jurisdiction", "none"): ("no link found", "未发现关联"),
    ("predicate_crime_region", "listed_region"): ("account held in a region with serious predicate crime", "账户所在地区为上游犯罪高发地区"),
    ("predicate_crime_region", "other_region"): ("account held outside the listed regions", "账户所在地区不在名单内"),
    ("offshore_jurisdiction", "customer_country"): ("nationality, registration or residence in an offshore centre", "国籍、注册地或居住地为离岸金融中心"),
    ("offshore_jurisdiction", "counterparty_country"): ("counterparties in offshore centres", "交易对手位于离岸金融中心"),
    ("offshore_jurisdiction", "none"): ("no link found", "未发现关联"),
    ("distance", "bank_region"): ("resident in the bank's country, account in the bank's region", "居住在境内，账户在本机构经营地域内"),
    ("distance", "outside_bank_regions"): ("account held outside the bank's own regions", "账户在本机构主要经营地域之外"),
    ("distance", "abroad"): ("resident abroad", "居住在境外"),
    ("pep_association", "pep"): ("a PEP, a PEP's relative or associate, or controlled by one", "政治公众人物、其亲属或关系密切人，或受其控制"),
    ("pep_association", "not_pep"): ("no PEP association known", "未发现与政治公众人物的关联"),
}
INDUSTRIES = {
    "casino": ("casino", "博彩业"),
    "lottery": ("lottery", "彩票业"),
    "precious_metals": ("precious metals and stones", "贵金属及珠宝"),
    "arms": ("arms", "军火武器"),
    "real_estate": ("real estate", "房地产"),
    "art_antiques": ("art and antiques", "艺术品及古董"),
    "money_service": ("money services", "货币服务"),
    "import_export": ("import and export", "进出口贸易"),
    "pawnshop": ("pawnshop", "典当行"),
    "auction": ("auction", "拍卖行"),
    "offshore": ("offshore company", "离岸公司"),
    "cash_intensive_retail": ("cash-intensive retail", "现金密集型零售"),
    "entertainment": ("entertainment", "娱乐业"),
    "intermediary": ("intermediary", "中介服务"),
    "state_organ": ("state organ", "国家机关"),
    "soe": ("state-owned enterprise", "国有企业"),
    "listed_company": ("listed company", "上市公司"),
    "salaried": ("salaried employee", "工薪人员"),
    "student": ("student", "学生"),
    "retired": ("retired", "退休人员"),
    "self_employed": ("self-employed", "个体经营者"),
    "farmer": ("farmer", "农民"),
    "private_company": ("private company", "民营企业"),
    "other": ("other", "其他"),
}
for _k, _v in INDUSTRIES.items():
    CASES[("industry_risk", _k)] = _v

# (sub_item, input) -> (en, zh): the measured quantity.
INPUTS = {
    ("report_history", "suspicious_reports"): ("suspicious reports filed before the rating date", "评级日前已报送的可疑交易报告数"),
    ("ownership_complexity", "ownership_layers"): ("layers of ownership", "股权层级数"),
    ("age", "age_years"): ("age in years", "年龄（岁）"),
    ("corporate_age", "years_in_existence"): ("years since incorporation", "成立年数"),
    ("cash_intensity", "cash_share"): ("share of the amount moved in cash", "现金交易金额占比"),
    ("cash_intensity", "peer_cash_ratio"): ("cash as a multiple of the peer-group average (highest in the period)", "现金交易额为同类客户平均值的倍数（期间最高）"),
    ("non_face_to_face", "non_face_to_face_share"): ("share of transactions not made face to face", "非面对面交易笔数占比"),
    ("cross_border", "cross_border_share"): ("share of transactions with a counterparty abroad", "跨境交易笔数占比"),
    ("cross_border", "high_risk_txn_count"): ("transactions with high-risk jurisdictions", "与高风险国家（地区）的交易笔数"),
    ("agent_transactions", "operated_by_other_share"): ("share of transactions executed by someone else", "由他人代为操作的交易笔数占比"),
    ("agent_transactions", "operator_customers"): ("customers served by the same operator (highest)", "同一操作人代理的客户数（最高）"),
    ("unusual_activity", "unusual_txn_count"): ("transactions with a high rule score", "规则评分较高的交易笔数"),
    ("unusual_activity", "peer_txn_freq_ratio"): ("transaction count as a multiple of the peer-group average (highest)", "交易笔数为同类客户平均值的倍数（最高）"),
}

LEVEL_WORD = ("risk level", "风险等级")

HIGHEST_REASONS = {
    "watchlist": ("on a sanctions or AML monitoring list", "列入制裁或反洗钱监控名单"),
    "pep": ("a politically exposed person, a relative or associate of one, or controlled by one", "为政治公众人物、其亲属或关系密切人，或受其控制"),
    "repeated_reports": ("suspicious transactions reported repeatedly", "多次被报送可疑交易报告"),
    "refused_cdd": ("refused customer due diligence", "拒绝配合客户尽职调查"),
}
LOWEST_REFUSALS = {
    "assets_unknown": ("assets held are unknown", "客户资产情况不明"),
    "assets_above_limit": ("assets above the limit", "客户资产超过限额"),
    "correspondent_or_trust": ("possible correspondent or trust relationship (industry proxy)", "可能涉及代理行或信托关系（以行业判断）"),
    "non_resident_or_foreign_id": ("non-resident, or identified by a document other than a mainland resident ID or business licence", "非居民，或使用居民身份证、营业执照以外的证件"),
    "suspicious_report": ("has been the subject of a suspicious-transaction report", "曾被报送可疑交易报告"),
    "agent_representation": ("represented by an agent whose profession and kinship are unknown", "由他人代理，且无法确认其为职业代理人或亲属"),
    "refused_cdd": ("refused customer due diligence", "拒绝配合客户尽职调查"),
    "direct_to_highest": ("a direct-to-highest rule applies", "适用直接定为最高风险的情形"),
}
SUPPRESSION_REASONS = {
    "state_counterparty": ("all counterparties are state organs or the armed forces", "交易对手均为国家机关或军队"),
    "repeat_dismissed_low_risk": ("low-risk customer; same rules and counterparties as an alert already dismissed", "低风险客户，与已排除的预警规则及交易对手相同"),
}

def pick(pair: tuple[str, str], lang: str) -> str:
    """The English or Chinese half of an (en, zh) pair."""
    return pair[1] if lang == "zh" else pair[0]

