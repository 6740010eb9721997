"""Configuration of the synthetic bank: size, window, seed and the typology catalogue.

Everything that changes what the generator writes is either in :class:`SynthConfig` (what a user
chooses on the command line) or in :data:`TYPOLOGY_SPECS` (how each laundering pattern is injected
and how often it is reported). The bank's rules that the features also use (large-cash threshold,
high-risk jurisdictions, bank time zone) are read from ``amlscore/features/config/feature_params.yaml`` so
that the data and the features cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from amlscore.contract.errors import AmlError
from amlscore.synth.catalogue import (  # noqa: F401  (the catalogue is read through this module too)
    ALL_TYPOLOGIES,
    DEFAULT_TYPOLOGIES,
    TYPOLOGIES,
    TYPOLOGY_BY_NAME,
    TYPOLOGY_SPECS,
    TypologySpec,
)
from amlscore.synth.variant import DEFAULT_VARIANT, WorldVariant

FEATURE_PARAMS_PATH = Path(__file__).resolve().parent.parent / "features" / "config" / "feature_params.yaml"

MIN_CUSTOMERS = 200  # below this the typologies cannot get their own customers
MAX_CUSTOMERS = 2_000_000
MIN_DAYS = 30
MAX_DAYS = 3 * 366
OUTPUT_FORMATS = ("parquet", "csv")


@dataclass(frozen=True)
class BankRules:
    """The rules shared with the feature catalogue, read from ``feature_params.yaml``."""

    bank_country: str
    utc_offset_hours: int
    large_cash_threshold: float
    near_threshold_band: float
    dormancy_days: int
    high_risk_countries: tuple[str, ...]


@lru_cache(maxsize=4)
def load_bank_rules(path: Path = FEATURE_PARAMS_PATH) -> BankRules:
    """Read the bank rules from the feature parameters file.

    Parameters
    ----------
    path:
        The YAML file (defaults to ``amlscore/features/config/feature_params.yaml``).

    Returns
    -------
    BankRules
        Bank country, time zone, cash threshold and band, dormancy and high-risk countries.
    """
    try:
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return BankRules(
            bank_country=str(raw["bank_country"]),
            utc_offset_hours=int(raw["bank_utc_offset_hours"]),
            large_cash_threshold=float(raw["large_cash_threshold"]),
            near_threshold_band=float(raw["near_threshold_band"]),
            dormancy_days=int(raw["dormancy_days"]),
            high_risk_countries=tuple(str(c) for c in raw["high_risk_countries"]),
        )
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise AmlError(f"cannot read the bank rules from {path}: {exc}") from exc


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.

    Parameters
    ----------
    customers:
        Number of customers (individuals and corporates), at least 200.
    days:
        Length of the transaction window in days, 30 to 1,098.
    seed:
        Seed of every random stream; the same seed gives byte-identical output.
    start:
        First day of the window (bank-local date, China Standard Time).
    laundering_scale:
        Multiplies the number of scenarios of every typology (1.0 gives ~1-3 % laundering).
    variant:
        How the world is shifted from the default (:class:`amlscore.synth.variant.WorldVariant`).

    Raises
    ------
    AmlError
        When a value is out of range, naming the parameter, the allowed range and the value.
    """

    customers: int = 2000
    days: int = 365
    seed: int = 42
    start: dt.date = dt.date(2025, 1, 1)
    laundering_scale: float = 1.0
    variant: WorldVariant = DEFAULT_VARIANT

    def __post_init__(self) -> None:
        _check_int("customers", self.customers, MIN_CUSTOMERS, MAX_CUSTOMERS)
        _check_int("days", self.days, MIN_DAYS, MAX_DAYS)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        if not isinstance(self.start, dt.date) or isinstance(self.start, dt.datetime):
            raise AmlError(f"The 'start' parameter of SynthConfig must be a date. Got {self.start!r} instead.")
        if not 2000 <= self.start.year <= 2090:
            raise AmlError(f"The 'start' parameter of SynthConfig must be a date in 2000-2090. Got {self.start} instead.")
        scale = self.laundering_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0.0 <= float(scale) <= 10.0:
            raise AmlError(
                f"The 'laundering_scale' parameter of SynthConfig must be a number in [0, 10]. Got {scale!r} instead."
            )
        if not isinstance(self.variant, WorldVariant):
            raise AmlError(f"The 'variant' parameter of SynthConfig must be a WorldVariant. Got {self.variant!r} instead.")

    @property
    def end(self) -> dt.date:
        """Last day of the window (inclusive)."""
        return self.start + dt.timedelta(days=self.days - 1)

    def scenario_count(self, spec: TypologySpec) -> int:
        """Number of scenarios of a typology for this bank size (0 when laundering is switched off)."""
        shift = self.variant.typology(spec.name)
        if self.laundering_scale == 0 or not self.variant.enabled(spec.name, spec.default_enabled) or shift.rate_scale == 0:
            return 0
        # Scales with customers x years, like the legitimate activity, so the label rate holds.
        years = max(self.days, 90) / 365
        n = round(spec.scenarios_per_1000 * self.customers / 1000 * years * self.laundering_scale * shift.rate_scale)
        return max(spec.min_scenarios, int(n))

    def generates(self, typology: str) -> bool:
        """Whether this world has scenarios of ``typology``."""
        return self.scenario_count(TYPOLOGY_BY_NAME[typology]) > 0


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= int(value) <= high:
        raise AmlError(
            f"The '{name}' parameter of SynthConfig must be a whole number in [{low}, {high}]. Got {value!r} instead."
        )


def parse_start(text: str) -> dt.date:
    """Parse a ``--start`` value (``YYYY-MM-DD``) or raise :class:`AmlError` saying what is wrong."""
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise AmlError(f"--start must be a date YYYY-MM-DD. Got {text!r} instead.") from exc


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream for one named part of the generator.

    Why named streams: each component draws from its own generator derived from the seed and a
    stable hash of its name, so adding or changing one component never shifts another's numbers.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode("utf-8"))]))
