"""Words and formats: both languages complete, placeholders matching, numbers formatted for people."""

from __future__ import annotations

import re
import string

import pytest

from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.reports import i18n
from amlscore.features.labels import feature_label, has_label
from amlscore.reports.features_text import feature_value_text

CJK = re.compile(r"[\u4e00-\u9fff]")


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_every_label_has_both_languages_with_the_same_placeholders():
    for key, (en, zh) in i18n.LABELS.items():
        assert en.strip() and zh.strip(), key
        assert _fields(en) == _fields(zh), key


def test_chinese_labels_are_chinese():
    not_chinese = [k for k, (_, zh) in i18n.LABELS.items() if not CJK.search(zh)]
    assert not_chinese == ["of_100"]  # "/100"
    for table in (i18n.CHANNELS, i18n.TXN_TYPES, i18n.CUSTOMER_TYPES, i18n.TYPOLOGIES, i18n.ONBOARDING_CHANNELS):
        for key, (en, zh) in table.items():
            assert en and zh, key


def test_every_feature_has_a_short_label_in_both_languages():
    assert [n for n in FEATURE_NAMES if not has_label(n)] == []
    for n in FEATURE_NAMES:
        en, zh = feature_label(n, "en"), feature_label(n, "zh")
        assert en != n and zh != n, n
        assert CJK.search(zh) or zh in ("POS", "ATM"), (n, zh)


def test_amounts_are_cny_with_thousands_separators():
    assert i18n.fmt_cny(1234567.891, "en") == "CNY 1,234,567.89"
    assert i18n.fmt_cny(1234567.891, "zh") == "1,234,567.89元"
    assert i18n.fmt_cny_short(123_456, "zh") == "12.3 万元"
    assert i18n.fmt_cny_short(2_500_000, "en") == "CNY 2.50 m"
    assert i18n.fmt_cny(None, "zh") == "未知"


def test_numbers_ratios_dates():
    assert i18n.fmt_int(1234567.4) == "1,234,567"
    assert i18n.fmt_num(2.50) == "2.5"
    assert i18n.fmt_num(0.001, decimals=1) == "< 0.1"
    assert i18n.fmt_ratio(4.1999) == "4.2×"
    assert i18n.fmt_ratio(float("inf")) == "—"
    assert i18n.fmt_pct(0.256) == "25.6%"
    assert i18n.fmt_date("2025-03-04T10:00:00") == "2025-03-04"
    assert i18n.fmt_hash("abcdef0123456789abcdef", 8) == "abcdef01"


def test_feature_values_read_as_words():
    assert feature_value_text("is_cash", 1.0, "en") == "yes"
    assert feature_value_text("is_cash", 0.0, "zh") == "否"
    assert feature_value_text("channel_code", 4.0, "en") == "ATM"
    assert feature_value_text("amount", 48000.0, "en") == "CNY 48,000"
    assert feature_value_text("amount", 480.5, "zh") == "480.50元"
    assert feature_value_text("share_atm_30d", 0.25, "en") == "25%"
    assert feature_value_text("fan_in_7d", 12.0, "en") == "12"


def test_peer_group_words():
    assert i18n.peer_group_words("individual|self_employed", "en") == "individual self-employed customers"
    assert i18n.peer_group_words("individual|self_employed", "zh") == "个体经营者类个人客户"
    assert i18n.peer_group_words("corporate|real_estate", "en") == "corporate real estate customers"


def test_unknown_language_is_refused_with_the_allowed_values():
    with pytest.raises(Exception, match=r"must be one of en, zh\. Got 'fr' instead"):
        i18n.check_lang("fr")
