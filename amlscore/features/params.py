"""Parameters of the feature catalogue, as validated data with a hash.

The values live in ``amlscore/features/config/feature_params.yaml``; every model set records the hash of
the parameters its features were computed with, so a served model never sees features computed
under other thresholds than the ones it was trained on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from amlscore.contract.config_file import load_yaml_model
from amlscore.contract.errors import AmlError

DEFAULT_PARAMS_PATH = Path(__file__).parent / "config" / "feature_params.yaml"


class FeatureParamsError(AmlError):
    """The feature parameters file is missing or invalid."""


#: The shared identifiers the components can follow: links seen on transactions (they expire) and
#: links in the customers table (they hold from the customer's onboarding date on).
TRANSACTION_IDENTIFIERS = ("ip_address", "device_id", "operator_id")
KYC_IDENTIFIERS = ("phone", "emergency_phone", "agent_id")


class IdComponentParams(BaseModel):
    """Components of shared identifiers (amlscore/features/idcomp.py): what links customers and the
    search's bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_days: int = Field(30, ge=1, le=90)
    growth_days: int = Field(7, ge=1, le=90)
    max_size: int = Field(64, ge=2, le=1024)
    hub_customers: int = Field(12, ge=2, le=256)
    links_per_customer: int = Field(16, ge=1, le=256)
    identifiers: tuple[str, ...] = TRANSACTION_IDENTIFIERS + KYC_IDENTIFIERS

    @field_validator("identifiers")
    @classmethod
    def _known_identifiers(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        allowed = TRANSACTION_IDENTIFIERS + KYC_IDENTIFIERS
        bad = [x for x in v if x not in allowed]
        if bad:
            raise ValueError(f"must be among {', '.join(allowed)}; got {bad}")
        if len(set(v)) != len(v):
            raise ValueError(f"lists an identifier twice: {list(v)}")
        return tuple(v)

    @model_validator(mode="after")
    def _growth_inside_window(self) -> "IdComponentParams":
        if self.growth_days >= self.window_days:
            raise ValueError(f"growth_days ({self.growth_days}) must be shorter than window_days ({self.window_days})")
        return self


class FeatureParams(BaseModel):
    """Thresholds and lists the feature definitions depend on (see the YAML file for meanings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(1, ge=1)
    bank_country: str = Field("CN", min_length=2, max_length=2)
    bank_utc_offset_hours: int = Field(8, ge=-12, le=14)
    night_hours: tuple[int, int] = (0, 6)
    large_cash_threshold: float = Field(50_000, gt=0)
    near_threshold_band: float = Field(0.10, gt=0, lt=1)
    round_amount_unit: float = Field(1000, gt=0)
    dormancy_days: float = Field(180, gt=0)
    reactivation_lookback_days: int = Field(30, ge=1, le=90)
    peer_lookback_days: int = Field(30, ge=1, le=365)
    peer_cash_floor: float = Field(1000, gt=0)
    peer_count_floor: float = Field(1.0, gt=0)
    own_std_floor: float = Field(1.0, gt=0)
    high_risk_countries: tuple[str, ...] = ()
    id_components: IdComponentParams = IdComponentParams()

    @field_validator("night_hours")
    @classmethod
    def _hours_in_day(cls, v: tuple[int, int]) -> tuple[int, int]:
        start, end = v
        if not (0 <= start < end <= 24):
            raise ValueError(f"must be [start, end) with 0 <= start < end <= 24; got {list(v)}")
        return v

    @field_validator("high_risk_countries")
    @classmethod
    def _upper_codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in v if len(c) != 2 or not c.isalpha() or not c.isupper()]
        if bad:
            raise ValueError(f"must be ISO 3166-1 alpha-2 codes in upper case; got {bad}")
        return tuple(v)

    @model_validator(mode="after")
    def _round_unit_in_fen(self) -> "FeatureParams":
        # Amounts are compared in integer fen; thresholds must be whole fen to stay exact.
        for name in ("large_cash_threshold", "round_amount_unit"):
            value = getattr(self, name) * 100
            if abs(value - round(value)) > 1e-9:
                raise ValueError(f"{name} must be a whole number of fen (0.01 CNY); got {getattr(self, name)}")
        return self

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON of the parameters (first 16 hex digits)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    # Derived integer thresholds in fen, used by the event derivations.
    @property
    def large_cash_fen(self) -> int:
        return int(round(self.large_cash_threshold * 100))

    @property
    def near_threshold_low_fen(self) -> int:
        return int(round(self.large_cash_threshold * (1 - self.near_threshold_band) * 100))

    @property
    def round_unit_fen(self) -> int:
        return int(round(self.round_amount_unit * 100))


def load_feature_params(path: str | Path | None = None) -> FeatureParams:
    """Read and validate feature parameters from YAML (the packaged default when ``path`` is None).

    Raises
    ------
    FeatureParamsError
        When the file is missing, is not YAML, or a value breaks its rule; the message names the
        parameter, what is allowed and the value received.
    """
    p = Path(path) if path is not None else DEFAULT_PARAMS_PATH
    return load_yaml_model(p, FeatureParams, FeatureParamsError, what="feature parameters file", noun="parameter",
                           expects="a mapping of parameter names to values")
