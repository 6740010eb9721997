"""Positive-unlabelled learning: how much of the unreported history is laundering nobody reported.

Reports are incomplete: many laundering transactions are never reported and sit among the
"presumed normal" rows a classifier is told are negatives. Elkan & Noto (2008, "Learning
classifiers from only positive and unlabeled data", KDD '08) show that under "selected completely
at random" labelling, a classifier ``g(x) = P(labelled | x)`` trained on labelled against
unlabelled rows is a constant multiple of ``P(positive | x)``: ``g(x) = c * P(positive | x)``, with
the label frequency ``c = P(labelled | positive)`` estimated as the mean of ``g`` over held-out
labelled positives (their estimator e1). An unlabelled row is then a positive with probability

    w(x) = (1 - c) / c * g(x) / (1 - g(x))

and the classifier is refitted with every unlabelled row counted as a positive with weight
``w(x)`` and as a negative with weight ``1 - w(x)`` (their section 4, "weighting unlabeled examples").

:func:`label_frequency` and :func:`unlabelled_positive_weights` implement the two formulas;
:mod:`amlscore.training.few_labels` supplies held-out (out-of-fold) ``g`` and does the refit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["calibrate_subsampled", "label_frequency", "unlabelled_positive_weights"]

_EPS = 1e-6


def calibrate_subsampled(probability: np.ndarray, negative_rate: float) -> np.ndarray:
    """Undo the down-sampling of negatives: a model fitted on ``negative_rate`` of them overstates
    the odds by ``1 / negative_rate``; returns the probabilities on the full population."""
    p = np.clip(np.asarray(probability, dtype=np.float64), _EPS, 1 - _EPS)
    odds = p / (1 - p) * float(negative_rate)
    return odds / (1 + odds)


def label_frequency(g_positives: np.ndarray, weights: np.ndarray | None = None) -> float:
    """``c = P(labelled | positive)``, the (weighted) mean of held-out ``g`` over labelled positives
    (Elkan & Noto's e1), kept in [1e-3, 1]."""
    g = np.asarray(g_positives, dtype=np.float64)
    if len(g) == 0:
        raise ValueError("label_frequency needs at least one held-out labelled positive")
    c = float(np.average(g, weights=weights))
    return min(1.0, max(1e-3, c))


def unlabelled_positive_weights(g_unlabelled: np.ndarray, c: float) -> np.ndarray:
    """``w(x) = (1 - c) / c * g / (1 - g)``, clipped to [0, 1]: the chance an unlabelled row is positive."""
    g = np.clip(np.asarray(g_unlabelled, dtype=np.float64), 0.0, 1 - _EPS)
    return np.clip((1 - c) / c * g / (1 - g), 0.0, 1.0)
