"""Promotion: move the ``champion`` alias to the ``challenger`` only if it is better.

Rule
----
1. No champion yet: the challenger becomes champion (the first model).
2. Otherwise both versions score **the same held-out period**: the challenger's test period
   (version tags ``test_start``/``test_end``) of the challenger's data folder (tag ``data_source``,
   or ``--data``), each with its own feature parameters, against the same labels (ground truth when
   the folder has it, else every report in the folder).
3. The challenger is promoted only if its fused PR-AUC is higher **and** its recall at a 1 % alert
   rate is not lower; ``force=True`` promotes regardless (and says so).
4. A champion whose own training or validation period reaches into the held-out period has seen
   those labels; the comparison then favours the champion, and a warning says so.

The decision is written on the challenger's version as tags (``promotion_decision``,
``promotion_pr_auc_champion`` ...); promotion sets the alias and tags ``promoted_at`` and
``previous_champion``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from amlscore.contract.errors import AmlError
from amlscore.training.evaluate import EvaluationReport
from amlscore.training.scoring import evaluate_model_set, load_folder
from amlscore.training.tracking import CHALLENGER, CHAMPION, load_model_set, resolve_version, set_alias, tag_version

__all__ = ["COMPARED_METRICS", "PromotionResult", "compare", "promote"]

ProgressFn = Callable[[str, float], None]
COMPARED_METRICS = ("pr_auc", "roc_auc", "recall_at_0_5pct", "recall_at_1pct", "precision_at_k", "f1_at_threshold",
                    "alert_rate_at_threshold")


@dataclass
class PromotionResult:
    """What :func:`promote` decided, and the side-by-side comparison behind it."""

    promoted: bool
    forced: bool
    reason: str
    challenger_version: str
    champion_version: str | None
    period: str = ""
    label_source: str = ""
    table: list[tuple[str, float | None, float | None]] = field(default_factory=list)
    typology_table: list[tuple[str, float | None, float | None]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"promoted": self.promoted, "forced": self.forced, "reason": self.reason,
                "challenger_version": self.challenger_version, "champion_version": self.champion_version,
                "period": self.period, "label_source": self.label_source,
                "metrics": [{"metric": m, "champion": a, "challenger": b} for m, a, b in self.table],
                "per_typology_recall_at_1pct": [{"typology": t, "champion": a, "challenger": b}
                                               for t, a, b in self.typology_table],
                "warnings": self.warnings}


def compare(champion: EvaluationReport, challenger: EvaluationReport) -> tuple[bool, str]:
    """Whether the challenger beats the champion: higher fused PR-AUC and recall@1 % not lower."""
    a, b = champion.overall, challenger.overall
    better_pr = b["pr_auc"] > a["pr_auc"]
    recall_ok = b["recall_at_1pct"] >= a["recall_at_1pct"]
    if better_pr and recall_ok:
        return True, (f"challenger PR-AUC {b['pr_auc']:.4f} > champion {a['pr_auc']:.4f} and recall@1% "
                      f"{b['recall_at_1pct']:.4f} >= {a['recall_at_1pct']:.4f}")
    why = []
    if not better_pr:
        why.append(f"PR-AUC {b['pr_auc']:.4f} is not above the champion's {a['pr_auc']:.4f}")
    if not recall_ok:
        why.append(f"recall@1% {b['recall_at_1pct']:.4f} is below the champion's {a['recall_at_1pct']:.4f}")
    return False, "challenger not better: " + "; ".join(why)


def _num(v: float) -> float | None:
    return None if v is None or v != v else float(v)


def promote(*, force: bool = False, data: str | Path | None = None, progress: ProgressFn | None = None) -> PromotionResult:
    """Compare challenger and champion on the challenger's held-out period and move ``champion`` if better.

    Raises
    ------
    AmlError
        When there is no challenger, or the held-out data folder is unknown or missing.
    """
    challenger = resolve_version(alias=CHALLENGER)
    try:
        champion = resolve_version(alias=CHAMPION)
    except AmlError:
        champion = None
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    if champion is None:
        set_alias(CHAMPION, challenger.version)
        tag_version(challenger.version, {"promoted_at": now, "promotion_decision": "first model"})
        return PromotionResult(True, False, "no champion yet: the challenger becomes the first champion",
                               str(challenger.version), None)
    if str(champion.version) == str(challenger.version):
        return PromotionResult(False, force, "the challenger is already the champion", str(challenger.version),
                               str(champion.version))
    tags = dict(challenger.tags or {})
    folder = data or tags.get("data_source")
    if not folder:
        raise AmlError(f"Version {challenger.version} records no data folder; pass --data DIR to compare on.")
    if not Path(folder).is_dir():
        raise AmlError(f"The challenger's data folder {folder} does not exist; pass --data DIR to compare on.")
    start, end = tags.get("test_start"), tags.get("test_end")
    if not start:
        raise AmlError(f"Version {challenger.version} records no held-out period (tag test_start).")
    folder_data = load_folder(folder)
    warnings: list[str] = []
    if tags.get("data_fingerprint") and tags["data_fingerprint"] != folder_data.dataset.fingerprint:
        warnings.append(f"{folder} is not the data the challenger was trained on (fingerprint differs); "
                        "both versions are still compared on the same transactions.")
    reg_champ = load_model_set(champion.version)
    reg_chall = load_model_set(challenger.version)
    champ_split = reg_champ.model_set.metadata.get("split") or {}
    if champ_split.get("test_start") and champ_split["test_start"] > start:
        warnings.append(f"The champion (version {champion.version}) was trained and validated on data up to "
                        f"{champ_split['test_start']}, inside the held-out period from {start}: the comparison "
                        "favours the champion.")
    rep_champ, _ = evaluate_model_set(reg_champ.model_set, folder_data, start=start, end=end, progress=progress)
    rep_chall, _ = evaluate_model_set(reg_chall.model_set, folder_data, start=start, end=end, progress=progress)
    better, reason = compare(rep_champ, rep_chall)
    table = [(m, _num(rep_champ.overall.get(m)), _num(rep_chall.overall.get(m))) for m in COMPARED_METRICS]
    typ_a = dict(zip(rep_champ.per_typology["typology"], rep_champ.per_typology["recall_at_1pct"]))
    typ_b = dict(zip(rep_chall.per_typology["typology"], rep_chall.per_typology["recall_at_1pct"]))
    typology_table = [(t, _num(typ_a.get(t)), _num(typ_b.get(t))) for t in sorted(set(typ_a) | set(typ_b))]
    promoted = better or force
    if force and not better:
        reason = "forced: " + reason
    decision = {
        "promotion_decision": ("promoted" if promoted else "refused") + (" (forced)" if force and not better else ""),
        "promotion_compared_with": str(champion.version), "promotion_period": f"{start}..{end}",
        "promotion_pr_auc_champion": f"{rep_champ.overall['pr_auc']:.6f}",
        "promotion_pr_auc_challenger": f"{rep_chall.overall['pr_auc']:.6f}",
        "promotion_recall_at_1pct_champion": f"{rep_champ.overall['recall_at_1pct']:.6f}",
        "promotion_recall_at_1pct_challenger": f"{rep_chall.overall['recall_at_1pct']:.6f}",
        "promotion_checked_at": now,
    }
    tag_version(challenger.version, decision)
    if promoted:
        set_alias(CHAMPION, challenger.version)
        tag_version(challenger.version, {"promoted_at": now, "previous_champion": str(champion.version)})
    return PromotionResult(promoted, force, reason, str(challenger.version), str(champion.version),
                           period=f"{start}..{end}", label_source=rep_chall.label_source, table=table,
                           typology_table=typology_table, warnings=warnings)
