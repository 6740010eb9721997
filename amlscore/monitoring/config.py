"""Drift thresholds: validated YAML data (``config/drift.yaml`` by default, ``--thresholds FILE`` to replace it)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from amlscore.contract.config_file import read_yaml

from amlscore.contract.errors import AmlError

__all__ = ["DEFAULT_THRESHOLDS", "DriftThresholds", "Levels", "load_thresholds"]

DEFAULT_THRESHOLDS = Path(__file__).with_name("config") / "drift.yaml"


class Levels(BaseModel):
    """A warning level and a higher action level of one figure."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warning: float = Field(gt=0)
    action: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "Levels":
        if self.action <= self.warning:
            raise ValueError(f"action ({self.action}) must be above warning ({self.warning})")
        return self

    def level(self, value: float) -> str:
        """``"action"``, ``"warning"`` or ``"ok"`` for ``value`` (NaN is ``"ok"``: nothing to judge)."""
        if value >= self.action:
            return "action"
        if value >= self.warning:
            return "warning"
        return "ok"


class DriftThresholds(BaseModel):
    """When a drift figure is a warning and when it calls for action (see ``config/drift.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    psi: Levels
    missing_share_change: Levels
    alert_rate_ratio: Levels
    min_rows: int = Field(ge=1)
    min_alerts: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _ratio_above_one(self) -> "DriftThresholds":
        if self.alert_rate_ratio.warning <= 1.0:
            raise ValueError("alert_rate_ratio.warning must be above 1 (a ratio of current to reference alert rate)")
        return self


def load_thresholds(path: str | Path | None = None) -> DriftThresholds:
    """Read and validate a thresholds file (default: the package's ``config/drift.yaml``).

    Raises
    ------
    AmlError
        Naming the file and every field that is missing, unknown or out of range.
    """
    source = Path(path) if path is not None else DEFAULT_THRESHOLDS
    if not source.is_file():
        raise AmlError(f"Drift thresholds file {source} does not exist.")
    raw = read_yaml(source, AmlError, "drift thresholds file")
    try:
        return DriftThresholds.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors())
        raise AmlError(f"Drift thresholds file {source} is invalid: {problems}") from None
