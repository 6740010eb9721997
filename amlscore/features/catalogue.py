"""The feature catalogue: every behavioural feature, declared once.

Each :class:`FeatureSpec` names a feature, the entity it is keyed on, its window, its kind and,
in words a compliance officer can read, what it means and how it is computed. The offline path
(:mod:`amlscore.features.offline`) and the online path (:mod:`amlscore.features.online`) both produce exactly the
columns of :data:`FEATURE_NAMES`, in this order, and ``docs/features.md`` is generated from here.

Conventions that hold for every windowed feature:

* a window ``w`` ending at a transaction at time ``t`` covers ``(t - w, t]`` and includes the
  transaction itself and the customer's earlier transactions (ties in time are ordered by
  ``txn_id``); never a later one;
* amounts are in CNY; sums are exact (computed in integer fen);
* a feature that is undefined (e.g. ratio to a declared income that is empty) is ``NaN``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Entity = Literal["transaction", "customer", "ip_address", "device_id", "operator_id", "agent_id", "phone", "peer_group",
                 "graph", "id_component"]
Kind = Literal["count", "amount", "ratio", "flag", "code", "duration"]

WINDOWS: dict[str, int] = {  # name -> seconds
    "1h": 3600,
    "24h": 86_400,
    "7d": 7 * 86_400,
    "30d": 30 * 86_400,
    "90d": 90 * 86_400,
}
DIRECTIONS = ("in", "out")
CHANNEL_SHARE_NAMES = ("online_banking", "mobile_banking", "phone_banking", "pos", "atm", "counter")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: what it is called, what it is keyed on and what it means."""

    name: str
    group: str
    entity: Entity
    window: str | None
    kind: Kind
    meaning: str
    formula: str

    @property
    def is_integer(self) -> bool:
        """Counts, flags and codes are whole numbers and must match exactly across paths."""
        return self.kind in ("count", "flag", "code")


def _velocity_specs() -> list[FeatureSpec]:
    specs: list[FeatureSpec] = []
    for window in WINDOWS:
        for d in DIRECTIONS:
            flow = "incoming" if d == "in" else "outgoing"
            specs += [
                FeatureSpec(f"{d}_cnt_{window}", "velocity", "customer", window, "count",
                            f"Number of {flow} transactions in the last {window}.",
                            f"count of the customer's {flow} transactions in (t-{window}, t]"),
                FeatureSpec(f"{d}_sum_{window}", "velocity", "customer", window, "amount",
                            f"Total {flow} amount in the last {window}.",
                            f"sum of amount over the same transactions"),
                FeatureSpec(f"{d}_mean_{window}", "velocity", "customer", window, "amount",
                            f"Average {flow} amount in the last {window} (0 when there is none).",
                            f"{d}_sum_{window} / {d}_cnt_{window}"),
                FeatureSpec(f"{d}_max_{window}", "velocity", "customer", window, "amount",
                            f"Largest {flow} amount in the last {window} (0 when there is none).",
                            "max of amount over the same transactions"),
                FeatureSpec(f"{d}_std_{window}", "velocity", "customer", window, "amount",
                            f"Spread (population standard deviation) of {flow} amounts in the last {window}.",
                            "sqrt(max(0, sum(amount^2)/n - mean^2))"),
            ]
    return specs


def _cash_specs() -> list[FeatureSpec]:
    specs: list[FeatureSpec] = [
        FeatureSpec("is_cash", "cash", "transaction", None, "flag",
                    "The transaction is a cash deposit or withdrawal.", "txn_type in {cash_deposit, cash_withdrawal}"),
        FeatureSpec("is_large_cash", "cash", "transaction", None, "flag",
                    "Cash at or above the large-value threshold (50,000 CNY).", "is_cash and amount >= large_cash_threshold"),
        FeatureSpec("is_near_threshold_cash", "cash", "transaction", None, "flag",
                    "Cash just below the large-value threshold (within 10 %).",
                    "is_cash and threshold*(1-band) <= amount < threshold"),
        FeatureSpec("is_round_amount", "cash", "transaction", None, "flag",
                    "The amount is a whole multiple of 1,000 CNY.", "amount mod round_amount_unit == 0"),
    ]
    for window in ("24h", "7d", "30d"):
        specs += [
            FeatureSpec(f"cash_dep_cnt_{window}", "cash", "customer", window, "count",
                        f"Cash deposits in the last {window}.", "count of txn_type = cash_deposit"),
            FeatureSpec(f"cash_dep_sum_{window}", "cash", "customer", window, "amount",
                        f"Amount of cash deposited in the last {window}.", "sum of amount, txn_type = cash_deposit"),
            FeatureSpec(f"cash_wd_cnt_{window}", "cash", "customer", window, "count",
                        f"Cash withdrawals in the last {window}.", "count of txn_type = cash_withdrawal"),
            FeatureSpec(f"cash_wd_sum_{window}", "cash", "customer", window, "amount",
                        f"Amount of cash withdrawn in the last {window}.", "sum of amount, txn_type = cash_withdrawal"),
            FeatureSpec(f"near_threshold_cash_cnt_{window}", "cash", "customer", window, "count",
                        f"Cash transactions just below the large-value threshold in the last {window} (structuring).",
                        "count of is_near_threshold_cash"),
        ]
    specs += [
        FeatureSpec("near_threshold_cash_sum_7d", "cash", "customer", "7d", "amount",
                    "Amount of cash just below the threshold in the last 7 days.", "sum of amount where is_near_threshold_cash"),
        FeatureSpec("cash_share_30d", "cash", "customer", "30d", "ratio",
                    "Share of the customer's 30-day amount moved in cash.",
                    "(cash_dep_sum_30d + cash_wd_sum_30d) / (in_sum_30d + out_sum_30d)"),
        FeatureSpec("round_amount_share_30d", "cash", "customer", "30d", "ratio",
                    "Share of the customer's 30-day transactions with round amounts.",
                    "count(is_round_amount) / (in_cnt_30d + out_cnt_30d)"),
    ]
    return specs


def _channel_specs() -> list[FeatureSpec]:
    specs = [
        FeatureSpec("channel_code", "channel", "transaction", None, "code",
                    "The transaction's channel as a code: 0 online, 1 mobile, 2 phone banking, 3 POS, 4 ATM, 5 counter.",
                    "index of channel in the contract's channel list"),
        FeatureSpec("txn_type_code", "channel", "transaction", None, "code",
                    "The transaction type as a code (contract order: transfer, cash_deposit, cash_withdrawal, "
                    "purchase, remittance, bill_payment, salary, other).",
                    "index of txn_type in the contract's type list"),
        FeatureSpec("is_in", "channel", "transaction", None, "flag", "Money comes in to the customer.", "direction = in"),
        FeatureSpec("amount", "channel", "transaction", None, "amount", "The transaction's amount (CNY).", "amount"),
        FeatureSpec("log_amount", "channel", "transaction", None, "amount", "Natural log of 1 + amount.", "ln(1 + amount)"),
        FeatureSpec("hour_local", "channel", "transaction", None, "code", "Hour of day on the bank's clock (UTC+8).",
                    "hour of timestamp + bank_utc_offset_hours"),
        FeatureSpec("is_night", "channel", "transaction", None, "flag", "Made at night (00:00-06:00 bank time).",
                    "night_hours[0] <= hour_local < night_hours[1]"),
        FeatureSpec("is_weekend", "channel", "transaction", None, "flag", "Made on a Saturday or Sunday (bank time).",
                    "weekday of local date in {Sat, Sun}"),
        FeatureSpec("night_share_30d", "channel", "customer", "30d", "ratio",
                    "Share of the customer's 30-day transactions made at night.", "count(is_night) / count"),
    ]
    for ch in CHANNEL_SHARE_NAMES:
        specs.append(FeatureSpec(f"share_{ch}_30d", "channel", "customer", "30d", "ratio",
                                 f"Share of the customer's 30-day transactions made through {ch.replace('_', ' ')}.",
                                 f"count(channel = {ch}) / count"))
    return specs


def _passthrough_specs() -> list[FeatureSpec]:
    return [
        FeatureSpec("hours_since_last_in", "pass_through", "customer", None, "duration",
                    "Hours since the customer's previous incoming transaction (NaN if none).",
                    "(t - time of the latest earlier incoming transaction) / 1h"),
        FeatureSpec("out_within_24h_of_in", "pass_through", "transaction", None, "flag",
                    "An outgoing transaction made within 24 hours of money coming in.",
                    "direction = out and hours_since_last_in <= 24"),
        FeatureSpec("passthrough_ratio_24h", "pass_through", "customer", "24h", "ratio",
                    "How closely money out matches money in over 24 hours (1 = all that came in went out).",
                    "min(in_sum_24h, out_sum_24h) / max(in_sum_24h, out_sum_24h)"),
        FeatureSpec("passthrough_ratio_7d", "pass_through", "customer", "7d", "ratio",
                    "How closely money out matches money in over 7 days.",
                    "min(in_sum_7d, out_sum_7d) / max(in_sum_7d, out_sum_7d)"),
        FeatureSpec("residual_balance_ratio_7d", "pass_through", "customer", "7d", "ratio",
                    "What stays in the account over 7 days, from -1 (only out) to 1 (only in); near 0 means pass-through.",
                    "(in_sum_7d - out_sum_7d) / max(in_sum_7d, out_sum_7d)"),
        FeatureSpec("in_share_30d", "pass_through", "customer", "30d", "ratio",
                    "Incoming share of the 30-day amount (in/out balance).", "in_sum_30d / (in_sum_30d + out_sum_30d)"),
    ]


def _counterparty_specs() -> list[FeatureSpec]:
    specs = [
        FeatureSpec("is_new_counterparty", "counterparty", "transaction", None, "flag",
                    "The counterparty (a customer of this bank, or an account elsewhere) was never seen before with this customer.",
                    "counterparty key (counterparty_id when it names a customer, else counterparty_account) not empty "
                    "and not among the customer's earlier counterparty keys"),
        FeatureSpec("is_corp_indiv", "counterparty", "transaction", None, "flag",
                    "A transfer or remittance between a corporate and an individual (not payroll, bills or purchases).",
                    "{customer_type, counterparty_type} = {corporate, individual} and txn_type in {transfer, remittance}"),
    ]
    for window in ("7d", "30d"):
        specs += [
            FeatureSpec(f"fan_in_{window}", "counterparty", "customer", window, "count",
                        f"Distinct counterparties that paid the customer in the last {window}.",
                        "distinct counterparty key (counterparty_id of a customer, else counterparty_account) "
                        "over incoming transactions"),
            FeatureSpec(f"fan_out_{window}", "counterparty", "customer", window, "count",
                        f"Distinct counterparties the customer paid in the last {window}.",
                        "distinct counterparty key (counterparty_id of a customer, else counterparty_account) "
                        "over outgoing transactions"),
            FeatureSpec(f"new_cp_cnt_{window}", "counterparty", "customer", window, "count",
                        f"Transactions with a first-time counterparty in the last {window}.", "count of is_new_counterparty"),
        ]
    specs += [
        FeatureSpec("corp_indiv_cnt_30d", "counterparty", "customer", "30d", "count",
                    "Corporate-individual transfers in the last 30 days.", "count of is_corp_indiv"),
        FeatureSpec("corp_indiv_sum_30d", "counterparty", "customer", "30d", "amount",
                    "Amount of corporate-individual transfers in the last 30 days.", "sum of amount where is_corp_indiv"),
    ]
    return specs


def _geography_specs() -> list[FeatureSpec]:
    return [
        FeatureSpec("is_cross_border", "geography", "transaction", None, "flag",
                    "The counterparty is abroad.", "counterparty_country not empty and != bank_country"),
        FeatureSpec("is_high_risk_country", "geography", "transaction", None, "flag",
                    "The counterparty is in a high-risk jurisdiction (FATF lists).", "counterparty_country in high_risk_countries"),
        FeatureSpec("is_ip_abroad", "geography", "transaction", None, "flag",
                    "Online or mobile banking from an IP address abroad.", "ip_country not empty and != bank_country"),
        FeatureSpec("is_ip_outside_home_region", "geography", "transaction", None, "flag",
                    "Online or mobile banking from outside the customer's home region (at home or abroad).",
                    "ip_address not empty and (is_ip_abroad or (ip_region not empty and ip_region != home_region))"),
        FeatureSpec("cross_border_share_30d", "geography", "customer", "30d", "ratio",
                    "Share of the customer's 30-day transactions with a counterparty abroad.", "count(is_cross_border) / count"),
        FeatureSpec("high_risk_cnt_30d", "geography", "customer", "30d", "count",
                    "Transactions with high-risk jurisdictions in the last 30 days.", "count of is_high_risk_country"),
        FeatureSpec("high_risk_sum_30d", "geography", "customer", "30d", "amount",
                    "Amount moved with high-risk jurisdictions in the last 30 days.", "sum of amount where is_high_risk_country"),
        FeatureSpec("ip_abroad_cnt_7d", "geography", "customer", "7d", "count",
                    "Online or mobile banking sessions from abroad in the last 7 days.", "count of is_ip_abroad"),
        FeatureSpec("ip_outside_region_cnt_7d", "geography", "customer", "7d", "count",
                    "Online or mobile banking from outside the home region in the last 7 days.",
                    "count of is_ip_outside_home_region"),
    ]


def _shared_identifier_specs() -> list[FeatureSpec]:
    return [
        FeatureSpec("ip_customers_24h", "shared_identifiers", "ip_address", "24h", "count",
                    "Distinct customers who banked from this transaction's IP address in the last 24 hours (0 without IP).",
                    "distinct customer_id over transactions with the same ip_address in (t-24h, t]"),
        FeatureSpec("ip_customers_7d", "shared_identifiers", "ip_address", "7d", "count",
                    "Distinct customers who banked from this IP address in the last 7 days.",
                    "distinct customer_id with the same ip_address in (t-7d, t]"),
        FeatureSpec("device_customers_24h", "shared_identifiers", "device_id", "24h", "count",
                    "Distinct customers who banked from this device in the last 24 hours (0 without device).",
                    "distinct customer_id with the same device_id in (t-24h, t]"),
        FeatureSpec("device_customers_7d", "shared_identifiers", "device_id", "7d", "count",
                    "Distinct customers who banked from this device in the last 7 days.",
                    "distinct customer_id with the same device_id in (t-7d, t]"),
        FeatureSpec("operator_customers_30d", "shared_identifiers", "operator_id", "30d", "count",
                    "Distinct customers whose transactions this operator executed in the last 30 days (0 without operator).",
                    "distinct customer_id with the same operator_id in (t-30d, t]"),
        FeatureSpec("is_operated_by_other", "shared_identifiers", "transaction", None, "flag",
                    "Someone other than the customer executed the transaction.", "operator_id not empty"),
        FeatureSpec("agent_other_customers", "shared_identifiers", "agent_id", None, "count",
                    "Other customers, onboarded by the transaction date, whose account the same agent opened or operates.",
                    "count of other customers with the same agent_id and onboarded_at <= date(t)"),
        FeatureSpec("phone_other_customers", "shared_identifiers", "phone", None, "count",
                    "Other customers, onboarded by the transaction date, with the same phone number.",
                    "count of other customers with the same phone and onboarded_at <= date(t)"),
        FeatureSpec("emergency_phone_other_customers", "shared_identifiers", "phone", None, "count",
                    "Other customers, onboarded by the transaction date, that give the same emergency-contact phone "
                    "or whose own phone it is.",
                    "count of other customers whose emergency_contact_phone or phone equals this customer's "
                    "emergency_contact_phone, onboarded_at <= date(t)"),
    ]


def _dormancy_specs() -> list[FeatureSpec]:
    return [
        FeatureSpec("days_since_prev_txn", "dormancy", "customer", None, "duration",
                    "Days since the customer's previous transaction, or since onboarding for the first one "
                    "(missing for the first one when onboarded_at is unknown).",
                    "(t - max(previous transaction time, onboarded_at)) / 1 day"),
        FeatureSpec("is_reactivation", "dormancy", "transaction", None, "flag",
                    "First transaction after at least 180 days of silence.", "days_since_prev_txn >= dormancy_days"),
        FeatureSpec("reactivated_30d", "dormancy", "customer", "30d", "flag",
                    "The account was reactivated after a long silence within the last 30 days.",
                    "a transaction with is_reactivation in (t-30d, t]"),
        FeatureSpec("account_age_days", "dormancy", "customer", None, "duration",
                    "Days since the customer was onboarded (missing when onboarded_at is unknown).",
                    "(t - onboarded_at) / 1 day"),
    ]


def _peer_specs() -> list[FeatureSpec]:
    return [
        FeatureSpec("peer_cash_ratio_30d", "peer_group", "peer_group", "30d", "ratio",
                    "Customer's cash over 30 days as a multiple of the average of its peer group "
                    "(customer type x occupation or industry).",
                    "(cash_dep_sum_30d + cash_wd_sum_30d) / max(peer average cash per customer over the 30 complete "
                    "days before the transaction's day, peer_cash_floor)"),
        FeatureSpec("peer_txn_freq_ratio_30d", "peer_group", "peer_group", "30d", "ratio",
                    "Customer's number of transactions over 30 days as a multiple of its peer group's average.",
                    "(in_cnt_30d + out_cnt_30d) / max(peer average transactions per customer over the 30 complete "
                    "days before the transaction's day, peer_count_floor)"),
        FeatureSpec("amount_vs_own_mean_90d", "peer_group", "customer", "90d", "ratio",
                    "The amount as a multiple of the customer's own average in the same direction over the previous "
                    "90 days (NaN without history).",
                    "amount / mean(amount of earlier same-direction transactions in (t-90d, t))"),
        FeatureSpec("amount_z_own_90d", "peer_group", "customer", "90d", "ratio",
                    "How many standard deviations the amount is from the customer's own 90-day history in the same "
                    "direction (NaN with fewer than two earlier transactions).",
                    "(amount - mean) / max(std, own_std_floor) over earlier same-direction transactions in (t-90d, t)"),
    ]


def _profile_specs() -> list[FeatureSpec]:
    return [
        FeatureSpec("flow_vs_income_90d", "profile", "customer", "90d", "ratio",
                    "Money moved over 90 days, annualised, as a multiple of declared annual income or turnover "
                    "(NaN when none is declared).",
                    "(in_sum_90d + out_sum_90d) * 365/90 / declared_annual_income"),
        FeatureSpec("in_vs_income_30d", "profile", "customer", "30d", "ratio",
                    "Money received over 30 days, annualised, as a multiple of declared income or turnover.",
                    "in_sum_30d * 365/30 / declared_annual_income"),
        FeatureSpec("is_corporate", "profile", "customer", None, "flag", "The customer is a corporate.",
                    "customer_type = corporate"),
    ]


def _graph_specs() -> list[FeatureSpec]:
    """The counterparty graph (amlscore/features/graph.py): nodes are customers and outside accounts,
    a transaction is an edge payer -> payee; each node keeps its latest 16 edges per direction."""
    cp = "the transaction's counterparty (customer, else outside account)"
    return [
        FeatureSpec("cp_fan_in_7d", "graph", "graph", "7d", "count",
                    "Distinct payers of the counterparty over 7 days, across the whole bank (gather into it).",
                    f"distinct payers of {cp} over its edges in (t-7d, t]; 0 without counterparty"),
        FeatureSpec("cp_fan_out_7d", "graph", "graph", "7d", "count",
                    "Distinct payees of the counterparty over 7 days, across the whole bank (scatter from it).",
                    f"distinct payees of {cp} over its edges in (t-7d, t]"),
        FeatureSpec("cp_in_sum_7d", "graph", "graph", "7d", "amount",
                    "Amount the counterparty received over 7 days, from anyone the bank sees.",
                    "sum of amount of the counterparty's incoming edges in (t-7d, t]"),
        FeatureSpec("cp_out_sum_7d", "graph", "graph", "7d", "amount",
                    "Amount the counterparty paid over 7 days, to anyone the bank sees.",
                    "sum of amount of the counterparty's outgoing edges in (t-7d, t]"),
        FeatureSpec("scatter_gather_7d", "graph", "graph", "7d", "count",
                    "Other intermediaries that, within 7 days, got money from one of the payer's own payers and "
                    "passed it on to the same payee (many-to-one-to-many, scatter-gather).",
                    "for the edge u -> v: distinct m != u with m -> v in (t-7d, t] and s -> m no later, "
                    "s among u's payers in (t-7d, t]"),
        FeatureSpec("gather_scatter_7d", "graph", "graph", "7d", "count",
                    "How much the payer is a hub: the smaller of its distinct payers and distinct payees over 7 days.",
                    "min(distinct payers of u, distinct payees of u) over (t-7d, t]"),
        FeatureSpec("cycle_len_7d", "graph", "graph", "7d", "count",
                    "Length (2-5) of the shortest temporal cycle this payment closes: money back at the payee, "
                    "its origin, within 7 days; 0 when none.",
                    "2 + edges of the shortest path v -> ... -> u of 1-4 edges in (t-7d, t], each no earlier than "
                    "the previous, distinct nodes (depth-first from v, 8 out-edges per node, 4,096 edges at most)"),
        FeatureSpec("cycle_cnt_7d", "graph", "graph", "7d", "count",
                    "Number of such temporal cycles found (within the search's caps).",
                    "number of paths v -> ... -> u found by the same search"),
        FeatureSpec("chain_len_24h", "graph", "graph", "24h", "count",
                    "Pass-through hops ending with this payment: money that came in to the payer within 24 hours "
                    "and moves on with most of its amount, hop after hop (capped at 8).",
                    "0 when no incoming edge of u in (t-24h, t] has amount with 0.8 <= amount / its amount <= 1.05, "
                    "else 1 + the largest hop count among those edges"),
        FeatureSpec("chain_kept_share_24h", "graph", "graph", "24h", "ratio",
                    "Share of the incoming amount this payment moves on, for the chain counted above (NaN when none).",
                    "amount / amount of the newest incoming edge of the longest chain"),
        FeatureSpec("payer_indiv_share_30d", "graph", "graph", "30d", "ratio",
                    "Share of the payer's outflow over 30 days that went to individuals (the payer is the customer "
                    "for money out, the counterparty for money in; NaN without counterparty).",
                    "sum of amount of u's edges to individuals / sum of amount of u's edges, over (t-30d, t]"),
        FeatureSpec("payer_new_indiv_payees_30d", "graph", "graph", "30d", "count",
                    "Individuals the payer paid for the first time within the last 30 days.",
                    "distinct individual payees of u with u's first ever payment to them in (t-30d, t]"),
        FeatureSpec("payer_payees_30d", "graph", "graph", "30d", "count",
                    "Distinct payees of the payer over 30 days.", "distinct payees of u over (t-30d, t]"),
        FeatureSpec("cp_reported", "graph", "graph", None, "flag",
                    "The counterparty is a customer with a suspicious-transaction report filed by this date.",
                    "counterparty is a customer and the earliest report_date of its suspicious reports <= date(t)"),
        FeatureSpec("reported_cps_30d", "graph", "graph", "30d", "count",
                    "The customer's counterparties of the last 30 days that are reported customers (as of t).",
                    "distinct counterparties over the customer's edges in (t-30d, t] reported by date(t)"),
        FeatureSpec("reported_2hop_30d", "graph", "graph", "30d", "count",
                    "Reported customers two hops away: counterparties of the customer's counterparties over 30 days.",
                    "distinct reported z != customer, not a direct counterparty, with an edge to or from a direct "
                    "counterparty in (t-30d, t]"),
        FeatureSpec("reported_distance_30d", "graph", "graph", "30d", "code",
                    "Hops to the nearest reported customer over the last 30 days' edges: 1, 2, or 0 when none within 2.",
                    "1 if reported_cps_30d > 0, else 2 if reported_2hop_30d > 0, else 0"),
        FeatureSpec("reported_in_sum_30d", "graph", "graph", "30d", "amount",
                    "Amount the customer received from reported customers over 30 days.",
                    "sum of amount of the customer's incoming edges in (t-30d, t] from customers reported by date(t)"),
        FeatureSpec("reported_out_sum_30d", "graph", "graph", "30d", "amount",
                    "Amount the customer paid to reported customers over 30 days.",
                    "sum of amount of the customer's outgoing edges in (t-30d, t] to customers reported by date(t)"),
        FeatureSpec("payer_indiv_share_vs_peers_30d", "graph", "peer_group", "30d", "ratio",
                    "How much more of its outflow the payer sends to individuals than its peer group does "
                    "(customer payers only; NaN for an outside payer or a peer group that paid nothing out).",
                    "payer_indiv_share_30d - (peer group's outgoing amount to individuals / its outgoing amount, "
                    "over the peer_lookback_days complete days before the transaction's day)"),
    ]


def _id_component_specs() -> list[FeatureSpec]:
    """Components of shared identifiers (amlscore/features/idcomp.py): customers linked by the IPs,
    devices and operators they used within the window and the phones and agents the customers table
    gives them, followed over shared identifiers; windows and caps are feature parameters
    (``id_components``: by default 30 days, growth over 7, at most 64 customers, hubs above 12)."""
    links = ("over shared identifiers: IP, device, operator seen with both within the window (30 days), "
             "and own phone, emergency phone, agent from the customers table")
    return [
        FeatureSpec("id_component_size", "id_component", "id_component", "30d", "count",
                    "Customers linked to this one through shared identifiers, directly or in a chain (A and B "
                    "share a device, B and C an IP: one group of 3), this customer included; 1 when none.",
                    f"customers reached from the customer {links}; identifiers shared by more than "
                    "hub_customers customers not followed; whole breadth-first levels until max_size is "
                    "reached, then min(found, max_size)"),
        FeatureSpec("id_component_growth", "id_component", "id_component", "7d", "count",
                    "Members of that group who joined it within the last 7 days: reached only over links "
                    "first seen (or customers onboarded) within them.",
                    "id_component_size - the size over the links first seen before t - growth_days"),
        FeatureSpec("id_component_reported", "id_component", "id_component", "30d", "count",
                    "Other members of the group with a suspicious-transaction report filed by this date.",
                    "customers found by the search, other than the customer, whose earliest suspicious "
                    "report_date <= date(t)"),
        FeatureSpec("id_component_reported_share", "id_component", "id_component", "30d", "ratio",
                    "Share of the group's other members that are reported (NaN when the customer is alone).",
                    "id_component_reported / (id_component_size - 1)"),
    ]


CATALOGUE: tuple[FeatureSpec, ...] = tuple(
    _velocity_specs()
    + _cash_specs()
    + _channel_specs()
    + _passthrough_specs()
    + _counterparty_specs()
    + _geography_specs()
    + _shared_identifier_specs()
    + _dormancy_specs()
    + _peer_specs()
    + _profile_specs()
    + _graph_specs()
    + _id_component_specs()
)
FEATURE_NAMES: tuple[str, ...] = tuple(s.name for s in CATALOGUE)
SPECS_BY_NAME: dict[str, FeatureSpec] = {s.name: s for s in CATALOGUE}
INTEGER_FEATURES: frozenset[str] = frozenset(s.name for s in CATALOGUE if s.is_integer)
FEATURE_SET_VERSION = "aml_behaviour_v3"  # v2: the counterparty graph features; v3: components of shared identifiers

if len(SPECS_BY_NAME) != len(CATALOGUE):  # pragma: no cover - guards edits of this file
    raise RuntimeError("duplicate feature names in the catalogue")
