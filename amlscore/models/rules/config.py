"""The rules configuration: versioned YAML, validated on load, hashed.

Every weight, band, threshold and list of the rule score lives in ``amlscore/models/config/rules.yaml``.
:func:`load_rules_config` reads it, checks its shape (pydantic) and its meaning (weights > 0
summing to 100, bands covering 0-100 without gaps, known sub-items only, review intervals within
the guideline...) and returns a frozen :class:`RulesConfig`. Every problem found is reported at
once, each in the same words as scikit-learn's parameter validation::

    The 'weight_sets.individual_new' parameter of RulesConfig must be element weights summing to 100.
    Got 95 (customer 40 + geography 25 + business 10 + industry 20) instead.

:attr:`RulesConfig.hash` is the SHA-256 of the validated content in canonical JSON (sorted keys),
so comments and layout do not change it; it is written next to every rating and rule score.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from amlscore.contract.errors import AmlError
from amlscore.contract.schema import OCCUPATIONS_OR_INDUSTRIES, TXN_TYPES
from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.models.rules import spec

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "config" / "rules.yaml"
_OWNER = "RulesConfig"
_TOL = 1e-6


class RulesConfigError(AmlError):
    """The rules configuration is invalid; :attr:`problems` lists every problem found."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid rules configuration {source} ({len(self.problems)} problem(s)):\n{lines}")


def _problem(param: str, allowed: str, got: Any) -> str:
    return f"The '{param}' parameter of {_OWNER} must be {allowed}. Got {got} instead."


def _num(x: float) -> str:
    return f"{x:g}"


_STRICT = ConfigDict(extra="forbid", frozen=True)
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
PositiveWeight = Annotated[float, Field(gt=0)]


class LocalText(BaseModel):
    """A phrase in English and Chinese."""

    model_config = _STRICT
    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)


class Level(BaseModel):
    """A risk level: its score band ``[lower, upper)`` (the top band includes 100) and review interval."""

    model_config = _STRICT
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: LocalText
    band: tuple[float, float]
    review_months: int = Field(gt=0)


class Bins(BaseModel):
    """Binning of a number: ``value < edges[0]`` scores ``scores[0]``, ``edges[i-1] <= value < edges[i]``
    scores ``scores[i]``, ``value >= edges[-1]`` scores ``scores[-1]``."""

    model_config = _STRICT
    edges: list[float]
    scores: list[int]


class SubItemTable(BaseModel):
    """How one sub-item is scored: a score per case, or a binning per input; and the score when unknown."""

    model_config = _STRICT
    missing: int | None = None  # when not given: the middle of the scale (ceil((m + 1) / 2)), set on load
    categories: dict[str, int] | None = None
    inputs: dict[str, Bins] | None = None


class ElementWeights(BaseModel):
    """An element's weight and its sub-items' weights (which must add up to the element's)."""

    model_config = _STRICT
    weight: PositiveWeight
    items: dict[str, PositiveWeight]


class Bank(BaseModel):
    model_config = _STRICT
    country: CountryCode = "CN"
    utc_offset_hours: float = Field(default=8, ge=-12, le=14)
    regions: list[str] = Field(default_factory=list)


class GeographyLists(BaseModel):
    model_config = _STRICT
    sanctioned: list[CountryCode]
    fatf_black: list[CountryCode]
    fatf_grey: list[CountryCode]
    offshore: list[CountryCode]
    predicate_crime_regions: list[str]


class Reviews(BaseModel):
    model_config = _STRICT
    first_rating_max_months: int = Field(gt=0)
    new_customer_rating_working_days: int = Field(gt=0)


class Calendar(BaseModel):
    model_config = _STRICT
    holidays: list[date] = Field(default_factory=list)
    extra_working_days: list[date] = Field(default_factory=list)

    @property
    def covered_years(self) -> frozenset[int]:
        """Years with at least one holiday listed: the years whose working days are known."""
        return frozenset(d.year for d in self.holidays)


class CustomerSettings(BaseModel):
    model_config = _STRICT
    new_customer_days: int = Field(gt=0)


class DirectToHighest(BaseModel):
    model_config = _STRICT
    repeated_reports_min: int = Field(ge=1)


class DirectToLowest(BaseModel):
    model_config = _STRICT
    enabled: bool = True
    candidate_industries: list[str]
    individual_assets_limit: float = Field(gt=0)
    non_individual_assets_limit: float = Field(gt=0)


class Proxies(BaseModel):
    model_config = _STRICT
    shared_phone_min_others: int = Field(ge=1)
    correspondent_or_trust_industries: list[str]


class Behaviour(BaseModel):
    model_config = _STRICT
    lookback_days: int = Field(gt=0)
    unusual_rule_score: float = Field(gt=0, le=100)


class Condition(BaseModel):
    """``feature op threshold``; a NaN feature value never satisfies a condition."""

    model_config = _STRICT
    feature: str
    op: Literal[">=", ">", "<=", "<", "=="]
    threshold: float


class TransactionRule(BaseModel):
    """An indicator rule: fires when every condition holds; ``weight`` in (0, 1]."""

    model_config = _STRICT
    weight: float = Field(gt=0, le=1)
    enabled: bool = True
    name: LocalText
    when: list[Condition] = Field(min_length=1)


class TransactionRules(BaseModel):
    model_config = _STRICT
    combination: Literal["noisy_or"] = "noisy_or"
    rules: dict[str, TransactionRule]


class LargeValue(BaseModel):
    model_config = _STRICT
    aggregate_daily: bool = True
    cash_types: list[str]
    transfer_types: list[str]
    cash_threshold: float = Field(gt=0)
    corporate_transfer_threshold: float = Field(gt=0)
    individual_domestic_transfer_threshold: float = Field(gt=0)
    individual_cross_border_transfer_threshold: float = Field(gt=0)
    unknown_country_is_cross_border: bool = True


class Suppression(BaseModel):
    model_config = _STRICT
    low_risk_levels: list[str]
    dismissal_valid_days: int | None = Field(default=None, gt=0)
    exempt_counterparty_industries: list[str]
    exempt_counterparty_ids: list[str] = Field(default_factory=list)


class RulesConfig(BaseModel):
    """The validated rules configuration. Build it with :func:`load_rules_config`.

    Attributes
    ----------
    hash : str
        SHA-256 (hex) of the canonical JSON of the validated content.
    """

    model_config = _STRICT
    version: Literal[1]
    revision: str = Field(min_length=1)
    max_item_score: int = Field(ge=2, le=100)
    levels: list[Level] = Field(min_length=3)
    reviews: Reviews
    calendar: Calendar
    customers: CustomerSettings
    bank: Bank
    lists: GeographyLists
    direct_to_highest: DirectToHighest
    direct_to_lowest: DirectToLowest
    proxies: Proxies
    behaviour: Behaviour
    sub_items: dict[str, SubItemTable]
    weight_sets: dict[str, dict[str, ElementWeights]]
    transaction_rules: TransactionRules
    large_value: LargeValue
    suppression: Suppression

    _hash: str = PrivateAttr(default="")
    _cache: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_meaning(self) -> RulesConfig:
        problems = _semantic_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def model_post_init(self, context: Any, /) -> None:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        self._hash = hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    # -- derived views -----------------------------------------------------------------------
    @property
    def hash(self) -> str:
        """SHA-256 of the canonical content (hex, 64 characters)."""
        return self._hash

    @property
    def short_hash(self) -> str:
        """The first 12 characters of :attr:`hash`, for display."""
        return self._hash[:12]

    @property
    def level_ids(self) -> tuple[str, ...]:
        """Level ids from the highest risk to the lowest."""
        return tuple(lv.id for lv in self.levels)

    def level(self, level_id: str) -> Level:
        for lv in self.levels:
            if lv.id == level_id:
                return lv
        raise KeyError(level_id)

    def item_weight(self, weight_set: str, sub_item: str) -> float:
        """The weight of ``sub_item`` in ``weight_set`` (0 when the set does not use it)."""
        element = spec.SUB_ITEMS_BY_ID[sub_item].element
        return float(self.weight_sets[weight_set][element].items.get(sub_item, 0.0))

    def cached(self, key: str, build):  # noqa: ANN001 - internal helper
        """Memoise a structure derived from this (immutable) configuration."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


# ---------------------------------------------------------------------------------------------
# Meaning checks
# ---------------------------------------------------------------------------------------------
def _semantic_problems(c: RulesConfig) -> list[str]:
    p: list[str] = []
    m = c.max_item_score
    _check_levels(c, p)
    _check_reviews(c, p)
    _check_sub_items(c, p, m)
    _check_weight_sets(c, p)
    _check_lists(c, p)
    _check_rules(c, p)
    _check_large_value(c, p)
    level_ids = set(c.level_ids)
    for i, lv in enumerate(c.suppression.low_risk_levels):
        if lv not in level_ids:
            p.append(_problem(f"suppression.low_risk_levels[{i}]", f"a level id ({', '.join(c.level_ids)})", repr(lv)))
    for name, values in (
        ("direct_to_lowest.candidate_industries", c.direct_to_lowest.candidate_industries),
        ("proxies.correspondent_or_trust_industries", c.proxies.correspondent_or_trust_industries),
        ("suppression.exempt_counterparty_industries", c.suppression.exempt_counterparty_industries),
    ):
        for v in values:
            if v not in OCCUPATIONS_OR_INDUSTRIES:
                p.append(_problem(name, "a list of contract industries (" + ", ".join(OCCUPATIONS_OR_INDUSTRIES) + ")", repr(v)))
    dl = c.direct_to_lowest
    if dl.individual_assets_limit > spec.INDIVIDUAL_ASSETS_LIMIT:
        p.append(_problem("direct_to_lowest.individual_assets_limit",
                          f"at most {spec.INDIVIDUAL_ASSETS_LIMIT:,.0f} CNY (the guideline's limit)", _num(dl.individual_assets_limit)))
    if dl.non_individual_assets_limit > spec.NON_INDIVIDUAL_ASSETS_LIMIT:
        p.append(_problem("direct_to_lowest.non_individual_assets_limit",
                          f"at most {spec.NON_INDIVIDUAL_ASSETS_LIMIT:,.0f} CNY (the guideline's limit)", _num(dl.non_individual_assets_limit)))
    return p


def _check_levels(c: RulesConfig, p: list[str]) -> None:
    ids = [lv.id for lv in c.levels]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        p.append(_problem("levels", "levels with distinct ids", "duplicate id(s) " + ", ".join(map(repr, dupes))))
    allowed = "bands [lower, upper) covering 0 to 100 without gaps or overlaps, listed from the highest level down"
    for i, lv in enumerate(c.levels):
        lo, hi = lv.band
        if not (0 <= lo < hi <= 100):
            p.append(_problem(f"levels[{i}].band", "[lower, upper] with 0 <= lower < upper <= 100", f"[{_num(lo)}, {_num(hi)}]"))
    if c.levels[0].band[1] != 100:
        p.append(_problem("levels", allowed, f"a highest band '{c.levels[0].id}' ending at {_num(c.levels[0].band[1])}"))
    if c.levels[-1].band[0] != 0:
        p.append(_problem("levels", allowed, f"a lowest band '{c.levels[-1].id}' starting at {_num(c.levels[-1].band[0])}"))
    for upper_lv, lower_lv in zip(c.levels, c.levels[1:]):
        lo_of_upper, hi_of_lower = upper_lv.band[0], lower_lv.band[1]
        if hi_of_lower < lo_of_upper:
            p.append(_problem("levels", allowed, f"a gap between '{lower_lv.id}' (up to {_num(hi_of_lower)}) and "
                                                 f"'{upper_lv.id}' (from {_num(lo_of_upper)})"))
        elif hi_of_lower > lo_of_upper:
            p.append(_problem("levels", allowed, f"an overlap between '{lower_lv.id}' (up to {_num(hi_of_lower)}) and "
                                                 f"'{upper_lv.id}' (from {_num(lo_of_upper)})"))


def _check_reviews(c: RulesConfig, p: list[str]) -> None:
    top = c.levels[0]
    if top.review_months > spec.HIGHEST_LEVEL_REVIEW_MAX_MONTHS:
        p.append(_problem(f"levels[0].review_months",
                          f"at most {spec.HIGHEST_LEVEL_REVIEW_MAX_MONTHS} (the highest level is reviewed at least every six months)",
                          top.review_months))
    for i in range(1, len(c.levels)):
        above, here = c.levels[i - 1], c.levels[i]
        if here.review_months > spec.REVIEW_INTERVAL_MAX_RATIO * above.review_months:
            p.append(_problem(f"levels[{i}].review_months",
                              f"at most twice the interval of the level above ('{above.id}': {above.review_months} months)",
                              here.review_months))
        if here.review_months < above.review_months:
            p.append(_problem(f"levels[{i}].review_months",
                              f"at least the interval of the level above ('{above.id}': {above.review_months} months)",
                              here.review_months))
    if c.reviews.first_rating_max_months > spec.FIRST_RATING_REVIEW_MAX_MONTHS:
        p.append(_problem("reviews.first_rating_max_months",
                          f"at most {spec.FIRST_RATING_REVIEW_MAX_MONTHS} (every first rating is reviewed within three years)",
                          c.reviews.first_rating_max_months))
    if c.reviews.new_customer_rating_working_days > spec.NEW_CUSTOMER_RATING_MAX_WORKING_DAYS:
        p.append(_problem("reviews.new_customer_rating_working_days",
                          f"at most {spec.NEW_CUSTOMER_RATING_MAX_WORKING_DAYS} working days", c.reviews.new_customer_rating_working_days))
    for i, d in enumerate(c.calendar.extra_working_days):
        if d.weekday() < 5:
            p.append(_problem(f"calendar.extra_working_days[{i}]", "a Saturday or Sunday that is worked", d.isoformat()))
    holidays = set(c.calendar.holidays)
    for i, d in enumerate(c.calendar.extra_working_days):
        if d in holidays:
            p.append(_problem(f"calendar.extra_working_days[{i}]", "a day that is not also listed as a holiday", d.isoformat()))
    for name, days in (("holidays", c.calendar.holidays), ("extra_working_days", c.calendar.extra_working_days)):
        seen: set[date] = set()
        for i, d in enumerate(days):
            if d in seen:
                p.append(_problem(f"calendar.{name}[{i}]", "listed once", f"{d.isoformat()} a second time"))
            seen.add(d)


def _check_bins(name: str, b: Bins, m: int, p: list[str]) -> None:
    if any(not math.isfinite(e) for e in b.edges) or any(b2 <= b1 for b1, b2 in zip(b.edges, b.edges[1:])):
        p.append(_problem(f"{name}.edges", "finite and strictly increasing", b.edges))
    if len(b.scores) != len(b.edges) + 1:
        p.append(_problem(f"{name}.scores", f"one more score than edges ({len(b.edges) + 1})", f"{len(b.scores)} scores"))
    bad = [s for s in b.scores if not 1 <= s <= m]
    if bad:
        p.append(_problem(f"{name}.scores", f"scores from 1 to {m}", bad))


def _check_sub_items(c: RulesConfig, p: list[str], m: int) -> None:
    lowest_missing = math.ceil((m + 1) / 2)
    for item_id, table in c.sub_items.items():
        name = f"sub_items.{item_id}"
        s = spec.SUB_ITEMS_BY_ID.get(item_id)
        if s is None:
            p.append(_problem("sub_items", "known sub-items (" + ", ".join(spec.SUB_ITEM_IDS) + ")", repr(item_id)))
            continue
        if table.missing is None:  # the default: the middle of the scale, as unverified information
            object.__setattr__(table, "missing", lowest_missing)
        if not lowest_missing <= table.missing <= m:
            p.append(_problem(f"{name}.missing",
                              f"from {lowest_missing} to {m} (unknown information is never scored as low risk)", table.missing))
        if s.kind == "categories":
            if table.categories is None or table.inputs is not None:
                p.append(_problem(name, "a 'categories' table (a score per case), not 'inputs'", "inputs" if table.inputs else "neither"))
                continue
            _check_keys(f"{name}.categories", set(table.categories), s.keys, "cases", p)
            for case, score in table.categories.items():
                if not 1 <= score <= m:
                    p.append(_problem(f"{name}.categories.{case}", f"a score from 1 to {m}", score))
        else:
            if table.inputs is None or table.categories is not None:
                p.append(_problem(name, "an 'inputs' table (a binning per input), not 'categories'", "categories" if table.categories else "neither"))
                continue
            _check_keys(f"{name}.inputs", set(table.inputs), s.keys, "inputs", p)
            for input_id, bins in table.inputs.items():
                _check_bins(f"{name}.inputs.{input_id}", bins, m, p)


def _check_keys(name: str, got: set[str], known: tuple[str, ...], what: str, p: list[str]) -> None:
    unknown = sorted(got - set(known))
    missing = [k for k in known if k not in got]
    if unknown:
        p.append(_problem(name, f"known {what} only (" + ", ".join(known) + ")", "unknown " + ", ".join(map(repr, unknown))))
    if missing:
        p.append(_problem(name, f"a score for every one of its {what} (" + ", ".join(known) + ")", "no entry for " + ", ".join(map(repr, missing))))


def _check_weight_sets(c: RulesConfig, p: list[str]) -> None:
    _check_keys("weight_sets", set(c.weight_sets), spec.WEIGHT_SET_NAMES, "weight sets", p)
    for set_name, elements in c.weight_sets.items():
        if set_name not in spec.WEIGHT_SET_NAMES:
            continue
        ctype = set_name.split("_")[0]
        name = f"weight_sets.{set_name}"
        _check_keys(name, set(elements), spec.ELEMENTS, "elements", p)
        present = [e for e in spec.ELEMENTS if e in elements]
        total = sum(elements[e].weight for e in present)
        if abs(total - 100) > _TOL:
            parts = " + ".join(f"{e} {_num(elements[e].weight)}" for e in present)
            p.append(_problem(name, "element weights summing to 100", f"{_num(total)} ({parts})"))
        for el_name, el in elements.items():
            if el_name not in spec.ELEMENTS:
                continue
            el_path = f"{name}.{el_name}"
            if not el.items:
                p.append(_problem(f"{el_path}.items", "at least one sub-item", "none"))
                continue
            for item_id in el.items:
                s = spec.SUB_ITEMS_BY_ID.get(item_id)
                if s is None:
                    p.append(_problem(f"{el_path}.items", "known sub-items (" + ", ".join(spec.SUB_ITEM_IDS) + ")", repr(item_id)))
                    continue
                if s.element != el_name:
                    p.append(_problem(f"{el_path}.items.{item_id}", f"listed under its element '{s.element}'", f"it under '{el_name}'"))
                if ctype not in s.applies_to:
                    p.append(_problem(f"{el_path}.items.{item_id}", f"a sub-item that applies to {ctype} customers "
                                                                    f"(it applies to {', '.join(s.applies_to)})", repr(item_id)))
                if item_id not in c.sub_items:
                    p.append(_problem(f"sub_items.{item_id}", f"a scoring table (it is weighted in '{set_name}')", "none"))
            item_total = sum(el.items.values())
            if abs(item_total - el.weight) > _TOL:
                parts = " + ".join(f"{k} {_num(v)}" for k, v in el.items.items())
                p.append(_problem(f"{el_path}.items", f"sub-item weights summing to the element's weight {_num(el.weight)}",
                                  f"{_num(item_total)} ({parts})"))


def _check_lists(c: RulesConfig, p: list[str]) -> None:
    if c.bank.country in c.lists.sanctioned or c.bank.country in c.lists.offshore:
        p.append(_problem("lists", "lists that do not contain the bank's own country", c.bank.country))
    both = sorted(set(c.lists.fatf_black) & set(c.lists.fatf_grey))
    if both:
        p.append(_problem("lists.fatf_grey", "disjoint from lists.fatf_black", ", ".join(both)))


def _check_rules(c: RulesConfig, p: list[str]) -> None:
    known = set(FEATURE_NAMES)
    for rule_id, rule in c.transaction_rules.rules.items():
        name = f"transaction_rules.rules.{rule_id}"
        if not rule_id.replace("_", "").isalnum() or not rule_id.islower():
            p.append(_problem(name, "a rule id of lower-case letters, digits and underscores", repr(rule_id)))
        for i, cond in enumerate(rule.when):
            if cond.feature not in known:
                p.append(_problem(f"{name}.when[{i}].feature", "a feature of amlscore.features.catalogue.FEATURE_NAMES", repr(cond.feature)))


def _check_large_value(c: RulesConfig, p: list[str]) -> None:
    lv = c.large_value
    for name, values in (("large_value.cash_types", lv.cash_types), ("large_value.transfer_types", lv.transfer_types)):
        for v in values:
            if v not in TXN_TYPES:
                p.append(_problem(name, "a list of contract transaction types (" + ", ".join(TXN_TYPES) + ")", repr(v)))
    both = sorted(set(lv.cash_types) & set(lv.transfer_types))
    if both:
        p.append(_problem("large_value.transfer_types", "disjoint from large_value.cash_types", ", ".join(both)))
    for field, limit in (
        ("cash_threshold", spec.LARGE_CASH_THRESHOLD),
        ("corporate_transfer_threshold", spec.CORPORATE_TRANSFER_THRESHOLD),
        ("individual_domestic_transfer_threshold", spec.INDIVIDUAL_DOMESTIC_TRANSFER_THRESHOLD),
        ("individual_cross_border_transfer_threshold", spec.INDIVIDUAL_CROSS_BORDER_TRANSFER_THRESHOLD),
    ):
        value = getattr(lv, field)
        if value > limit:
            p.append(_problem(f"large_value.{field}", f"at most {limit:,.0f} CNY (the PBoC reporting threshold)", _num(value)))


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------
def _deep_merge(base: dict, overrides: Mapping) -> dict:
    out = dict(base)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _format_pydantic_error(err: dict) -> list[str]:
    loc = ".".join(str(x) if not isinstance(x, int) else f"[{x}]" for x in err.get("loc", ())).replace(".[", "[")
    msg = str(err.get("msg", ""))
    if err.get("type") == "value_error":
        text = msg.removeprefix("Value error, ")
        return [line for line in text.split("\n") if line]
    got = err.get("input")
    got_text = "nothing" if err.get("type") == "missing" else repr(got)
    if err.get("type") == "missing":
        return [_problem(loc, "set (it is required)", got_text)]
    if err.get("type") == "extra_forbidden":
        return [_problem(loc, "left out: it is not a known setting (check its spelling)", got_text)]
    allowed = msg.removeprefix("Input should be ").removeprefix("input should be ")
    allowed = allowed[:1].lower() + allowed[1:]
    if len(got_text) > 120:
        got_text = got_text[:117] + "..."
    return [_problem(loc or "(root)", allowed, got_text)]


def parse_rules_config(data: Mapping[str, Any], source: str = "<mapping>") -> RulesConfig:
    """Validate a mapping (e.g. parsed YAML) into a :class:`RulesConfig`.

    Raises
    ------
    RulesConfigError
        Listing every problem, each naming the parameter, what is allowed and what was given.
    """
    if not isinstance(data, Mapping):
        raise RulesConfigError(source, [_problem("(root)", "a mapping of settings", type(data).__name__)])
    try:
        return RulesConfig.model_validate(dict(data))
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors(include_url=False):
            problems.extend(_format_pydantic_error(err))
        raise RulesConfigError(source, problems) from None


def load_rules_config(path: str | Path | None = None, *, overrides: Mapping[str, Any] | None = None) -> RulesConfig:
    """Load, validate and hash the rules configuration.

    Parameters
    ----------
    path : str or Path, optional
        YAML file; the packaged ``amlscore/models/config/rules.yaml`` when omitted.
    overrides : mapping, optional
        Deep-merged over the file's content before validation (a ``None`` value removes a key).
        Useful to try one change without writing a file.

    Returns
    -------
    RulesConfig
        Frozen; ``.hash`` identifies its content.
    """
    if path is None and overrides is None:
        return _default_config()
    p = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    data = default_config_data() if path is None else _read_yaml(p)
    if overrides:
        data = _deep_merge(data, overrides)
    return parse_rules_config(data, source=str(p) + (" (with overrides)" if overrides else ""))


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~20x faster


def _read_yaml(p: Path) -> dict:
    if not p.is_file():
        raise RulesConfigError(str(p), ["the file does not exist"])
    try:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise RulesConfigError(str(p), [f"it is not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise RulesConfigError(str(p), [_problem("(root)", "a mapping of settings", type(data).__name__)])
    return data


@functools.lru_cache(maxsize=1)
def _default_config() -> RulesConfig:
    return parse_rules_config(default_config_data(), source=str(DEFAULT_CONFIG_PATH))


@functools.lru_cache(maxsize=1)
def _default_data() -> dict:
    return _read_yaml(DEFAULT_CONFIG_PATH)


def default_config_data() -> dict:
    """A deep copy of the packaged configuration as plain data (to build variants from)."""
    return copy.deepcopy(_default_data())
