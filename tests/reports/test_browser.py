"""Reports in a real browser: headless Chromium renders them with no console error, the charts in the DOM.

Needs Debian's ``chromium`` (``apt-get install -y chromium fonts-noto-cjk``); skipped only when it
is not installed. The browser runs with the network switched off (every host resolves to nothing),
so a report that tried to fetch anything would log a failed load here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed: "
                       "apt-get update && apt-get install -y chromium fonts-noto-cjk"),
]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0"]


def chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run headless Chromium on a local page; returns the finished process (stdout: the DOM when asked)."""
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def console_problems(stderr: str) -> list[str]:
    """Console messages, uncaught errors and failed loads the page caused."""
    return [line for line in stderr.splitlines()
            if re.search(r":CONSOLE[:(]|Uncaught|Failed to load resource|net::ERR_", line)]


@pytest.fixture(scope="module")
def pages(tmp_path_factory, store, busy_customer, fake_model, audit):
    from amlscore.reports.case import gather_case
    from amlscore.reports.html import render_case, render_portfolio
    from amlscore.reports.portfolio import gather_portfolio

    folder = tmp_path_factory.mktemp("pages")
    end = store.local(store.transactions(busy_customer)["timestamp"]).max().normalize()
    out = {}
    f = gather_case(store, customer_id=busy_customer, start=end - pd.Timedelta(days=29), end=end, model=fake_model, lang="zh")
    out["case_zh"] = folder / "case_zh.html"
    out["case_zh"].write_text(render_case(f), encoding="utf-8")
    rec = next(audit.iter_records())
    out["alert_en"] = folder / "alert_en.html"
    out["alert_en"].write_text(render_case(gather_case(store, record=rec, model=fake_model, lang="en")), encoding="utf-8")
    out["portfolio"] = folder / "portfolio.html"
    out["portfolio"].write_text(render_portfolio(gather_portfolio(store, lang="en")), encoding="utf-8")
    return out


@pytest.mark.parametrize("name, charts", [
    ("alert_en", ("chart-waterfall", "chart-timeline")),
    ("case_zh", ("chart-waterfall", "chart-timeline")),
    ("portfolio", ("chart-alerts-per-day", "chart-alerts-per-channel", "chart-alerts-per-typology", "chart-risk-levels")),
])
def test_chromium_renders_the_report_with_its_charts_and_no_error(pages, tmp_path, name, charts):
    run = chromium(pages[name], tmp_path / "profile", "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    assert "</html>" in dom
    for chart in charts:
        m = re.search(rf'<svg class="chart {chart}"[^>]*>(.*?)</svg>', dom, re.S)
        assert m is not None, f"{chart} not in the rendered DOM"
        assert "<path" in m.group(1) and "<text" in m.group(1)  # drawn, with its labels
    assert console_problems(run.stderr) == []


def test_chromium_screenshot_is_a_full_page(pages, tmp_path):
    from PIL import Image

    png = tmp_path / "shot.png"
    run = chromium(pages["alert_en"], tmp_path / "profile", f"--screenshot={png}", "--window-size=1280,2000")
    assert run.returncode == 0, run.stderr[-2000:]
    assert console_problems(run.stderr) == []
    image = Image.open(png).convert("L")
    assert image.size == (1280, 2000)
    lo, hi = image.getextrema()
    assert hi - lo > 150  # not a blank page: dark text and header on a light background
    colours = image.resize((64, 100)).getcolors(maxcolors=64 * 100)
    assert colours is not None and len(colours) > 20


def test_the_console_check_catches_a_broken_page(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><img src="https://cdn.example.com/x.png">'
                    "<script>undefinedFunction()</script></body></html>", encoding="utf-8")
    run = chromium(page, tmp_path / "profile", "--dump-dom")
    problems = console_problems(run.stderr)
    assert any("undefinedFunction" in p for p in problems)
