"""Elkan & Noto's positive-unlabelled formulas recover the label frequency and the hidden positives."""

from __future__ import annotations

import numpy as np
import pytest

from amlscore.models.pu import calibrate_subsampled, label_frequency, unlabelled_positive_weights


def test_label_frequency_and_weights_recover_hidden_positives() -> None:
    rng = np.random.default_rng(0)
    n, c_true = 200_000, 0.3
    # P(positive | x) near 0 or 1 (Elkan & Noto's e1 assumes g = c on the positives), ~2 % positives
    p_pos = np.where(rng.normal(0, 1, n) > 2.05, 0.98, 0.0)
    y = rng.random(n) < p_pos
    labelled = y & (rng.random(n) < c_true)  # selected completely at random
    g = c_true * p_pos  # the ideal P(labelled | x)
    c = label_frequency(g[labelled])
    assert c == pytest.approx(c_true, rel=0.05)
    w = unlabelled_positive_weights(g[~labelled], c)
    # the expected number of positives among the unlabelled is found again
    assert w.sum() == pytest.approx((y & ~labelled).sum(), rel=0.05)
    assert ((w >= 0) & (w <= 1)).all()


def test_calibration_undoes_negative_subsampling() -> None:
    p_full = np.array([0.01, 0.2, 0.5])
    odds_sub = p_full / (1 - p_full) / 0.1  # a model that saw 10 % of the negatives
    p_sub = odds_sub / (1 + odds_sub)
    assert calibrate_subsampled(p_sub, 0.1) == pytest.approx(p_full)


def test_label_frequency_needs_positives() -> None:
    with pytest.raises(ValueError, match="at least one"):
        label_frequency(np.array([]))
