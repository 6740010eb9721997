"""The shared decision schema of the applications: the model set they consume, and a decision's JSON form.

:class:`ModelSetLike` is what serving and the reports call on a model set: the real
:class:`amlscore.models.model_set.ModelSet`, the reports' lazily opened one and the tests' one
stand-in all have every member, so no consumer checks for a method or catches a missing keyword.

The dataclasses of an explanation and the one JSON cleaner come from
:mod:`amlscore.models.decision` (the model set produces them); :class:`RecordedDecision` is the JSON
form the service records in the audit log and answers from, and the reports read back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

from amlscore.models.decision import (
    COMPONENT_NAMES,
    AnomalyAttribution,
    Explanation,
    FeatureContribution,
    RuleReason,
    ScoreBatch,
    finite_or_none,
    fired_rules_json,
    json_safe,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from amlscore.models.rules import RulesConfig

__all__ = [
    "COMPONENT_NAMES",
    "AnomalyAttribution",
    "Components",
    "Explanation",
    "FeatureContribution",
    "ModelSetLike",
    "RecordedDecision",
    "RuleReason",
    "ScoreBatch",
    "components_of",
    "finite_or_none",
    "fired_rules_json",
    "json_safe",
]


@runtime_checkable
class ModelSetLike(Protocol):
    """What serving and the reports need of a model set (:class:`amlscore.models.model_set.ModelSet`)."""

    feature_names: tuple[str, ...]
    metadata: dict[str, Any]
    rules_config: RulesConfig

    @property
    def alert_threshold(self) -> float: ...

    def check_features(self, names: Iterable[str], *, require_order: bool = True) -> None: ...

    def score_vector(self, x: np.ndarray) -> ScoreBatch: ...

    def score_frame(self, features: pd.DataFrame, *, reasons: str = "alerts", top_k_reasons: int = 3,
                    chunk_rows: int = 200_000) -> pd.DataFrame: ...

    def explain_vector(self, x: np.ndarray, top_k: int = 8, lang: str = "en") -> Explanation: ...

    def score_and_explain(self, x: np.ndarray, top_k: int = 8, lang: str = "en") -> tuple[ScoreBatch, Explanation]: ...


class Components(TypedDict):
    """The three inputs of the fusion, as recorded (None where the model gave no finite number)."""

    rule_score: float | None
    lgbm_probability: float | None
    anomaly_score: float | None


def components_of(scores: ScoreBatch, i: int) -> Components:
    """Row ``i``'s components of a :class:`ScoreBatch`, as plain finite floats or None."""
    return {"rule_score": finite_or_none(scores.rule_score[i]),
            "lgbm_probability": finite_or_none(scores.lgbm_probability[i]),
            "anomaly_score": finite_or_none(scores.anomaly_score[i])}


class RecordedDecision(TypedDict, total=False):
    """A decision as the audit log keeps it (``decision_json``) and the views and reports read it.

    ``rules_fired`` is :func:`fired_rules_json`'s form; ``explanation`` is
    :meth:`Explanation.to_dict` (or None when none was computed at decision time).
    """

    request_id: str
    txn_id: str
    customer_id: str
    suspicion_score: float | None
    alert: bool
    decided_at: str
    components: Components
    alert_threshold: float | None
    customer_risk: dict[str, Any] | None
    peer_group: str
    rules_fired: list[dict[str, Any]]
    rules_text: dict[str, list[str]]
    peer_comparisons: dict[str, list[str]]
    explanation: dict[str, Any] | None
    explanation_lang: str | None
    versions: dict[str, Any]
    caller: dict[str, str]
