"""The rating's fixed vocabulary: elements, sub-items, their cases and inputs.

What a sub-item *means* (which customer column or behaviour measure feeds it) is code and lives
here; how it is *scored* and *weighted* is data and lives in ``amlscore/models/config/rules.yaml``. The
configuration may only name sub-items, cases and inputs declared here ("known sub-items only").

Two kinds of sub-item:

* ``categories``: the customer falls into one of a few named cases (its onboarding channel, its
  industry, "a counterparty in a sanctioned country"...); the configuration gives each case a
  score. When several cases apply at once, the one with the highest configured score counts.
* ``inputs``: one or more numbers (a share, a count, an age); the configuration gives each input
  a binning table; the sub-item's score is the highest of its inputs' scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from amlscore.contract.schema import ID_DOCUMENT_TYPES, ONBOARDING_CHANNELS, OCCUPATIONS_OR_INDUSTRIES

ELEMENTS: tuple[str, ...] = ("customer", "geography", "business", "industry")
CUSTOMER_TYPES: tuple[str, ...] = ("individual", "corporate")
WEIGHT_SET_NAMES: tuple[str, ...] = ("individual_new", "individual_existing", "corporate_new", "corporate_existing")

# Regulatory limits the configuration may tighten but never relax (PBoC 2013 guideline, PBoC
# order 2016 No. 3 on large-value and suspicious transaction reports).
HIGHEST_LEVEL_REVIEW_MAX_MONTHS = 6
FIRST_RATING_REVIEW_MAX_MONTHS = 36
REVIEW_INTERVAL_MAX_RATIO = 2.0
NEW_CUSTOMER_RATING_MAX_WORKING_DAYS = 10
INDIVIDUAL_ASSETS_LIMIT = 200_000.0
NON_INDIVIDUAL_ASSETS_LIMIT = 500_000.0
LARGE_CASH_THRESHOLD = 50_000.0
CORPORATE_TRANSFER_THRESHOLD = 2_000_000.0
INDIVIDUAL_DOMESTIC_TRANSFER_THRESHOLD = 500_000.0
INDIVIDUAL_CROSS_BORDER_TRANSFER_THRESHOLD = 200_000.0


@dataclass(frozen=True)
class SubItemSpec:
    """One sub-item of a basic element."""

    id: str
    element: str
    applies_to: tuple[str, ...]
    kind: Literal["categories", "inputs"]
    keys: tuple[str, ...]  # case ids (categories) or input ids (inputs), in display order


_BOTH = CUSTOMER_TYPES
SUB_ITEMS: tuple[SubItemSpec, ...] = (
    # -- customer characteristics -------------------------------------------------------------
    SubItemSpec("information_disclosure", "customer", ("corporate",), "categories",
                ("public_body", "listed_company", "private", "offshore")),
    SubItemSpec("relationship_channel", "customer", _BOTH, "categories", ONBOARDING_CHANNELS),
    SubItemSpec("id_document", "customer", _BOTH, "categories", ID_DOCUMENT_TYPES),
    SubItemSpec("report_history", "customer", _BOTH, "inputs", ("suspicious_reports",)),
    SubItemSpec("ownership_complexity", "customer", ("corporate",), "inputs", ("ownership_layers",)),
    SubItemSpec("adverse_records", "customer", _BOTH, "categories",
                ("watchlist_or_refused_cdd", "shared_phone", "none_found")),
    SubItemSpec("age", "customer", ("individual",), "inputs", ("age_years",)),
    SubItemSpec("corporate_age", "customer", ("corporate",), "inputs", ("years_in_existence",)),
    # -- geography ----------------------------------------------------------------------------
    SubItemSpec("sanctioned_jurisdiction", "geography", _BOTH, "categories",
                ("customer_country", "counterparty_country", "none")),
    SubItemSpec("fatf_jurisdiction", "geography", _BOTH, "categories",
                ("customer_black", "customer_grey", "counterparty_black", "counterparty_grey", "none")),
    SubItemSpec("predicate_crime_region", "geography", _BOTH, "categories", ("listed_region", "other_region")),
    SubItemSpec("offshore_jurisdiction", "geography", _BOTH, "categories",
                ("customer_country", "counterparty_country", "none")),
    SubItemSpec("distance", "geography", _BOTH, "categories", ("bank_region", "outside_bank_regions", "abroad")),
    # -- business (behaviour) -----------------------------------------------------------------
    SubItemSpec("cash_intensity", "business", _BOTH, "inputs", ("cash_share", "peer_cash_ratio")),
    SubItemSpec("non_face_to_face", "business", _BOTH, "inputs", ("non_face_to_face_share",)),
    SubItemSpec("cross_border", "business", _BOTH, "inputs", ("cross_border_share", "high_risk_txn_count")),
    SubItemSpec("agent_transactions", "business", _BOTH, "inputs", ("operated_by_other_share", "operator_customers")),
    SubItemSpec("unusual_activity", "business", _BOTH, "inputs", ("unusual_txn_count", "peer_txn_freq_ratio")),
    # -- industry and occupation ----------------------------------------------------------------
    SubItemSpec("industry_risk", "industry", _BOTH, "categories", OCCUPATIONS_OR_INDUSTRIES),
    SubItemSpec("pep_association", "industry", _BOTH, "categories", ("pep", "not_pep")),
)
SUB_ITEMS_BY_ID: dict[str, SubItemSpec] = {s.id: s for s in SUB_ITEMS}
SUB_ITEM_IDS: tuple[str, ...] = tuple(s.id for s in SUB_ITEMS)

# Codes used in the ``highest_reasons`` and ``lowest_refusals`` columns, in display order.
HIGHEST_REASONS: tuple[str, ...] = ("watchlist", "pep", "repeated_reports", "refused_cdd")
LOWEST_REFUSALS: tuple[str, ...] = (
    "assets_unknown",
    "assets_above_limit",
    "correspondent_or_trust",
    "non_resident_or_foreign_id",
    "suspicious_report",
    "agent_representation",
    "refused_cdd",
    "direct_to_highest",
)
SUPPRESSION_REASONS: tuple[str, ...] = ("state_counterparty", "repeat_dismissed_low_risk")
