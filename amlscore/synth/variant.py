"""World variants: validated data that shifts the synthetic bank away from its defaults.

A variant says how far normal behaviour and the laundering typologies move from the default
world, so that a model tuned on the default bank can be measured on banks it was not tuned on
(``docs/generalisation.md``). The named variants live in ``amlscore/synth/variants.yaml``; a user
can write their own file with the same keys (``amlscore generate --variant FILE``).

A variant is threaded through the generator as a parameter (``SynthConfig.variant``), never as
global state. Every shift draws from its own named random stream (``variant/...``), and a field at
its default value changes nothing, so the ``default`` variant writes byte-identical data to a
bank generated without one.

Keys (all optional; ``docs/synthetic-bank.md`` has the table):

``normal``
    ``amount_scale`` (median of legitimate amounts, x), ``amount_spread`` (sigma of a per-customer
    lognormal factor on their amounts), ``activity_scale`` (event rates, x), ``time_shift_share``
    and ``time_shift_hours`` (share of customers whose own activity happens that many hours later,
    e.g. night owls), ``cash_heavy_share`` (share of individuals who deposit and withdraw large
    cash amounts, 10,000-45,000 CNY, a few times a month: innocent look-alikes of structuring),
    ``travel_abroad_share``, ``travel_domestic_share`` (defaults 0.06, 0.16), ``lookalike_scale``
    (innocent sleepers, big one-off purchases and cash-business takings, x).
``typologies``
    Per typology name: ``enabled`` (default: on for the 11 default typologies, off for the ones
    only a variant switches on), ``rate_scale`` (scenarios, x), ``amount_scale`` (every laundering
    amount of the scenario, x), ``group_scale`` (accounts, depositors, recipients, chain length, x),
    ``speed_scale`` (time from the scenario's start to each of its transactions, x: 3 means three
    times slower), ``channels`` (weights over online_banking, mobile_banking, phone_banking and
    counter for the launderers' transfers that carry no session of their own).
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from amlscore.contract.config_file import read_yaml, validation_problems
from amlscore.contract.errors import AmlError
from amlscore.synth.catalogue import ALL_TYPOLOGIES

VARIANTS_PATH = Path(__file__).resolve().parent / "variants.yaml"
#: Channels a variant may move launderers' sessionless transfers to (they need no IP or terminal).
VARIANT_CHANNELS = ("online_banking", "mobile_banking", "phone_banking", "counter")


class VariantError(AmlError):
    """A variant file or name is invalid."""


class NormalShift(BaseModel):
    """How legitimate behaviour moves from the default world (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount_scale: float = Field(1.0, gt=0.05, le=20.0)
    amount_spread: float = Field(0.0, ge=0.0, le=2.0)
    activity_scale: float = Field(1.0, gt=0.1, le=5.0)
    time_shift_share: float = Field(0.0, ge=0.0, le=1.0)
    time_shift_hours: float = Field(0.0, ge=-12.0, le=12.0)
    cash_heavy_share: float = Field(0.0, ge=0.0, le=0.5)
    travel_abroad_share: float = Field(0.06, ge=0.0, le=0.6)
    travel_domestic_share: float = Field(0.16, ge=0.0, le=0.6)
    lookalike_scale: float = Field(1.0, ge=0.0, le=10.0)


class TypologyShift(BaseModel):
    """How one typology moves from its defaults (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = None
    rate_scale: float = Field(1.0, ge=0.0, le=10.0)
    amount_scale: float = Field(1.0, gt=0.05, le=20.0)
    group_scale: float = Field(1.0, gt=0.1, le=5.0)
    speed_scale: float = Field(1.0, gt=0.1, le=10.0)
    channels: dict[Literal["online_banking", "mobile_banking", "phone_banking", "counter"], float] | None = None

    @field_validator("channels")
    @classmethod
    def _weights(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        if any(x < 0 for x in v.values()) or sum(v.values()) <= 0:
            raise ValueError(f"must be non-negative weights with a positive sum; got {v}")
        return v


class WorldVariant(BaseModel):
    """A named shift of the synthetic world: normal behaviour and per-typology parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("default", min_length=1, max_length=64)
    description: str = ""
    normal: NormalShift = NormalShift()
    typologies: dict[str, TypologyShift] = Field(default_factory=dict)

    @field_validator("typologies")
    @classmethod
    def _known_typologies(cls, v: dict[str, TypologyShift]) -> dict[str, TypologyShift]:
        unknown = sorted(set(v) - set(ALL_TYPOLOGIES))
        if unknown:
            raise ValueError(f"unknown typology {unknown[0]!r}; allowed: {', '.join(ALL_TYPOLOGIES)}")
        return v

    def typology(self, name: str) -> TypologyShift:
        """The shift of typology ``name`` (no shift when the variant does not name it)."""
        return self.typologies.get(name, _NO_SHIFT)

    def enabled(self, name: str, default_enabled: bool) -> bool:
        """Whether typology ``name`` is generated in this world."""
        flag = self.typology(name).enabled
        return default_enabled if flag is None else flag

    @property
    def is_default(self) -> bool:
        """True when nothing is shifted (the default world)."""
        return self.normal == NormalShift() and all(t == _NO_SHIFT for t in self.typologies.values())


_NO_SHIFT = TypologyShift()
DEFAULT_VARIANT = WorldVariant()


def variant_stream(seed: int, name: str) -> np.random.Generator:
    """A random stream of one variant shift, independent of every default stream."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(f"variant/{name}".encode("utf-8"))]))


def parse_variant(raw: Any, where: str) -> WorldVariant:
    """Validate one variant mapping; errors name the key, what is allowed and the value received."""
    if not isinstance(raw, dict):
        raise VariantError(f"{where} must be a mapping of keys (name, normal, typologies). Got {raw!r} instead.")
    try:
        return WorldVariant(**raw)
    except ValidationError as exc:
        raise VariantError("\n".join(validation_problems(exc, f"of {where}"))) from None


@lru_cache(maxsize=4)
def named_variants(path: Path = VARIANTS_PATH) -> dict[str, WorldVariant]:
    """The named variants of ``variants.yaml`` (``default``, ``shifted_normal``, ``shifted_typologies``, ``hard``...)."""
    raw = _read_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("variants"), dict):
        raise VariantError(f"{path} must hold a mapping 'variants: {{name: {{...}}}}'.")
    return {name: parse_variant({"name": name, **(spec or {})}, f"variant '{name}' in {path.name}")
            for name, spec in raw["variants"].items()}


def _read_yaml(path: Path) -> Any:
    return read_yaml(path, VariantError, "variant file")


def load_variant(name_or_file: str | Path | None, what: str = "--variant") -> WorldVariant:
    """A variant by name (from ``variants.yaml``) or from a YAML file holding one variant (``what``
    names the option or key in errors).

    Raises
    ------
    VariantError
        An unknown name (listing the known ones), a missing or invalid file, or a bad value.
    """
    if name_or_file is None or str(name_or_file) == "default":
        return DEFAULT_VARIANT
    text = str(name_or_file)
    known = named_variants()
    if text in known:
        return known[text]
    path = Path(text)
    if not (path.suffix in (".yaml", ".yml") or path.exists()):
        raise VariantError(f"{what} must be one of {', '.join(known)} or a YAML file. Got {text!r} instead.")
    raw = _read_yaml(path)
    if isinstance(raw, dict) and "name" not in raw:
        raw = {"name": path.stem, **raw}
    return parse_variant(raw, f"variant file {path.name}")


# ----------------------------------------------------------------------------- shifts on ledger columns
_UNITS_FEN = np.array([100_000, 10_000, 1_000, 100, 1], dtype=np.int64)  # 1,000 / 100 / 10 / 1 / 0.01 CNY


def scale_amounts(amount_fen: np.ndarray, factor: np.ndarray | float) -> np.ndarray:
    """Amounts (integer fen) times ``factor``, rounded to the unit each amount was typed in.

    Why keep the unit: a whole-hundreds amount stays a whole-hundreds amount, so a shift of the
    amounts does not also turn every round amount into an odd one (round amounts are a feature).
    """
    amount_fen = np.asarray(amount_fen, dtype=np.int64)
    unit = np.ones(len(amount_fen), dtype=np.int64)
    for u in _UNITS_FEN[::-1]:
        unit = np.where(amount_fen % u == 0, u, unit)
    scaled = np.round(amount_fen * np.asarray(factor, dtype=np.float64) / unit).astype(np.int64) * unit
    return np.maximum(unit, scaled)


def row_uniform(seed: int, *keys: np.ndarray) -> np.ndarray:
    """A uniform number per row that depends only on the seed and the row's ``keys`` (splitmix64).

    Why not a random stream: the two legs of an internal transfer must draw the same number
    (their keys are equal), wherever they sit in the block.
    """
    with np.errstate(over="ignore"):
        x = np.full(len(keys[0]), np.uint64(seed & 0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
        for k in keys:
            x = x * np.uint64(0x9E3779B97F4A7C15) + np.asarray(k).astype(np.int64).view(np.uint64)
            x ^= x >> np.uint64(30)
            x *= np.uint64(0xBF58476D1CE4E5B9)
            x ^= x >> np.uint64(27)
            x *= np.uint64(0x94D049BB133111EB)
            x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)
