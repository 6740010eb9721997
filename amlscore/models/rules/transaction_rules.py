"""Transaction indicator rules and the rule suspicion score.

Each rule in ``transaction_rules.rules`` of the configuration is a list of conditions
``feature op threshold`` on the transaction's feature row (:data:`amlscore.features.catalogue.FEATURE_NAMES`);
it *fires* when all of them hold. A NaN feature value never satisfies a condition.

**Combination (noisy-OR).** With ``w_i`` in (0, 1] the weights of the fired rules::

    rule_score = 100 * (1 - prod_i (1 - w_i))

The higher, the more suspicious. It is 0 when no rule fires, ``100 * w`` when one rule fires,
grows with every further rule but with diminishing steps, and never exceeds 100 (reached only by
a rule of weight 1). Unlike a capped sum it keeps ordering cases that fire many rules.

Two paths give the same numbers (a test pins it):

* :func:`evaluate_rules` over a feature frame (vectorised; training, batch rating);
* :func:`score_transaction_rules` on one row given as a mapping or a 1-D array in
  ``FEATURE_NAMES`` order (the online service; a few microseconds, no DataFrame built).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.models.rules.config import RulesConfig, load_rules_config

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq}
_FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


class Condition(NamedTuple):
    """A rule condition as evaluated: ``value op threshold``."""

    feature: str
    op: str
    threshold: float
    value: float


class FiredRule(NamedTuple):
    """A rule that fired, with its weight and every condition's value and threshold."""

    rule_id: str
    weight: float
    conditions: tuple[Condition, ...]


class RuleScore(NamedTuple):
    """The rule score of one transaction: 0..100, the higher the more suspicious."""

    score: float
    fired: tuple[FiredRule, ...]
    config_hash: str

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(f.rule_id for f in self.fired)


class _Compiled:
    """The enabled rules flattened for fast evaluation (built once per configuration)."""

    __slots__ = ("rules", "features", "config_hash", "rule_ids", "weights")

    def __init__(self, config: RulesConfig):
        rules = []
        for rule_id, rule in config.transaction_rules.rules.items():
            if not rule.enabled:
                continue
            conds = tuple((c.feature, _OPS[c.op], c.op, float(c.threshold), _FEATURE_INDEX[c.feature]) for c in rule.when)
            rules.append((rule_id, float(rule.weight), 1.0 - float(rule.weight), conds))
        self.rules = tuple(rules)
        self.rule_ids = tuple(r[0] for r in rules)
        self.weights = np.array([r[1] for r in rules], dtype=float)
        self.features = tuple(sorted({c[0] for r in rules for c in r[3]}, key=_FEATURE_INDEX.__getitem__))
        self.config_hash = config.hash


def _compiled(config: RulesConfig) -> _Compiled:
    return config.cached("compiled_rules", lambda: _Compiled(config))


def rule_features(config: RulesConfig | None = None) -> tuple[str, ...]:
    """The feature columns the enabled rules read, in catalogue order."""
    return _compiled(config or load_rules_config()).features


def _missing_features_error(missing: list[str], where: str) -> AmlError:
    return AmlError(f"{where} is missing feature(s) the transaction rules read: {', '.join(missing)}")


def score_transaction_rules(feature_row: Mapping[str, Any] | np.ndarray | pd.Series,
                            config: RulesConfig | None = None) -> RuleScore:
    """Score one transaction's feature row.

    Parameters
    ----------
    feature_row : mapping, pandas Series or 1-D array
        Feature name -> value, or values in :data:`amlscore.features.catalogue.FEATURE_NAMES` order.
        ``None`` or NaN never satisfies a condition.
    config : RulesConfig, optional
        Defaults to the packaged configuration.

    Returns
    -------
    RuleScore
        ``(score, fired, config_hash)``; ``score`` in [0, 100], the higher the more suspicious;
        ``fired`` lists each fired rule with every condition's value and threshold.
    """
    compiled = _compiled(config if config is not None else load_rules_config())
    if isinstance(feature_row, np.ndarray):
        if feature_row.ndim != 1 or feature_row.shape[0] != len(FEATURE_NAMES):
            raise AmlError(f"The 'feature_row' parameter of score_transaction_rules must be a 1-D array of "
                           f"{len(FEATURE_NAMES)} values in FEATURE_NAMES order. Got shape {feature_row.shape} instead.")
        row: Any = feature_row.tolist()
        by_index = True
    elif isinstance(feature_row, pd.Series):
        row, by_index = feature_row.to_dict(), False
    else:
        row, by_index = feature_row, False
    keep = 1.0
    fired_ids = []
    try:
        for rule in compiled.rules:
            for feat, fn, _op, thr, idx in rule[3]:
                v = row[idx] if by_index else row[feat]
                if v is None or v != v or not fn(v, thr):
                    break
            else:
                keep *= rule[2]
                fired_ids.append(rule)
    except KeyError:
        missing = [f for f in compiled.features if f not in row]
        raise _missing_features_error(missing, "the feature row") from None
    fired = tuple(
        FiredRule(rid, w, tuple(Condition(feat, op, thr, float(row[idx] if by_index else row[feat])) for feat, _fn, op, thr, idx in conds))
        for rid, w, _keep, conds in fired_ids
    )
    return RuleScore(100.0 * (1.0 - keep), fired, compiled.config_hash)


def evaluate_rules(features: pd.DataFrame, config: RulesConfig | None = None) -> pd.DataFrame:
    """Evaluate every rule on every row of a feature frame.

    Parameters
    ----------
    features : DataFrame
        One row per transaction with (at least) the columns the rules read; ``txn_id``,
        ``customer_id`` and ``timestamp`` are carried over when present.
    config : RulesConfig, optional

    Returns
    -------
    DataFrame
        Same index as ``features``: the carried identifiers, ``rule_score`` (0..100, the higher
        the more suspicious), ``n_rules_fired``, ``rules_fired`` (fired rule ids joined by ``|``,
        empty when none), one boolean ``fired_<rule_id>`` column per rule and ``config_hash``.
    """
    config = config if config is not None else load_rules_config()
    compiled = _compiled(config)
    score, fired_cols, pattern = _evaluate_frame(features, compiled)
    n = len(features)
    out = pd.DataFrame(index=features.index)
    for key in ("txn_id", "customer_id", "timestamp"):
        if key in features.columns:
            out[key] = features[key].array  # keeps the dtype (tz-aware timestamps stay fast)
    out["rule_score"] = score
    out["n_rules_fired"] = np.bitwise_count(pattern.astype(np.uint64)).astype(np.int16) if n else np.zeros(0, np.int16)
    uniq, inverse = np.unique(pattern, return_inverse=True)
    labels = ["|".join(rid for b, rid in enumerate(compiled.rule_ids) if (int(p) >> b) & 1) for p in uniq]
    out["rules_fired"] = pd.Categorical.from_codes(inverse.reshape(-1).astype(np.int64), categories=labels) if n else \
        pd.Categorical([], categories=[""])
    for name, mask in fired_cols.items():
        out[name] = mask
    out["config_hash"] = compiled.config_hash
    return out


def rule_scores(features: pd.DataFrame, config: RulesConfig | None = None) -> np.ndarray:
    """Just the rule score of every row of a feature frame (what :func:`evaluate_rules` computes, without
    the per-rule columns)."""
    return _evaluate_frame(features, _compiled(config if config is not None else load_rules_config()))[0]


def _evaluate_frame(features: pd.DataFrame, compiled: _Compiled) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    missing = [f for f in compiled.features if f not in features.columns]
    if missing:
        raise _missing_features_error(missing, "the feature frame")
    n = len(features)
    cols = {f: features[f].to_numpy(dtype=float, na_value=np.nan) for f in compiled.features}
    keep = np.ones(n)
    fired_cols: dict[str, np.ndarray] = {}
    pattern = np.zeros(n, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        for bit, (rule_id, _w, k, conds) in enumerate(compiled.rules):
            mask = np.ones(n, dtype=bool)
            for feat, fn, _op, thr, _idx in conds:
                mask &= fn(cols[feat], thr)  # NaN compares False
            fired_cols[f"fired_{rule_id}"] = mask
            keep = np.where(mask, keep * k, keep)
            pattern |= mask.astype(np.int64) << bit
    return 100.0 * (1.0 - keep), fired_cols, pattern


def combine(weights: list[float] | np.ndarray) -> float:
    """The noisy-OR combination of fired rule weights: ``100 * (1 - prod(1 - w))``."""
    keep = 1.0
    for w in weights:
        keep *= 1.0 - float(w)
    return 100.0 * (1.0 - keep)


__all__ = [
    "Condition",
    "FiredRule",
    "RuleScore",
    "combine",
    "evaluate_rules",
    "rule_features",
    "rule_scores",
    "score_transaction_rules",
]

