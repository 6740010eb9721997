"""Rendered reports: self-contained, escaped, in the right language; the draft narrative; the charts."""

from __future__ import annotations

import dataclasses
import re

import pandas as pd
import pytest

from amlscore.reports import charts
from amlscore.reports.case import gather_case
from amlscore.reports.case_types import PeerComparison, PeerMetric
from amlscore.reports.html import render_case
from amlscore.reports.narrative import draft_narrative, peer_sentence

# Anything that makes a browser fetch: src/href/url()/@import/srcset pointing anywhere but the page itself.
EXTERNAL = re.compile(r"""(?:\b(?:src|href|srcset|poster|data)\s*=\s*["']?\s*(?!#)[a-z]+:|url\(\s*["']?\s*(?!#|data:)[a-z]+:|@import)""",
                      re.I)
RESOURCE_URL = re.compile(r"""(?:src|href)\s*=\s*["']?https?://|url\(\s*["']?https?://|@import""", re.I)


@pytest.fixture(scope="module")
def cases(store, busy_customer, fake_model):
    t = store.transactions(busy_customer)
    end = store.local(t["timestamp"]).max().normalize()
    start = end - pd.Timedelta(days=29)
    return {lang: gather_case(store, customer_id=busy_customer, start=start, end=end, model=fake_model, lang=lang)
            for lang in ("en", "zh")}


@pytest.fixture(scope="module")
def pages(cases):
    return {lang: render_case(f) for lang, f in cases.items()}


@pytest.mark.parametrize("lang, html_lang", [("en", "en"), ("zh", "zh-CN")])
def test_page_declares_its_language_and_is_self_contained(pages, lang, html_lang):
    html = pages[lang]
    assert html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{html_lang}">' in html
    assert RESOURCE_URL.search(html) is None
    assert EXTERNAL.search(html) is None
    assert "<script" not in html.lower() and "<link" not in html.lower() and "<img" not in html.lower()
    assert '<meta charset="utf-8">' in html


def test_page_has_the_sections_in_reading_order(pages):
    html = pages["en"]
    order = ["summary", "profile", "rating", "score", "transactions", "peers", "links", "narrative", "versions"]
    positions = [html.index(f'<section id="{s}">') for s in order]
    assert positions == sorted(positions)


def test_page_embeds_the_charts_as_inline_svg(pages):
    for html in pages.values():
        assert html.count('class="chart chart-timeline"') == 1
        assert html.count('class="chart chart-waterfall"') == 1
        assert "<?xml" not in html and "<!DOCTYPE svg" not in html


def test_chinese_page_is_in_chinese_with_a_cjk_font_stack(pages, cases):
    html = pages["zh"]
    assert "客户洗钱风险等级评定" in html and "可疑交易报告描述（草稿）" in html
    assert "Noto Sans CJK SC" in html
    assert cases["zh"].rating.level_name in html
    assert "元" in html and "CNY " not in html.split("<footer>")[0].split("</style>")[1]


def test_amounts_are_formatted_as_cny(pages, cases):
    amount = cases["en"].score.txn.amount
    assert f"CNY {amount:,.2f}" in pages["en"]
    assert f"{amount:,.2f}元" in pages["zh"]


def test_values_are_escaped(cases):
    f = cases["en"]
    evil = dataclasses.replace(f, profile=dataclasses.replace(f.profile, home_region="<script>alert(1)</script>"))
    html = render_case(evil)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_narrative_states_the_facts_in_both_languages(cases):
    en, zh = draft_narrative(cases["en"]), draft_narrative(cases["zh"])
    f = cases["en"]
    for text in (en, zh):
        assert f.customer_id in text
        assert len(text.split("\n\n")) >= 3
    assert f.rating.level_name in en and cases["zh"].rating.level_name in zh
    assert en.rstrip().endswith("measures taken.]")
    assert zh.rstrip().endswith("已采取的措施。】")
    assert re.search(r"CNY \d{1,3}(,\d{3})*\.\d\d", en)


def test_peer_sentence_reads_as_the_issue_asks():
    peers = PeerComparison(group="individual|self_employed", group_words="individual self-employed customers", n_peers=57,
                           start=pd.Timestamp("2025-06-01").date(), end=pd.Timestamp("2025-06-30").date(), metrics=())
    m = PeerMetric("cash_dep_sum", "cash deposits", "amount", 412_000.0, 98_095.24, 412_000.0 / 98_095.24)
    assert peer_sentence(m, peers, "en") == ("Cash deposits over 30 days are 4.2 times the average of individual "
                                            "self-employed customers (CNY 412,000.00 against CNY 98,095.24).")
    zh = dataclasses.replace(peers, group_words="个体经营者类个人客户")
    mz = dataclasses.replace(m, label="现金存款")
    assert peer_sentence(mz, zh, "zh") == "30日内现金存款为个体经营者类个人客户平均值的4.2倍（本客户412,000.00元，同类平均98,095.24元）。"
    none = dataclasses.replace(m, peer_mean=0.0, ratio=float("inf"))
    assert "averaged none" in peer_sentence(none, peers, "en")


def test_narrative_edits_flow_into_the_page(cases):
    html = render_case(cases["en"], narrative="First paragraph.\n\nSecond <b>paragraph</b>.")
    block = html[html.index('id="narrative-text"'):]
    assert "<p>First paragraph.</p>" in block and "Second &lt;b&gt;paragraph&lt;/b&gt;." in block


def test_charts_are_svg_elements_with_a_label():
    svg = charts.waterfall(["amount = CNY 48,000", "现金交易 = 是"], [0.8, -0.3], -2.0, "zh", other=0.1, n_other=5)
    assert svg.startswith('<svg class="chart chart-waterfall" role="img" aria-label="')
    assert "现金交易 = 是" in svg and "其余 5 个特征" in svg
    frame = pd.DataFrame({"txn_id": ["a", "b"], "time": pd.to_datetime(["2025-01-01 10:00", "2025-01-03 12:00"]),
                          "amount": [100.0, 50_000.0], "direction": ["in", "out"], "channel": ["atm", "counter"],
                          "alert": [False, True]})
    tl = charts.timeline(frame, "en", focus_txn="b")
    assert tl.startswith('<svg class="chart chart-timeline"') and "Money in" in tl
    bars = charts.hbars(["a", "b"], [3, 1], "en", name="x")
    assert 'class="chart chart-x"' in bars
