"""Random but plausible feature rows for the model tests (imported by conftest and the tests)."""

from __future__ import annotations

import numpy as np

from amlscore.features.catalogue import FEATURE_NAMES

IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}


def random_features(n: int, seed: int) -> np.ndarray:
    """Plausible feature rows: non-negative counts/amounts, some NaN, a few rule triggers."""
    rng = np.random.default_rng(seed)
    X = np.abs(rng.normal(size=(n, len(FEATURE_NAMES)))) * rng.choice([1.0, 10.0, 1000.0], size=len(FEATURE_NAMES))
    X[rng.random(X.shape) < 0.02] = np.nan
    for name in ("is_cash", "is_in", "is_corporate", "is_high_risk_country", "is_ip_abroad", "is_corp_indiv"):
        X[:, IDX[name]] = (rng.random(n) < 0.1).astype(float)
    X[:, IDX["near_threshold_cash_cnt_7d"]] = rng.poisson(0.3, n)
    return X
