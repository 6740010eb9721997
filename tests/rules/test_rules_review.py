"""Review dates, overdue ratings, new customers rated late; working days with holidays and make-up days."""

from __future__ import annotations

import pandas as pd
import pytest

from amlscore.models.rules import (
    add_working_days,
    load_rules_config,
    overdue_reviews,
    rate_customers,
    review_schedule,
    unrated_new_customers,
)
from amlscore.models.rules.review import CalendarGapWarning
from rules_builders import AS_OF, NO_REPORTS, customer, customers_frame


def day(s: str) -> pd.Timestamp:
    return pd.Timestamp(s)


@pytest.mark.parametrize("onboarded, deadline", [
    ("2025-03-03", "2025-03-17"),  # Monday: two plain weeks
    ("2025-03-07", "2025-03-21"),  # Friday
    ("2025-03-08", "2025-03-21"),  # onboarded on a Saturday: counting starts on Monday
    # Spring Festival 2025: holidays 28 Jan - 4 Feb; Sunday 26 Jan and Saturday 8 Feb are worked.
    ("2025-01-24", "2025-02-13"),  # 26 Jan, 27 Jan, 5, 6, 7, 8, 10, 11, 12, 13 Feb
    # National Day 2025: holidays 1-8 Oct; Sunday 28 Sep and Saturday 11 Oct are worked.
    ("2025-09-26", "2025-10-16"),  # 28, 29, 30 Sep, 9, 10, 11, 13, 14, 15, 16 Oct
    # Spring Festival 2026: holidays 15-23 Feb; Saturdays 14 and 28 Feb are worked.
    ("2026-02-09", "2026-02-28"),  # 10, 11, 12, 13, 14, 24, 25, 26, 27, 28 Feb
    # New Year 2026: holidays 1-3 Jan; Sunday 4 Jan is worked.
    ("2025-12-30", "2026-01-14"),  # 31 Dec, 4, 5, 6, 7, 8, 9, 12, 13, 14 Jan
    # Mid-Autumn 25-27 Sep and National Day 1-7 Oct 2026; Sunday 20 Sep is worked.
    ("2026-09-18", "2026-10-09"),  # 20, 21, 22, 23, 24, 28, 29, 30 Sep, 8, 9 Oct
])
def test_ten_working_days(cfg, onboarded, deadline):
    got = add_working_days(pd.Series([day(onboarded)]), 10, cfg).iat[0]
    assert got == day(deadline)


def test_a_year_without_holidays_is_flagged(cfg):
    with pytest.warns(CalendarGapWarning, match="no holidays for 2027"):
        got = add_working_days(pd.Series([day("2026-12-28")]), 10, cfg).iat[0]
    assert got == day("2027-01-11")  # Monday to Friday only: 1 Jan 2027 is not known to be a holiday
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        add_working_days(pd.Series([day("2026-03-02")]), 10, cfg)  # covered: no warning


def test_working_days_keep_missing_dates_missing(cfg):
    got = add_working_days(pd.Series([day("2025-03-03"), pd.NaT]), 1, cfg)
    assert got.iat[0] == day("2025-03-04") and pd.isna(got.iat[1])


def test_review_dates_by_level(cfg):
    ratings = pd.DataFrame({"customer_id": list("ABCDE"), "level": list(cfg.level_ids), "rated_at": [day("2025-08-31")] * 5})
    s = review_schedule(ratings, cfg)
    assert s["review_interval_months"].tolist() == [6, 12, 24, 36, 36]
    assert s["next_review"].tolist() == [day("2026-02-28"), day("2026-08-31"), day("2027-08-31"), day("2028-08-31"),
                                         day("2028-08-31")]
    assert s["is_first_rating"].all()


def test_first_ratings_are_reviewed_within_three_years():
    levels = [dict(id=i, name={"en": i, "zh": i}, band=b, review_months=m) for i, b, m in
              zip(["high", "medium_high", "medium", "medium_low", "low"], [[65, 100], [50, 65], [40, 50], [30, 40], [0, 30]],
                  [6, 12, 24, 48, 48])]
    cfg = load_rules_config(overrides={"levels": levels})
    ratings = pd.DataFrame({"customer_id": ["A", "B"], "level": ["low", "low"], "rated_at": [day("2025-01-15")] * 2})
    previous = pd.DataFrame({"customer_id": ["B"], "rated_at": [day("2021-01-15")]})
    s = review_schedule(ratings, cfg, previous=previous).set_index("customer_id")
    assert s.loc["A", "is_first_rating"] and s.loc["A", "review_interval_months"] == 36
    assert s.loc["A", "next_review"] == day("2028-01-15")
    assert not s.loc["B", "is_first_rating"] and s.loc["B", "review_interval_months"] == 48
    assert s.loc["B", "next_review"] == day("2029-01-15")


def test_rating_carries_its_review_date(cfg):
    res = rate_customers(customers_frame(customer(), customer(customer_id="C2", is_pep=True)), NO_REPORTS, None, cfg, AS_OF)
    r = res.ratings.set_index("customer_id")
    assert r.loc["C2", "next_review"] == day("2025-12-30")
    expected = review_schedule(res.ratings[["customer_id", "level", "rated_at"]], cfg)
    assert r["next_review"].tolist() == expected["next_review"].tolist()


def test_unknown_level_is_refused(cfg):
    from amlscore.contract.errors import AmlError

    with pytest.raises(AmlError, match="level ids"):
        review_schedule(pd.DataFrame({"customer_id": ["A"], "level": ["scary"], "rated_at": [day("2025-01-01")]}), cfg)


def test_overdue_reviews(cfg):
    history = pd.DataFrame({
        "customer_id": ["A", "B", "B", "C", "D"],
        "level": ["high", "high", "low", "medium", "high"],
        "rated_at": [day("2024-01-10"), day("2024-01-10"), day("2025-03-01"), day("2024-06-01"), day("2025-05-01")],
        "next_review": [day("2024-07-10"), day("2024-07-10"), day("2028-03-01"), day("2026-06-01"), day("2025-11-01")],
    })
    over = overdue_reviews(history, "2025-06-30", cfg)
    assert over["customer_id"].tolist() == ["A"]  # B was re-rated, C and D are not due yet
    assert over["days_overdue"].iat[0] == (day("2025-06-30") - day("2024-07-10")).days
    # without next_review the dates come from the levels
    computed = overdue_reviews(history.drop(columns="next_review"), "2025-06-30", cfg)
    assert computed["customer_id"].tolist() == ["A"]


def test_a_review_due_today_is_not_overdue(cfg):
    history = pd.DataFrame({"customer_id": ["A"], "rated_at": [day("2025-01-01")], "next_review": [day("2025-06-30")]})
    assert overdue_reviews(history, "2025-06-30", cfg).empty
    assert len(overdue_reviews(history, "2025-07-01", cfg)) == 1


def test_new_customers_not_rated_within_ten_working_days(cfg):
    customers = pd.DataFrame({
        "customer_id": ["ON_TIME", "LATE", "NEVER", "STILL_TIME", "OLD"],
        "onboarded_at": [day("2025-06-02"), day("2025-06-02"), day("2025-06-02"), day("2025-06-25"), day("2020-01-01")],
    })
    history = pd.DataFrame({"customer_id": ["ON_TIME", "LATE", "OLD"],
                            "rated_at": [day("2025-06-16"), day("2025-06-18"), day("2025-06-30")]})
    got = unrated_new_customers(customers, history, "2025-06-30", cfg).set_index("customer_id")
    # deadline of 2 June 2025 (Monday, Dragon Boat holiday): 3..6, 9..13, 16 June -> 16 June
    assert sorted(got.index) == ["LATE", "NEVER"]
    assert (got["deadline"] == day("2025-06-16")).all()
    assert got.loc["LATE", "status"] == "rated_late" and got.loc["LATE", "working_days_late"] == 2
    assert got.loc["NEVER", "status"] == "unrated" and got.loc["NEVER", "working_days_late"] == 10
    assert pd.isna(got.loc["NEVER", "first_rated_at"])


def test_unrated_with_no_history_and_a_since_date(cfg):
    customers = pd.DataFrame({"customer_id": ["A", "B"], "onboarded_at": [day("2024-01-02"), day("2025-06-02")]})
    got = unrated_new_customers(customers, None, "2025-06-30", cfg, since="2024-01-01")
    assert got["customer_id"].tolist() == ["A", "B"] and set(got["status"]) == {"unrated"}
