"""From window primitives to catalogue features: the formulas, written once for both paths.

Both paths compute the same primitives (exact integer window sums, running sums of squares, window
maxima, distinct counts, times of previous events, peer totals) and end in the same compiled row
loop, :func:`finalize_rows`, which applies every formula of the catalogue: the offline path through
:func:`finalize` (a :class:`Primitives` batch of thousands of rows), the online path from its own
compiled step with one packed row (columns :data:`FACT_COLUMNS` + :data:`PACKED_PRIMITIVES`). The code and the floating-point operations are the same,
which is why the two paths agree to the last bit. The values each window sum adds per transaction
(:func:`sum_values_row`) are defined here once for both paths too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from amlscore.features.catalogue import CATALOGUE, CHANNEL_SHARE_NAMES, WINDOWS
from amlscore.features.events import FACT_COLUMNS, WINDOW_SUM_INDEX, WINDOW_SUMS
from amlscore.features.params import FeatureParams
from amlscore.features.registry import DAY_NS, HOUR_NS, UNKNOWN_ONBOARD_NS

VELOCITY_WINDOWS = tuple(WINDOWS)  # 1h, 24h, 7d, 30d, 90d
DISTINCT_FEATURES = ("fan_in_7d", "fan_out_7d", "fan_in_30d", "fan_out_30d", "ip_customers_24h", "ip_customers_7d",
                     "device_customers_24h", "device_customers_7d", "operator_customers_30d")
FEATURE_INDEX = {s.name: i for i, s in enumerate(CATALOGUE)}


@dataclass
class Primitives:
    """Everything a batch of feature rows is computed from (arrays of length n unless noted)."""

    sums: np.ndarray  # int64 (n, len(WINDOW_SUMS))
    sumsq_in: np.ndarray  # float64 (n, 5): sum of amount^2 of incoming txns per velocity window
    sumsq_out: np.ndarray
    max_in: np.ndarray  # float64 (n, 5)
    max_out: np.ndarray
    distinct: dict[str, np.ndarray]  # DISTINCT_FEATURES -> int64
    is_new_cp: np.ndarray
    prev_t: np.ndarray  # previous transaction time, or onboarding instant for the first
    last_in_t: np.ndarray  # latest earlier incoming time, -1 when none
    onboard_ns: np.ndarray
    peer_cash_fen: np.ndarray  # peer group's cash over the lookback days before the transaction's day
    peer_txn_cnt: np.ndarray
    peer_size: np.ndarray
    agent_other: np.ndarray
    phone_other: np.ndarray
    emergency_other: np.ndarray
    is_corporate: np.ndarray
    income: np.ndarray


def reactivation_flags(t_ns: np.ndarray, prev_t: np.ndarray, params: FeatureParams) -> np.ndarray:
    """A transaction after at least ``dormancy_days`` of silence (or since onboarding); never the first
    transaction of a customer whose onboarding date is unknown (no silence is known)."""
    known = np.asarray(prev_t) != UNKNOWN_ONBOARD_NS
    gap = np.where(known, np.asarray(t_ns) - np.where(known, prev_t, 0), 0)
    return known & (gap >= int(round(params.dormancy_days * DAY_NS)))


# ---- packing: named columns of the kernel's inputs ------------------------------------------------
_FACT_COLS = FACT_COLUMNS
_PRIM_COLS = ("is_new_cp", "prev_t", "last_in_t", "onboard_ns", "peer_cash_fen", "peer_txn_cnt",
              "peer_size", "agent_other", "phone_other", "emergency_other", "is_corporate") + DISTINCT_FEATURES
_EV_INT = _FACT_COLS + _PRIM_COLS
_EV = {name: i for i, name in enumerate(_EV_INT)}


def _pack_primitives(p: Primitives, n: int) -> np.ndarray:
    m = np.empty((n, len(_PRIM_COLS)), dtype=np.int64)
    n_plain = len(_PRIM_COLS) - len(DISTINCT_FEATURES)
    for j, name in enumerate(_PRIM_COLS[:n_plain]):
        m[:, j] = getattr(p, name)
    for j, name in enumerate(DISTINCT_FEATURES, start=n_plain):
        m[:, j] = p.distinct[name]
    return m


def finalize(fact_matrix: np.ndarray, amount: np.ndarray, p: Primitives, params: FeatureParams) -> np.ndarray:
    """Every catalogue feature for the batch as a float64 matrix (n, features) in catalogue order.

    ``fact_matrix`` holds the packed facts (:data:`FACT_COLUMNS`, ``EventFacts.matrix``); ``amount`` is the
    transactions' amounts in CNY.
    """
    n = fact_matrix.shape[0]
    ev = np.concatenate([fact_matrix, _pack_primitives(p, n)], axis=1)
    amounts = np.empty((n, 2), dtype=np.float64)
    amounts[:, 0] = amount
    amounts[:, 1] = p.income
    sq = np.concatenate([p.sumsq_in, p.sumsq_out], axis=1)
    mx = np.concatenate([p.max_in, p.max_out], axis=1)
    return finalize_rows(ev, amounts, np.ascontiguousarray(p.sums), sq, mx, finalize_constants(params))


# Column order of the packed event row: FACT_COLUMNS, then these primitives (the online path
# builds one such row directly instead of going through Primitives).
PACKED_PRIMITIVES = _PRIM_COLS


def finalize_constants(params: FeatureParams) -> np.ndarray:
    """The parameters the formulas read, as the kernel takes them."""
    return np.array([params.dormancy_days * DAY_NS, params.peer_cash_floor, params.peer_count_floor,
                     params.own_std_floor], dtype=np.float64)


# Window-sum inputs: each WINDOW_SUMS column adds 1 (counts) or the amount in fen where its condition holds.
_SUM_CONDITION = {
    "in": "is_in", "out": "!is_in", "cash_dep": "is_cash_dep", "cash_wd": "is_cash_wd", "near": "is_near_threshold",
    "round": "is_round", "night": "is_night", "cross": "is_cross_border", "hr": "is_high_risk",
    "ipab": "is_ip_abroad", "ipout": "is_ip_outside", "newcp": "@is_new_cp", "ci": "is_corp_indiv",
    "react": "@is_reactivation",
}


def _sum_plan() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each WINDOW_SUMS column: source column (fact, or -1/-2 for new-counterparty/reactivation,
    or -10-c for channel c), whether it is negated, whether it adds fen."""
    src, neg, fen = [], [], []
    for name, window in WINDOW_SUMS:
        stem, unit = name[: -len(window) - 1].rsplit("_", 1)
        fen.append(unit == "fen")
        if stem.startswith("ch"):
            src.append(-10 - int(stem[2:]))
            neg.append(False)
            continue
        cond = _SUM_CONDITION[stem]
        neg.append(cond.startswith("!"))
        cond = cond.lstrip("!")
        src.append({"@is_new_cp": -1, "@is_reactivation": -2}.get(cond, _FACT_COLS.index(cond) if cond[0] != "@" else 0))
    return np.array(src), np.array(neg), np.array(fen)


SUM_SRC, SUM_NEG, SUM_FEN = _sum_plan()
N_SUMS = len(WINDOW_SUMS)
FACT_FEN, FACT_CHANNEL = _FACT_COLS.index("fen"), _FACT_COLS.index("channel")


@njit(cache=True)
def window_sum_values(fact_matrix: np.ndarray, is_new_cp: np.ndarray, is_reactivation: np.ndarray
                      ) -> np.ndarray:  # pragma: no cover - compiled
    """The per-transaction values that WINDOW_SUMS add up, shape (n, len(WINDOW_SUMS)), int64."""
    n = fact_matrix.shape[0]
    out = np.zeros((n, N_SUMS), dtype=np.int64)
    for i in range(n):
        sum_values_row(fact_matrix[i], is_new_cp[i] != 0, is_reactivation[i] != 0, out[i])
    return out


@njit(cache=True)
def sum_values_row(facts: np.ndarray, is_new_cp: bool, is_reactivation: bool,
                   out: np.ndarray) -> None:  # pragma: no cover - compiled
    """One row of :func:`window_sum_values` (``out`` starts at zero): 1 or the amount in fen per
    WINDOW_SUMS column whose condition holds."""
    for j in range(N_SUMS):
        s = SUM_SRC[j]
        if s == -1:
            hit = is_new_cp
        elif s == -2:
            hit = is_reactivation
        elif s <= -10:
            hit = facts[FACT_CHANNEL] == -10 - s
        else:
            hit = facts[s] != 0
        if SUM_NEG[j]:
            hit = not hit
        if hit:
            out[j] = facts[FACT_FEN] if SUM_FEN[j] else 1


# ---- the formulas ------------------------------------------------------------------------------
# Index constants are module globals so that numba freezes them into the compiled kernel.
_S = WINDOW_SUM_INDEX
_F = FEATURE_INDEX
_VEL = tuple((d, w) for d in ("in", "out") for w in VELOCITY_WINDOWS)
VEL_CNT = np.array([_S[f"{d}_cnt_{w}"] for d, w in _VEL])
VEL_FEN = np.array([_S[f"{d}_fen_{w}"] for d, w in _VEL])
OUT_CNT = np.array([_F[f"{d}_cnt_{w}"] for d, w in _VEL])
OUT_SUM = np.array([_F[f"{d}_sum_{w}"] for d, w in _VEL])
OUT_MEAN = np.array([_F[f"{d}_mean_{w}"] for d, w in _VEL])
OUT_MAX = np.array([_F[f"{d}_max_{w}"] for d, w in _VEL])
OUT_STD = np.array([_F[f"{d}_std_{w}"] for d, w in _VEL])
# window sums that are features as they are (counts) or in CNY (fen / 100)
_PLAIN_COUNTS = (
    [(f"cash_dep_cnt_{w}", f"cash_dep_cnt_{w}") for w in ("24h", "7d", "30d")]
    + [(f"cash_wd_cnt_{w}", f"cash_wd_cnt_{w}") for w in ("24h", "7d", "30d")]
    + [(f"near_threshold_cash_cnt_{w}", f"near_cnt_{w}") for w in ("24h", "7d", "30d")]
    + [(f"new_cp_cnt_{w}", f"newcp_cnt_{w}") for w in ("7d", "30d")]
    + [("corp_indiv_cnt_30d", "ci_cnt_30d"), ("high_risk_cnt_30d", "hr_cnt_30d"), ("ip_abroad_cnt_7d", "ipab_cnt_7d"),
       ("ip_outside_region_cnt_7d", "ipout_cnt_7d")]
)
_PLAIN_AMOUNTS = (
    [(f"cash_dep_sum_{w}", f"cash_dep_fen_{w}") for w in ("24h", "7d", "30d")]
    + [(f"cash_wd_sum_{w}", f"cash_wd_fen_{w}") for w in ("24h", "7d", "30d")]
    + [("near_threshold_cash_sum_7d", "near_fen_7d"), ("corp_indiv_sum_30d", "ci_fen_30d"),
       ("high_risk_sum_30d", "hr_fen_30d")]
)
_SHARES_30D = [("night_share_30d", "night_cnt_30d"), ("round_amount_share_30d", "round_cnt_30d"),
               ("cross_border_share_30d", "cross_cnt_30d")] + [
    (f"share_{name}_30d", f"ch{c}_cnt_30d") for c, name in enumerate(CHANNEL_SHARE_NAMES)]
PLAIN_CNT_SRC = np.array([_S[s] for _, s in _PLAIN_COUNTS])
PLAIN_CNT_OUT = np.array([_F[f] for f, _ in _PLAIN_COUNTS])
PLAIN_AMT_SRC = np.array([_S[s] for _, s in _PLAIN_AMOUNTS])
PLAIN_AMT_OUT = np.array([_F[f] for f, _ in _PLAIN_AMOUNTS])
SHARE_SRC = np.array([_S[s] for _, s in _SHARES_30D])
SHARE_OUT = np.array([_F[f] for f, _ in _SHARES_30D])
# event columns copied as they are: (output feature, event column)
_COPIED = [("channel_code", "channel"), ("txn_type_code", "txn_type"), ("is_in", "is_in"), ("hour_local", "hour_local"),
           ("is_night", "is_night"), ("is_weekend", "is_weekend"), ("is_cash", "is_cash"),
           ("is_large_cash", "is_large_cash"), ("is_near_threshold_cash", "is_near_threshold"),
           ("is_round_amount", "is_round"), ("is_new_counterparty", "is_new_cp"), ("is_corp_indiv", "is_corp_indiv"),
           ("is_cross_border", "is_cross_border"), ("is_high_risk_country", "is_high_risk"),
           ("is_ip_abroad", "is_ip_abroad"), ("is_ip_outside_home_region", "is_ip_outside"),
           ("is_operated_by_other", "is_operated"), ("agent_other_customers", "agent_other"),
           ("phone_other_customers", "phone_other"), ("emergency_phone_other_customers", "emergency_other"),
           ("is_corporate", "is_corporate")] + [(name, name) for name in DISTINCT_FEATURES]
COPY_SRC = np.array([_EV[e] for _, e in _COPIED])
COPY_OUT = np.array([_F[f] for f, _ in _COPIED])

S_IN_CNT_30D, S_OUT_CNT_30D = _S["in_cnt_30d"], _S["out_cnt_30d"]
S_IN_FEN = {w: _S[f"in_fen_{w}"] for w in VELOCITY_WINDOWS}
S_OUT_FEN = {w: _S[f"out_fen_{w}"] for w in VELOCITY_WINDOWS}
S_IN_FEN_24H, S_OUT_FEN_24H = S_IN_FEN["24h"], S_OUT_FEN["24h"]
S_IN_FEN_7D, S_OUT_FEN_7D = S_IN_FEN["7d"], S_OUT_FEN["7d"]
S_IN_FEN_30D, S_OUT_FEN_30D = S_IN_FEN["30d"], S_OUT_FEN["30d"]
S_IN_FEN_90D, S_OUT_FEN_90D = S_IN_FEN["90d"], S_OUT_FEN["90d"]
S_IN_CNT_90D, S_OUT_CNT_90D = _S["in_cnt_90d"], _S["out_cnt_90d"]
S_CASH_DEP_FEN_30D, S_CASH_WD_FEN_30D = _S["cash_dep_fen_30d"], _S["cash_wd_fen_30d"]
S_REACT_30D = _S["react_cnt_30d"]
E_T, E_FEN, E_IN = _EV["t_ns"], _EV["fen"], _EV["is_in"]
E_PREV, E_LAST_IN, E_ONBOARD = _EV["prev_t"], _EV["last_in_t"], _EV["onboard_ns"]
E_PEER_CASH, E_PEER_CNT, E_PEER_SIZE = _EV["peer_cash_fen"], _EV["peer_txn_cnt"], _EV["peer_size"]
F_AMOUNT, F_LOG_AMOUNT = _F["amount"], _F["log_amount"]
F_CASH_SHARE, F_IN_SHARE = _F["cash_share_30d"], _F["in_share_30d"]
F_PT_24H, F_PT_7D, F_RESIDUAL = _F["passthrough_ratio_24h"], _F["passthrough_ratio_7d"], _F["residual_balance_ratio_7d"]
F_HOURS_LAST_IN, F_OUT_24H_IN = _F["hours_since_last_in"], _F["out_within_24h_of_in"]
F_DAYS_PREV, F_REACT, F_REACT_30D, F_AGE = (_F["days_since_prev_txn"], _F["is_reactivation"], _F["reactivated_30d"],
                                           _F["account_age_days"])
F_PEER_CASH, F_PEER_FREQ = _F["peer_cash_ratio_30d"], _F["peer_txn_freq_ratio_30d"]
F_OWN_MEAN, F_OWN_Z = _F["amount_vs_own_mean_90d"], _F["amount_z_own_90d"]
F_FLOW_INCOME, F_IN_INCOME = _F["flow_vs_income_90d"], _F["in_vs_income_30d"]
N_FEATURES = len(CATALOGUE)
HOUR = float(HOUR_NS)
DAY = float(DAY_NS)


@njit(cache=True, inline="always")
def _ratio(num: float, den: float, empty: float) -> float:  # pragma: no cover - compiled
    return num / den if den > 0 else empty


@njit(cache=True)
def finalize_rows(ev: np.ndarray, amounts: np.ndarray, S: np.ndarray, sq: np.ndarray, mx: np.ndarray,
                   consts: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The catalogue's formulas, row by row (see amlscore/features/catalogue.py for each in words)."""
    n = ev.shape[0]
    out = np.empty((n, N_FEATURES), dtype=np.float64)
    dormancy_ns, peer_cash_floor, peer_count_floor, own_std_floor = consts[0], consts[1], consts[2], consts[3]
    nan = np.nan
    for i in range(n):
        # velocity: counts, exact sums, means, maxima, population standard deviations
        for k in range(VEL_CNT.shape[0]):
            cnt = float(S[i, VEL_CNT[k]])
            total = S[i, VEL_FEN[k]] / 100.0
            mean = _ratio(total, cnt, 0.0)
            var = _ratio(sq[i, k], cnt, 0.0) - mean * mean
            out[i, OUT_CNT[k]] = cnt
            out[i, OUT_SUM[k]] = total
            out[i, OUT_MEAN[k]] = mean
            out[i, OUT_MAX[k]] = mx[i, k]
            out[i, OUT_STD[k]] = np.sqrt(var) if var > 0 else 0.0
        cnt_30d = float(S[i, S_IN_CNT_30D] + S[i, S_OUT_CNT_30D])
        fen_30d = float(S[i, S_IN_FEN_30D] + S[i, S_OUT_FEN_30D])
        for k in range(PLAIN_CNT_SRC.shape[0]):
            out[i, PLAIN_CNT_OUT[k]] = S[i, PLAIN_CNT_SRC[k]]
        for k in range(PLAIN_AMT_SRC.shape[0]):
            out[i, PLAIN_AMT_OUT[k]] = S[i, PLAIN_AMT_SRC[k]] / 100.0
        for k in range(SHARE_SRC.shape[0]):
            out[i, SHARE_OUT[k]] = _ratio(float(S[i, SHARE_SRC[k]]), cnt_30d, 0.0)
        for k in range(COPY_SRC.shape[0]):
            out[i, COPY_OUT[k]] = ev[i, COPY_SRC[k]]

        amount = amounts[i, 0]
        income = amounts[i, 1]
        t = ev[i, E_T]
        is_in = ev[i, E_IN] != 0
        out[i, F_AMOUNT] = amount
        out[i, F_LOG_AMOUNT] = np.log1p(amount)

        # cash share and pass-through, all from exact fen sums
        cash_fen_30d = S[i, S_CASH_DEP_FEN_30D] + S[i, S_CASH_WD_FEN_30D]
        out[i, F_CASH_SHARE] = _ratio(float(cash_fen_30d), fen_30d, 0.0)
        out[i, F_IN_SHARE] = _ratio(float(S[i, S_IN_FEN_30D]), fen_30d, 0.0)
        a24, b24 = S[i, S_IN_FEN_24H], S[i, S_OUT_FEN_24H]
        a7, b7 = S[i, S_IN_FEN_7D], S[i, S_OUT_FEN_7D]
        out[i, F_PT_24H] = _ratio(float(min(a24, b24)), float(max(a24, b24)), 0.0)
        out[i, F_PT_7D] = _ratio(float(min(a7, b7)), float(max(a7, b7)), 0.0)
        out[i, F_RESIDUAL] = _ratio(float(a7 - b7), float(max(a7, b7)), 0.0)
        last_in = ev[i, E_LAST_IN]
        if last_in >= 0:
            gap_in = t - last_in
            out[i, F_HOURS_LAST_IN] = gap_in / HOUR
            out[i, F_OUT_24H_IN] = 1.0 if (not is_in and gap_in <= 24 * HOUR_NS) else 0.0
        else:
            out[i, F_HOURS_LAST_IN] = nan
            out[i, F_OUT_24H_IN] = 0.0

        # dormancy; an unknown onboarding date leaves what is measured from it missing
        if ev[i, E_PREV] == UNKNOWN_ONBOARD_NS:
            out[i, F_DAYS_PREV] = nan
            out[i, F_REACT] = 0.0
        else:
            gap = t - ev[i, E_PREV]
            out[i, F_DAYS_PREV] = gap / DAY
            out[i, F_REACT] = 1.0 if gap >= dormancy_ns else 0.0
        out[i, F_REACT_30D] = 1.0 if S[i, S_REACT_30D] > 0 else 0.0
        out[i, F_AGE] = nan if ev[i, E_ONBOARD] == UNKNOWN_ONBOARD_NS else (t - ev[i, E_ONBOARD]) / DAY

        # peer groups and the customer's own history (same direction, earlier transactions only)
        size = float(ev[i, E_PEER_SIZE])
        peer_cash = (ev[i, E_PEER_CASH] / 100.0) / size
        peer_cnt = ev[i, E_PEER_CNT] / size
        out[i, F_PEER_CASH] = (cash_fen_30d / 100.0) / max(peer_cash, peer_cash_floor)
        out[i, F_PEER_FREQ] = cnt_30d / max(peer_cnt, peer_count_floor)
        if is_in:
            same_cnt = S[i, S_IN_CNT_90D] - 1
            same_fen = S[i, S_IN_FEN_90D] - ev[i, E_FEN]
            same_sq = sq[i, 4] - amount * amount
        else:
            same_cnt = S[i, S_OUT_CNT_90D] - 1
            same_fen = S[i, S_OUT_FEN_90D] - ev[i, E_FEN]
            same_sq = sq[i, 9] - amount * amount
        if same_cnt > 0:
            prior_mean = (same_fen / 100.0) / same_cnt
            out[i, F_OWN_MEAN] = _ratio(amount, prior_mean, nan)
        else:
            prior_mean = nan
            out[i, F_OWN_MEAN] = nan
        if same_cnt >= 2:
            prior_var = same_sq / same_cnt - prior_mean * prior_mean
            prior_std = np.sqrt(prior_var) if prior_var > 0 else 0.0
            out[i, F_OWN_Z] = (amount - prior_mean) / max(prior_std, own_std_floor)
        else:
            out[i, F_OWN_Z] = nan

        # profile consistency
        flow_90d = ((S[i, S_IN_FEN_90D] + S[i, S_OUT_FEN_90D]) / 100.0) * (365.0 / 90.0)
        in_30d = (S[i, S_IN_FEN_30D] / 100.0) * (365.0 / 30.0)
        out[i, F_FLOW_INCOME] = _ratio(flow_90d, income, nan)
        out[i, F_IN_INCOME] = _ratio(in_30d, income, nan)
    return out
