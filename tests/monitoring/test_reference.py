"""The training reference: bins, PSI against it, its place in the model set, and the thresholds file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from amlscore.contract.errors import AmlError
from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.models.model_set import ModelSet
from amlscore.models.reference import REFERENCE_FILE, ColumnReference, bin_shares, build_reference, decile_edges
from amlscore.monitoring.config import load_thresholds
from amlscore.monitoring.drift import SCORE_COLUMNS, compute_drift, psi, require_reference


def test_bins_of_a_flag_with_missing_values_are_counted_by_hand():
    values = np.array([0.0] * 70 + [1.0] * 20 + [np.nan] * 10)
    edges = decile_edges(values)
    # deciles of 70 zeros and 20 ones: 0.1..0.7 are 0, 0.8 and 0.9 are 1
    assert edges.tolist() == [0.0, 1.0]
    shares, missing = bin_shares(values, edges)
    assert missing == pytest.approx(0.10)
    assert shares.tolist() == pytest.approx([70 / 90, 20 / 90, 0.0])  # (-inf, 0], (0, 1], (1, inf)


def test_psi_matches_the_formula():
    expected, actual = np.array([0.5, 0.5]), np.array([0.8, 0.2])
    by_hand = 0.3 * math.log(0.8 / 0.5) + (-0.3) * math.log(0.2 / 0.5)
    assert psi(expected, actual) == pytest.approx(by_hand)
    assert psi(expected, expected) == 0.0
    # an empty bin is floored, not infinite
    assert math.isfinite(psi(np.array([1.0, 0.0]), np.array([0.5, 0.5])))


def _independent_psi(reference_values: np.ndarray, current: np.ndarray) -> float:
    """PSI written out again with np.histogram on (-inf, deciles..., inf], missing as its own bin."""
    ref = reference_values[~np.isnan(reference_values)]
    edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
    bounds = np.concatenate([[-np.inf], edges, [np.inf]])

    def shares(v: np.ndarray) -> np.ndarray:
        present = v[~np.isnan(v)]
        # right-closed bins: (-inf, e0], (e0, e1], ... ; np.histogram is left-closed, so negate
        counts = np.histogram(-present, bins=-bounds[::-1])[0][::-1]
        return np.append(counts / len(v), np.isnan(v).sum() / len(v))

    e, a = np.maximum(shares(reference_values), 1e-4), np.maximum(shares(current), 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


@pytest.mark.parametrize("shift, level", [(0.0, "ok"), (0.35, "warning"), (1.0, "action")])
def test_psi_against_a_reference(shift, level):
    rng = np.random.default_rng(7)
    ref_values = rng.normal(0, 1, 40_000)
    ref_values[rng.random(40_000) < 0.05] = np.nan
    current = rng.normal(shift, 1, 30_000)
    current[rng.random(30_000) < 0.05] = np.nan
    columns_ref = {"x": ref_values, **{s: rng.random(40_000) for s in SCORE_COLUMNS}}
    alert_ref = rng.random(40_000) < 0.01
    reference = build_reference(columns_ref, alert_ref, {"channel": np.array(["atm"] * 40_000)}, period="p",
                                alert_threshold=50.0)
    columns = {"x": current, **{s: rng.random(30_000) for s in SCORE_COLUMNS}}
    drift = compute_drift(reference, columns, rng.random(30_000) < 0.01, {"channel": np.array(["atm"] * 30_000)},
                          np.full(30_000, np.datetime64("2025-01-01", "D")), load_thresholds())
    x = drift.column("x")
    assert x.psi == pytest.approx(_independent_psi(ref_values, current), rel=1e-9)
    assert x.psi_level == level
    assert x.missing_level == "ok"
    assert drift.alert_rates[0].level == "ok"


def test_training_writes_the_reference_into_the_model_set(model_set_dir):
    manifest = json.loads((model_set_dir / "model_set.json").read_text())
    assert REFERENCE_FILE in manifest["files"]  # hashed like every other file
    ms = ModelSet.load(model_set_dir)
    ref = require_reference(ms)
    assert set(ref.columns) == set(FEATURE_NAMES) | set(SCORE_COLUMNS)
    assert ref.alert_threshold == ms.alert_threshold
    assert 0 < ref.alert_rate < 0.1
    assert set(ref.alert_rate_by) == {"channel", "customer_type"}
    assert ref.period.startswith(ms.metadata["split"]["valid_start"])
    assert all(isinstance(c, ColumnReference) and abs(sum(c.shares) - 1) < 1e-9 for c in ref.columns.values()
               if c.missing_share < 1)


def test_a_model_set_without_reference_loads_and_monitoring_says_what_to_do(model_set_dir, tmp_path):
    ms = ModelSet.load(model_set_dir)
    ms.reference = None
    old = tmp_path / "old_model_set"
    ms.save(old)
    assert not (old / REFERENCE_FILE).exists()
    loaded = ModelSet.load(old)
    assert loaded.reference is None
    with pytest.raises(AmlError, match="carries no training reference.*amlscore train"):
        require_reference(loaded)


def test_an_altered_reference_is_refused(model_set_dir, tmp_path):
    import shutil

    from amlscore.models.model_set import ModelSetError

    copy = tmp_path / "ms"
    shutil.copytree(model_set_dir, copy)
    raw = json.loads((copy / REFERENCE_FILE).read_text())
    raw["alert_rate"] = 0.5
    (copy / REFERENCE_FILE).write_text(json.dumps(raw))
    with pytest.raises(ModelSetError, match="reference.json does not match"):
        ModelSet.load(copy)


@pytest.mark.parametrize("text, message", [
    ("psi: {warning: 0.3, action: 0.2}\nmissing_share_change: {warning: 0.05, action: 0.2}\n"
     "alert_rate_ratio: {warning: 1.5, action: 2}\nmin_rows: 10\n", "psi: .*action .* must be above warning"),
    ("psi: {warning: 0.1, action: 0.2}\nmissing_share_change: {warning: 0.05, action: 0.2}\n"
     "alert_rate_ratio: {warning: 1.5, action: 2}\nmin_rows: 10\nextra: 1\n", "extra: Extra inputs"),
    ("psi: {warning: 0.1, action: 0.2}\nalert_rate_ratio: {warning: 1.5, action: 2}\nmin_rows: 10\n",
     "missing_share_change: Field required"),
    ("psi: {warning: 0.1, action: 0.2}\nmissing_share_change: {warning: 0.05, action: 0.2}\n"
     "alert_rate_ratio: {warning: 0.5, action: 2}\nmin_rows: 10\n", "alert_rate_ratio.warning must be above 1"),
])
def test_invalid_thresholds_are_named(tmp_path, text, message):
    path = tmp_path / "drift.yaml"
    path.write_text(text)
    with pytest.raises(AmlError, match=f"{path}.*{message}"):
        load_thresholds(path)


def test_a_segment_alert_rate_is_judged_only_with_enough_alerts():
    rng = np.random.default_rng(3)
    n = 20_000
    ref_cols = {"x": rng.normal(0, 1, n), **{s: rng.random(n) for s in SCORE_COLUMNS}}
    channel = np.where(np.arange(n) < 10_000, "atm", "pos")
    alert = np.zeros(n, dtype=bool)
    alert[:100] = True  # atm 1 %, pos 0 %
    alert[10_000:10_005] = True  # pos 0.05 %
    reference = build_reference(ref_cols, alert, {"channel": channel}, period="p", alert_threshold=50.0)
    m = 2_400
    cur_channel = np.where(np.arange(m) < 1_200, "atm", "pos")
    cur_alert = np.zeros(m, dtype=bool)
    cur_alert[:48] = True  # atm: 4 % (48 alerts, 12 expected): action
    # pos: 0 alerts where 0.6 were expected: chance, not judged
    drift = compute_drift(reference, {"x": rng.normal(0, 1, m), **{s: rng.random(m) for s in SCORE_COLUMNS}},
                          cur_alert, {"channel": cur_channel}, np.full(m, np.datetime64("2025-01-01", "D")),
                          load_thresholds())
    rates = {(r.segment, r.value): r for r in drift.alert_rates}
    assert rates[("channel", "atm")].level == "action" and rates[("channel", "atm")].ratio == pytest.approx(4.0)
    assert rates[("channel", "pos")].level == "ok" and rates[("channel", "pos")].alerts == 0
