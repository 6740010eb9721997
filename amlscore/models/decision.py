"""The decision schema: what the model set says about one transaction, and its one JSON form.

The model set (:mod:`amlscore.models.model_set`) returns these dataclasses; the service records
their JSON form in the audit log (:mod:`amlscore.core.audit`), answers with it
(:mod:`amlscore.serving.views`), and the reports read it back (:mod:`amlscore.reports.case`). The
names are the same at every step: ``components``, ``lgbm_contributions`` (TreeSHAP on LightGBM),
``anomaly_attribution`` (shares of the isolation), ``rules_fired``. The JSON form is
:meth:`Explanation.to_dict`; every value on its way to JSON is cleaned by :func:`json_safe` (the
one cleaner: JSON has no NaN, no numpy scalar).

They live with the model set, the lowest layer that produces them; :mod:`amlscore.core.decision`
re-exports them with the typed JSON form of a recorded decision.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

import numpy as np

COMPONENT_NAMES = ("rule_score", "lgbm_probability", "anomaly_score")


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None and numpy scalars made plain (JSON has no NaN).

    Dict keys become strings, tuples lists; a date or time becomes its ISO text; anything else
    JSON cannot hold becomes its ``str``.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item):
        try:
            return json_safe(item())
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)  # numpy array
    if callable(tolist):
        return json_safe(tolist())
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    return str(value)


@dataclass
class ScoreBatch:
    """Scores of a batch of feature rows (numpy arrays, one entry per row).

    ``suspicion_score`` 0..100, ``rule_score`` 0..100, ``lgbm_probability`` 0..1,
    ``anomaly_score`` 0..1 (each: the higher, the more suspicious); ``alert`` bool;
    ``rules_fired`` the ids of the fired rules per row; ``rules`` the rule results themselves
    (:class:`amlscore.models.rules.RuleScore`, with each fired rule's conditions), so a caller need not
    evaluate the rules again.
    """

    suspicion_score: np.ndarray
    rule_score: np.ndarray
    lgbm_probability: np.ndarray
    anomaly_score: np.ndarray
    alert: np.ndarray
    rules_fired: list[tuple[str, ...]]
    alert_threshold: float
    rules: list = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.suspicion_score)

    def to_dict(self) -> dict:
        """JSON-serialisable: lists of floats/bools."""
        return {
            "suspicion_score": [float(v) for v in self.suspicion_score],
            "rule_score": [float(v) for v in self.rule_score],
            "lgbm_probability": [float(v) for v in self.lgbm_probability],
            "anomaly_score": [float(v) for v in self.anomaly_score],
            "alert": [bool(v) for v in self.alert],
            "rules_fired": [list(r) for r in self.rules_fired],
            "alert_threshold": float(self.alert_threshold),
        }


def finite_or_none(v: Any) -> float | None:
    """A model output as a plain float; NaN or infinity (JSON has neither) as None."""
    f = float(v)
    return f if math.isfinite(f) else None


@dataclass
class FeatureContribution:
    """One feature's TreeSHAP contribution to the LightGBM log-odds."""

    feature: str
    label: str
    value: float | None
    contribution: float
    direction: str  # "raises" or "lowers" the suspicion


@dataclass
class AnomalyAttribution:
    """One feature's share of the isolation (see :mod:`amlscore.models.anomaly`)."""

    feature: str
    label: str
    value: float | None
    share: float


@dataclass
class RuleReason:
    """A fired rule with each condition's value and threshold."""

    rule_id: str
    name: str
    weight: float
    conditions: list[dict]
    text: str


@dataclass
class Explanation:
    """Why one transaction got its score.

    ``components`` are the three inputs of the fusion; ``fusion_terms`` their additive terms in the
    fused log-odds (``fusion_intercept + sum(fusion_terms) = logit(suspicion_score / 100)``);
    ``lgbm_contributions`` the top TreeSHAP contributions with ``lgbm_expected_value`` (the
    contributions of all features plus it give the LightGBM log-odds); ``anomaly_attribution``
    the top shares of the anomaly; ``rules_fired`` every fired rule.
    """

    suspicion_score: float
    alert: bool
    alert_threshold: float
    components: dict[str, float]
    fusion_intercept: float
    fusion_terms: dict[str, float]
    lgbm_expected_value: float
    lgbm_contributions: list[FeatureContribution]
    anomaly_attribution: list[AnomalyAttribution]
    rules_fired: list[RuleReason]
    rules_summary: list[str]
    lang: str
    model: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (NaN feature values become None): what the API answers and the audit log keeps.

        The fields are read directly (one level of nested dataclasses, shallow) instead of
        ``dataclasses.asdict``, whose deep copy costs about 2 ms per explanation; :func:`json_safe`
        copies and cleans the result only when it is not plain JSON already.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (list, tuple)):
                v = [dict(vars(item)) if dataclasses.is_dataclass(item) else item for item in v]
            out[f.name] = v
        try:  # the common case: already plain JSON (C encoder check, ~20x cheaper than walking it in Python)
            json.dumps(out, allow_nan=False)
            return out
        except (TypeError, ValueError):
            return json_safe(out)


class _Condition(Protocol):
    feature: str
    op: str
    threshold: float
    value: float


class _Fired(Protocol):
    rule_id: str
    weight: float
    conditions: Iterable[_Condition]


def fired_rules_json(fired: Iterable[_Fired]) -> list[dict[str, Any]]:
    """The recorded form of fired transaction rules: ``rule_id``, ``weight`` and each condition's
    ``feature``, ``op``, ``threshold`` and ``value`` (what the audit log keeps and the reports read)."""
    return [{
        "rule_id": f.rule_id,
        "weight": f.weight,
        "conditions": [{"feature": c.feature, "op": c.op, "threshold": c.threshold, "value": c.value} for c in f.conditions],
    } for f in fired]
