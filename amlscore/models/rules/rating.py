"""Customer ML/TF risk rating, the weighting method of the PBoC 2013 guideline.

For each customer (vectorised over the whole frame):

1. every sub-item of the four basic elements gets a score ``p_i`` in ``1..m`` from its scoring
   table (``sub_items`` in the configuration); unknown or doubtful information is marked
   ``missing`` and scored at the table's ``missing`` score (never below the middle of the scale);
2. the customer's weight set (individual or corporate x new or existing) gives each sub-item a
   weight ``a_i > 0`` with ``sum(a_i) = 100``; the total is ``sum(a_i * p_i) / m``, from ``100/m``
   (all sub-items at 1) to 100 (all at ``m``), rounded to 2 decimals; its band gives a level;
3. direct-to-highest rules (watch list, PEP, repeated suspicious reports, refused due diligence)
   put the customer at the highest level whatever the score;
4. otherwise a direct-to-lowest *candidate* (``direct_to_lowest.candidate_industries``) with no
   exclusion goes to the lowest level. Every customer's eligibility and the reasons it is refused
   are reported;
5. the next review date follows from the level (:mod:`amlscore.models.rules.review`).

The score's direction: the higher, the riskier. See ``docs/rules.md`` for every table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.contract.schema import ID_DOCUMENT_TYPES, ONBOARDING_CHANNELS, OCCUPATIONS_OR_INDUSTRIES
from amlscore.models.rules import spec
from amlscore.models.rules.behaviour import COUNT_COLUMNS, COUNTERPARTY_COLUMNS, SHARE_COLUMNS
from amlscore.models.rules.config import RulesConfig, SubItemTable, load_rules_config
from amlscore.models.rules.review import DateLike, review_schedule, to_day

CUSTOMER_COLUMNS: tuple[str, ...] = (
    "customer_id", "customer_type", "birth_or_incorporation_date", "nationality", "residence_country",
    "home_region", "occupation_or_industry", "id_document_type", "is_pep", "on_watchlist",
    "onboarding_channel", "agent_id", "phone", "ownership_layers", "refused_cdd", "is_resident", "onboarded_at",
)
Progress = Callable[[str, int, int], None]


class ItemEval(NamedTuple):
    """One sub-item evaluated for every customer."""

    score: np.ndarray  # int, 1..m
    missing: np.ndarray  # bool
    case: np.ndarray  # index into the sub-item's keys (categories), -1 otherwise
    input: np.ndarray  # index of the deciding input (inputs), -1 otherwise
    value: np.ndarray  # the deciding input's value (inputs), NaN otherwise


@dataclass(frozen=True)
class RatingResult:
    """The rating of a set of customers at one date.

    Attributes
    ----------
    ratings : DataFrame
        One row per customer: ``customer_id``, ``customer_type``, ``weight_set``, ``is_new``,
        ``score`` (0..100, the higher the riskier), element subtotals ``score_<element>``,
        ``score_level`` (the band of the score), ``level`` (final, after overrides), ``level_rank``
        (0 = highest), ``level_name_en``, ``level_name_zh``, ``rating_basis`` (``weighted_score``,
        ``direct_to_highest`` or ``direct_to_lowest``), ``highest_reasons``, ``lowest_candidate``,
        ``lowest_eligible``, ``lowest_refusals``, ``n_missing``, ``missing_items``, ``rated_at``,
        ``is_first_rating``, ``review_interval_months``, ``next_review``, ``config_hash``.
        Reason and item lists are codes joined by ``|`` (empty when none).
    breakdown : DataFrame
        One row per customer and weighted sub-item: ``customer_id``, ``element``, ``sub_item``,
        ``score``, ``weight``, ``contribution`` (= weight x score / m; they add up to the score),
        ``missing``, ``case`` (categories), ``input`` and ``value`` (inputs: the deciding one).
    config : RulesConfig
    as_of : date
    """

    ratings: pd.DataFrame
    breakdown: pd.DataFrame
    config: RulesConfig
    as_of: date

    @property
    def config_hash(self) -> str:
        return self.config.hash

    def explain(self, customer_id: str, lang: str = "en") -> list[str]:
        """The rating of one customer in words (see :func:`amlscore.models.rules.explain.explain_rating`)."""
        from amlscore.models.rules.explain import explain_rating

        return explain_rating(self, customer_id, lang=lang)


# ---------------------------------------------------------------------------------------------
# Column helpers (accept the loader's typed frames and hand-built ones alike)
# ---------------------------------------------------------------------------------------------
def _codes(s: pd.Series, values: tuple[str, ...]) -> np.ndarray:
    """Position of each value in ``values``; -1 for empty or unknown values."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        lookup = pd.Index(list(values)).get_indexer(s.cat.categories.astype(str))
        codes = s.cat.codes.to_numpy()
        return np.where(codes < 0, -1, lookup[codes]).astype(np.int16)
    return pd.Index(list(values)).get_indexer(s.astype("string").str.strip()).astype(np.int16)


def _text(s: pd.Series, upper: bool = False) -> pd.Series:
    t = s.astype("string").str.strip()
    t = t.mask(t == "")
    return t.str.upper() if upper else t


_TRUE_TEXT, _FALSE_TEXT = ("true", "1", "yes"), ("false", "0", "no")


def _flag(s: pd.Series, na: bool) -> np.ndarray:
    """A boolean column; an unknown value becomes ``na`` (chosen on the risky side by the caller)."""
    if s.dtype == bool:
        return s.to_numpy()
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        v = s.to_numpy(dtype=float, na_value=np.nan)
        return np.where(np.isnan(v), na, v != 0)
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.fillna(na).to_numpy(dtype=bool)
    t = s.astype("string").str.strip().str.lower()
    true = t.isin(_TRUE_TEXT).to_numpy(dtype=bool, na_value=False)
    known = true | t.isin(_FALSE_TEXT).to_numpy(dtype=bool, na_value=False)
    return np.where(known, true, na)


def _unknown(s: pd.Series) -> np.ndarray:
    """Where a flag column is empty (unknown): scored by the sub-item's ``missing`` score, and never
    a direct-to-highest reason on its own."""
    if s.dtype == bool:
        return np.zeros(len(s), dtype=bool)
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        return s.isna().to_numpy(dtype=bool)
    t = s.astype("string").str.strip().str.lower()
    return ~t.isin([*_TRUE_TEXT, *_FALSE_TEXT]).to_numpy(dtype=bool, na_value=False)


def _days(s: pd.Series) -> pd.Series:
    d = pd.to_datetime(s, errors="coerce")
    if isinstance(d.dtype, pd.DatetimeTZDtype):
        d = d.dt.tz_localize(None)
    return d.dt.normalize()


def _whole_years(born: pd.Series, day: pd.Timestamp) -> np.ndarray:
    """Completed years between each date and ``day`` (NaN when unknown)."""
    y = day.year - born.dt.year
    before_anniversary = (born.dt.month > day.month) | ((born.dt.month == day.month) & (born.dt.day > day.day))
    return (y - before_anniversary.astype("Int64")).to_numpy(dtype=float, na_value=np.nan)


def _bitmask_labels(masks: list[np.ndarray], names: list[str]) -> np.ndarray:
    """'|'-joined names of the true masks, per row, via the (few) distinct patterns."""
    n = len(masks[0]) if masks else 0
    pattern = np.zeros(n, dtype=np.int64)
    for bit, m in enumerate(masks):
        pattern |= m.astype(np.int64) << bit
    uniq, inverse = np.unique(pattern, return_inverse=True)
    labels = np.array(["|".join(nm for b, nm in enumerate(names) if (int(p) >> b) & 1) for p in uniq], dtype=object)
    return labels[inverse] if n else np.array([], dtype=object)


# ---------------------------------------------------------------------------------------------
# Scoring primitives
# ---------------------------------------------------------------------------------------------
def score_inputs(table: SubItemTable, keys: tuple[str, ...], values: dict[str, np.ndarray]) -> ItemEval:
    """An ``inputs`` sub-item: the highest of its inputs' bin scores; unknown inputs -> missing."""
    n = len(next(iter(values.values())))
    score = np.zeros(n, dtype=np.int64)
    which = np.full(n, -1, dtype=np.int64)
    value = np.full(n, np.nan)
    any_missing = np.zeros(n, dtype=bool)
    first_missing = np.full(n, -1, dtype=np.int64)
    for j, key in enumerate(keys):
        bins = table.inputs[key]
        v = np.asarray(values[key], dtype=float)
        miss = np.isnan(v)
        idx = np.searchsorted(np.asarray(bins.edges, dtype=float), np.where(miss, -np.inf, v), side="right")
        s = np.where(miss, 0, np.asarray(bins.scores)[idx])
        better = s > score
        score = np.where(better, s, score)
        which = np.where(better, j, which)
        value = np.where(better, v, value)
        first_missing = np.where(miss & (first_missing < 0), j, first_missing)
        any_missing |= miss
    dominated = any_missing & (table.missing > score)
    score = np.where(any_missing, np.maximum(score, table.missing), score)
    which = np.where(dominated, first_missing, which)
    value = np.where(dominated, np.nan, value)
    return ItemEval(score, any_missing, np.full(n, -1, dtype=np.int64), which, value)


def score_cases(table: SubItemTable, keys: tuple[str, ...], case: np.ndarray) -> ItemEval:
    """A ``categories`` sub-item whose case is one value per customer (-1 = unknown -> missing)."""
    case = np.asarray(case, dtype=np.int64)
    scores = np.array([table.categories[k] for k in keys], dtype=np.int64)
    missing = case < 0
    score = np.where(missing, table.missing, scores[np.clip(case, 0, None)])
    n = len(case)
    return ItemEval(score, missing, np.where(missing, -1, case), np.full(n, -1, dtype=np.int64), np.full(n, np.nan))


def score_conditions(table: SubItemTable, keys: tuple[str, ...], masks: dict[str, np.ndarray], default: str,
                     unknown: np.ndarray | None = None) -> ItemEval:
    """A ``categories`` sub-item whose cases are conditions that may hold together: the applicable
    case with the highest score counts, ``default`` when none holds. Where ``unknown`` is true part
    of the information is missing: the item is marked and scores at least the ``missing`` score."""
    n = len(next(iter(masks.values())))
    case = np.full(n, -1, dtype=np.int64)
    score = np.zeros(n, dtype=np.int64)
    for k in sorted(masks, key=lambda k: -table.categories[k]):
        sel = masks[k] & (case < 0)
        case[sel] = keys.index(k)
        score[sel] = table.categories[k]
    none = case < 0
    case[none] = keys.index(default)
    score[none] = table.categories[default]
    missing = np.zeros(n, dtype=bool) if unknown is None else np.asarray(unknown, dtype=bool)
    dominated = missing & (table.missing > score)
    score = np.where(missing, np.maximum(score, table.missing), score)
    case = np.where(dominated, -1, case)
    return ItemEval(score, missing, case, np.full(n, -1, dtype=np.int64), np.full(n, np.nan))


# ---------------------------------------------------------------------------------------------
# The rating
# ---------------------------------------------------------------------------------------------
class _Ctx(NamedTuple):
    """Every customer column the sub-items read, normalised once."""

    n: int
    day: pd.Timestamp
    config: RulesConfig
    ctype: np.ndarray
    industry: np.ndarray
    channel: np.ndarray
    id_doc: np.ndarray
    nationality: pd.Series
    residence: pd.Series
    region: pd.Series
    years: np.ndarray  # whole years since birth or incorporation
    layers: np.ndarray
    pep: np.ndarray  # known true only; unknown is in pep_unknown
    pep_unknown: np.ndarray
    adverse_unknown: np.ndarray  # on_watchlist or refused_cdd unknown
    watch: np.ndarray
    refused: np.ndarray
    resident: np.ndarray
    agent: np.ndarray
    reports: np.ndarray
    phone_others: np.ndarray
    behaviour: pd.DataFrame


def _evaluate(item: spec.SubItemSpec, x: _Ctx) -> ItemEval:
    table = x.config.sub_items[item.id]
    keys = item.keys
    lists = x.config.lists
    b = x.behaviour

    def in_list(values: list[str]) -> np.ndarray:
        return (x.nationality.isin(values).to_numpy(dtype=bool, na_value=False)
                | x.residence.isin(values).to_numpy(dtype=bool, na_value=False))

    def counterparty(col: str) -> tuple[np.ndarray, np.ndarray]:
        v = b[col].to_numpy(dtype=float)
        return np.nan_to_num(v, nan=0.0) > 0, np.isnan(v)

    match item.id:
        case "information_disclosure":
            lookup = np.array([keys.index({"state_organ": "public_body", "soe": "public_body",
                                           "listed_company": "listed_company", "offshore": "offshore"}.get(i, "private"))
                               for i in OCCUPATIONS_OR_INDUSTRIES])
            return score_cases(table, keys, np.where(x.industry < 0, -1, lookup[np.clip(x.industry, 0, None)]))
        case "relationship_channel":
            return score_cases(table, keys, x.channel)
        case "id_document":
            return score_cases(table, keys, x.id_doc)
        case "report_history":
            return score_inputs(table, keys, {"suspicious_reports": x.reports.astype(float)})
        case "ownership_complexity":
            return score_inputs(table, keys, {"ownership_layers": x.layers})
        case "adverse_records":
            shared = x.phone_others >= x.config.proxies.shared_phone_min_others
            return score_conditions(table, keys, {"watchlist_or_refused_cdd": x.watch | x.refused, "shared_phone": shared},
                                    "none_found", x.adverse_unknown)
        case "age" | "corporate_age":
            return score_inputs(table, keys, {keys[0]: x.years})
        case "sanctioned_jurisdiction":
            hit, unknown = counterparty("sanctioned_cp_count")
            return score_conditions(table, keys, {"customer_country": in_list(lists.sanctioned), "counterparty_country": hit},
                                    "none", unknown)
        case "fatf_jurisdiction":
            black, unknown = counterparty("fatf_black_cp_count")
            grey, unknown_g = counterparty("fatf_grey_cp_count")
            return score_conditions(table, keys, {
                "customer_black": in_list(lists.fatf_black), "customer_grey": in_list(lists.fatf_grey),
                "counterparty_black": black, "counterparty_grey": grey}, "none", unknown | unknown_g)
        case "predicate_crime_region":
            listed = x.region.isin([r.upper() for r in lists.predicate_crime_regions]).to_numpy(dtype=bool, na_value=False)
            return score_cases(table, keys, np.where(x.region.isna().to_numpy(), -1, np.where(listed, 0, 1)))
        case "offshore_jurisdiction":
            hit, unknown = counterparty("offshore_cp_count")
            return score_conditions(table, keys, {"customer_country": in_list(lists.offshore), "counterparty_country": hit},
                                    "none", unknown)
        case "distance":
            bank = x.config.bank
            abroad = (x.residence != bank.country).to_numpy(dtype=bool, na_value=False)
            unknown = x.residence.isna().to_numpy()
            if bank.regions:
                outside = ~x.region.isin([r.upper() for r in bank.regions]).to_numpy(dtype=bool, na_value=False)
                unknown = unknown | x.region.isna().to_numpy()
                outside = outside & ~x.region.isna().to_numpy()
            else:
                outside = np.zeros(x.n, dtype=bool)
            return score_conditions(table, keys, {"abroad": abroad, "outside_bank_regions": outside}, "bank_region", unknown)
        case "cash_intensity" | "non_face_to_face" | "cross_border" | "agent_transactions" | "unusual_activity":
            return score_inputs(table, keys, {k: b[k].to_numpy(dtype=float) for k in keys})
        case "industry_risk":
            return score_cases(table, keys, x.industry)
        case "pep_association":
            return score_cases(table, keys, np.where(x.pep_unknown, -1, np.where(x.pep, 0, 1)))
    raise AssertionError(f"no evaluator for sub-item {item.id}")  # pragma: no cover - spec and code edited together


def _prepare_behaviour(behaviour: pd.DataFrame | None, ids: pd.Index) -> pd.DataFrame:
    cols = SHARE_COLUMNS + COUNT_COLUMNS + COUNTERPARTY_COLUMNS
    if behaviour is None:
        return pd.DataFrame(np.nan, index=ids, columns=list(cols))
    b = behaviour
    if "customer_id" in b.columns:
        b = b.set_index("customer_id")
    b = b.copy()
    b.index = b.index.astype(str)
    missing = [col for col in SHARE_COLUMNS + COUNT_COLUMNS if col not in b.columns]
    if missing:
        raise AmlError(f"behaviour is missing column(s): {', '.join(missing)} (build it with customer_behaviour)")
    has_cp = all(col in b.columns for col in COUNTERPARTY_COLUMNS)
    out = b.reindex(ids)[[col for col in cols if col in b.columns]].astype(float)
    for col in COUNT_COLUMNS:
        out[col] = out[col].fillna(0.0)  # no transaction in the window: counts and highest ratios are 0
    for col in COUNTERPARTY_COLUMNS:
        out[col] = out[col].fillna(0.0) if has_cp else np.nan
    return out


def _suspicious_counts(reports: pd.DataFrame, ids: pd.Index, day: pd.Timestamp) -> np.ndarray:
    need = ("customer_id", "report_date", "label")
    missing = [col for col in need if col not in reports.columns]
    if missing:
        raise AmlError(f"reports is missing column(s): {', '.join(missing)}")
    label = reports["label"].astype("string").str.strip().str.lower()
    before = _days(reports["report_date"]) < day
    sel = (label == "suspicious").fillna(False) & before.fillna(False)
    counts = reports.loc[sel.to_numpy(), "customer_id"].astype(str).value_counts()
    return counts.reindex(ids, fill_value=0).to_numpy(dtype=np.int64)


def rate_customers(customers: pd.DataFrame, reports: pd.DataFrame, behaviour: pd.DataFrame | None,
                   config: RulesConfig | None, as_of: DateLike, *, assets: pd.Series | None = None,
                   previous: pd.DataFrame | None = None, progress: Progress | None = None) -> RatingResult:
    """Rate customers at ``as_of``.

    Parameters
    ----------
    customers : DataFrame
        The contract's customers table (typed by ``contract.load_dataset`` or plain strings).
        Customers onboarded after ``as_of`` are left out.
    reports : DataFrame
        The contract's reports table (an empty frame when there is none): suspicious reports with
        ``report_date`` before ``as_of`` count.
    behaviour : DataFrame or None
        :func:`amlscore.models.rules.behaviour.customer_behaviour` output at the same date. ``None``: the
        business sub-items (and counterparty countries) are unknown, hence missing.
    config : RulesConfig or None
        ``None`` loads the packaged configuration.
    as_of : date
        The rating date.
    assets : Series, optional
        Assets held, CNY, indexed by customer_id (not in the data contract). Unknown assets
        refuse direct-to-lowest.
    previous : DataFrame, optional
        Earlier ratings (``customer_id``, ``rated_at``) to tell first ratings apart.
    progress : callable, optional
        Called as ``progress(stage, done, total)`` while rating.

    Returns
    -------
    RatingResult
    """
    config = config if config is not None else load_rules_config()
    day = to_day(as_of)
    if reports is None:
        raise AmlError("The 'reports' parameter of rate_customers must be a DataFrame (an empty one when "
                       "there is no report). Got None instead.")
    missing_cols = [col for col in CUSTOMER_COLUMNS if col not in customers.columns]
    if missing_cols:
        raise AmlError(f"customers is missing column(s): {', '.join(missing_cols)}")
    onboarded = _days(customers["onboarded_at"])
    c = customers.loc[~(onboarded > day).to_numpy()]
    onboarded = onboarded.loc[c.index]
    ids = pd.Index(c["customer_id"].astype(str).to_numpy(), name="customer_id")
    if ids.has_duplicates:
        dup = ids[ids.duplicated()].unique()[:5]
        raise AmlError(f"customers.customer_id must be unique. Got duplicates {', '.join(map(repr, dup))} instead.")
    n = len(c)
    ctype = _codes(c["customer_type"], spec.CUSTOMER_TYPES)
    if (ctype < 0).any():
        bad = c["customer_type"][ctype < 0].astype(str).unique()[:5]
        raise AmlError(f"customers.customer_type must be one of individual, corporate. Got {', '.join(map(repr, bad))} instead.")
    is_new = ((day - onboarded).dt.days < config.customers.new_customer_days).fillna(False).to_numpy(dtype=bool)
    set_idx = ctype.astype(np.int64) * 2 + (~is_new).astype(np.int64)  # WEIGHT_SET_NAMES order

    phone = _text(c["phone"])
    phone_codes = pd.factorize(phone)[0]  # an empty phone is -1: shared with nobody
    phone_counts = np.bincount(phone_codes + 1, minlength=1)
    phone_others = np.where(phone_codes >= 0, phone_counts[phone_codes + 1] - 1, 0)
    x = _Ctx(
        n=n, day=day, config=config, ctype=ctype,
        industry=_codes(c["occupation_or_industry"], OCCUPATIONS_OR_INDUSTRIES),
        channel=_codes(c["onboarding_channel"], ONBOARDING_CHANNELS),
        id_doc=_codes(c["id_document_type"], ID_DOCUMENT_TYPES),
        nationality=_text(c["nationality"], upper=True), residence=_text(c["residence_country"], upper=True),
        region=_text(c["home_region"], upper=True),
        years=_whole_years(_days(c["birth_or_incorporation_date"]), day),
        layers=pd.to_numeric(c["ownership_layers"], errors="coerce").to_numpy(dtype=float, na_value=np.nan),
        pep=_flag(c["is_pep"], False), watch=_flag(c["on_watchlist"], False), refused=_flag(c["refused_cdd"], False),
        pep_unknown=_unknown(c["is_pep"]), adverse_unknown=_unknown(c["on_watchlist"]) | _unknown(c["refused_cdd"]),
        resident=_flag(c["is_resident"], False), agent=_text(c["agent_id"]).notna().to_numpy(),
        reports=_suspicious_counts(reports, ids, day), phone_others=phone_others,
        behaviour=_prepare_behaviour(behaviour, ids),
    )

    # -- sub-items ---------------------------------------------------------------------------
    items = [s for s in spec.SUB_ITEMS if any(config.item_weight(ws, s.id) > 0 for ws in spec.WEIGHT_SET_NAMES)]
    total_steps = len(items) + 2
    evals: dict[str, ItemEval] = {}
    for step, item in enumerate(items, start=1):
        evals[item.id] = _evaluate(item, x)
        if progress:
            progress(item.id, step, total_steps)
    m = config.max_item_score
    W = np.array([[config.item_weight(ws, s.id) for s in items] for ws in spec.WEIGHT_SET_NAMES])  # (4, J)
    weights = W[set_idx] if n else np.zeros((0, len(items)))  # (n, J)
    scores = np.stack([evals[s.id].score for s in items], axis=1) if n else np.zeros((0, len(items)))
    contrib = weights * scores / m
    total = np.round(contrib.sum(axis=1), 2)
    element_scores = {el: contrib[:, [j for j, s in enumerate(items) if s.element == el]].sum(axis=1) for el in spec.ELEMENTS}

    # -- bands and overrides -----------------------------------------------------------------
    lowers = np.array([lv.band[0] for lv in config.levels])[::-1]  # ascending
    n_levels = len(config.levels)
    band_rank = (n_levels - 1) - (np.searchsorted(lowers, total, side="right") - 1)
    c_reports = x.reports
    highest = {
        "watchlist": x.watch,
        "pep": x.pep,
        "repeated_reports": c_reports >= config.direct_to_highest.repeated_reports_min,
        "refused_cdd": x.refused,
    }
    to_highest = np.logical_or.reduce(list(highest.values())) if n else np.zeros(0, dtype=bool)
    refusals = _lowest_refusals(x, config, assets, ids, to_highest)
    eligible = ~np.logical_or.reduce(list(refusals.values())) if n else np.zeros(0, dtype=bool)
    dl = config.direct_to_lowest
    candidate = dl.enabled & np.isin(x.industry, [OCCUPATIONS_OR_INDUSTRIES.index(i) for i in dl.candidate_industries])
    to_lowest = candidate & eligible & ~to_highest
    rank = np.where(to_highest, 0, np.where(to_lowest, n_levels - 1, band_rank))
    basis = np.where(to_highest, "direct_to_highest", np.where(to_lowest, "direct_to_lowest", "weighted_score"))

    missing = np.stack([evals[s.id].missing for s in items], axis=1) & (weights > 0) if n else np.zeros((0, len(items)), bool)
    level_ids = np.array(config.level_ids, dtype=object)
    ratings = pd.DataFrame({
        "customer_id": ids.to_numpy(),
        "customer_type": np.array(spec.CUSTOMER_TYPES, dtype=object)[ctype],
        "weight_set": np.array(spec.WEIGHT_SET_NAMES, dtype=object)[set_idx],
        "is_new": is_new,
        "score": total,
        **{f"score_{el}": np.round(v, 2) for el, v in element_scores.items()},
        "score_level": level_ids[band_rank],
        "level": level_ids[rank],
        "level_rank": rank.astype(np.int64),
        "level_name_en": np.array([lv.name.en for lv in config.levels], dtype=object)[rank],
        "level_name_zh": np.array([lv.name.zh for lv in config.levels], dtype=object)[rank],
        "rating_basis": basis,
        "highest_reasons": _bitmask_labels(list(highest.values()), list(highest)),
        "lowest_candidate": candidate,
        "lowest_eligible": eligible,
        "lowest_refusals": _bitmask_labels(list(refusals.values()), list(refusals)),
        "n_missing": missing.sum(axis=1).astype(np.int64),
        "missing_items": _bitmask_labels([missing[:, j] for j in range(len(items))], [s.id for s in items]),
        "rated_at": np.full(n, day.to_datetime64()).astype("datetime64[ns]"),
    })
    if progress:
        progress("review dates", len(items) + 1, total_steps)
    sched = review_schedule(ratings[["customer_id", "level", "rated_at"]], config, previous=previous)
    ratings["is_first_rating"] = sched["is_first_rating"].to_numpy()
    ratings["review_interval_months"] = sched["review_interval_months"].to_numpy()
    ratings["next_review"] = sched["next_review"].to_numpy()
    ratings["config_hash"] = config.hash

    breakdown = _breakdown(ids, items, evals, weights, contrib)
    if progress:
        progress("breakdown", total_steps, total_steps)
    return RatingResult(ratings=ratings, breakdown=breakdown, config=config, as_of=day.date())


def _lowest_refusals(x: _Ctx, config: RulesConfig, assets: pd.Series | None, ids: pd.Index,
                     to_highest: np.ndarray) -> dict[str, np.ndarray]:
    n = x.n
    if assets is None:
        a = np.full(n, np.nan)
    else:
        s = assets.copy()
        s.index = s.index.astype(str)
        a = pd.to_numeric(s, errors="coerce").reindex(ids).to_numpy(dtype=float)
    limit = np.where(x.ctype == spec.CUSTOMER_TYPES.index("individual"),
                     config.direct_to_lowest.individual_assets_limit, config.direct_to_lowest.non_individual_assets_limit)
    trust = [OCCUPATIONS_OR_INDUSTRIES.index(i) for i in config.proxies.correspondent_or_trust_industries]
    plain_id = np.isin(x.id_doc, [ID_DOCUMENT_TYPES.index("resident_id"), ID_DOCUMENT_TYPES.index("business_license")])
    agent_channel = np.isin(x.channel, [ONBOARDING_CHANNELS.index("agent"), ONBOARDING_CHANNELS.index("intermediary")]) | (x.channel < 0)
    operated = np.nan_to_num(x.behaviour["operated_by_other_share"].to_numpy(dtype=float), nan=0.0) > 0
    return {
        "assets_unknown": np.isnan(a),
        "assets_above_limit": np.nan_to_num(a, nan=-np.inf) > limit,
        "correspondent_or_trust": np.isin(x.industry, trust) | (x.industry < 0),
        "non_resident_or_foreign_id": ~x.resident | ~plain_id,
        "suspicious_report": x.reports >= 1,
        "agent_representation": x.agent | agent_channel | operated,
        "refused_cdd": x.refused,
        "direct_to_highest": to_highest,
    }


def _breakdown(ids: pd.Index, items: list[spec.SubItemSpec], evals: dict[str, ItemEval], weights: np.ndarray,
               contrib: np.ndarray) -> pd.DataFrame:
    case_vocab = [""] + sorted({k for s in items if s.kind == "categories" for k in s.keys})
    input_vocab = [""] + sorted({k for s in items if s.kind == "inputs" for k in s.keys})
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("pos", "item", "score", "weight", "contrib", "missing", "case", "input", "value")}
    for j, s in enumerate(items):
        sel = np.flatnonzero(weights[:, j] > 0)
        e = evals[s.id]
        key_to_case = np.array([case_vocab.index(k) if s.kind == "categories" else 0 for k in s.keys] + [0])
        key_to_input = np.array([input_vocab.index(k) if s.kind == "inputs" else 0 for k in s.keys] + [0])
        parts["pos"].append(sel)
        parts["item"].append(np.full(len(sel), j))
        parts["score"].append(e.score[sel])
        parts["weight"].append(weights[sel, j])
        parts["contrib"].append(contrib[sel, j])
        parts["missing"].append(e.missing[sel])
        parts["case"].append(key_to_case[e.case[sel]])  # -1 -> the trailing 0 ("")
        parts["input"].append(key_to_input[e.input[sel]])
        parts["value"].append(e.value[sel])
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    order = np.argsort(cat["pos"], kind="stable")
    item_idx = cat["item"][order].astype(np.int64)
    element_vocab = list(spec.ELEMENTS)
    item_element = np.array([element_vocab.index(s.element) for s in items], dtype=np.int64)
    return pd.DataFrame({
        # a categorical: 1.9 M repeated ids would otherwise be converted string by string
        "customer_id": pd.Categorical.from_codes(cat["pos"][order].astype(np.int64), categories=ids),
        "element": pd.Categorical.from_codes(item_element[item_idx], categories=element_vocab),
        "sub_item": pd.Categorical.from_codes(item_idx, categories=[s.id for s in items]),
        "score": cat["score"][order].astype(np.int64),
        "weight": cat["weight"][order].astype(float),
        "contribution": cat["contrib"][order].astype(float),
        "missing": cat["missing"][order].astype(bool),
        "case": pd.Categorical.from_codes(cat["case"][order].astype(np.int64), categories=case_vocab),
        "input": pd.Categorical.from_codes(cat["input"][order].astype(np.int64), categories=input_vocab),
        "value": cat["value"][order].astype(float),
    })
