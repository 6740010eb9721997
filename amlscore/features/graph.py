"""Graph features on the counterparty graph, one compiled step shared by the offline and online paths.

The graph's nodes are the bank's customers (node id = the registry's customer code) and the
counterparties outside the bank (keyed by account, ``account:<number>``, ids from ``n_customers`` on).
A transaction with a known counterparty is an edge from payer to payee at its time, with its amount:
an ``out`` row is customer -> counterparty, an ``in`` row counterparty -> customer. A transfer between
two customers of the bank arrives as two legs (the payer's ``out`` row and the payee's ``in`` row);
only the ``out`` leg stores the edge, the ``in`` leg reads the graph as if it were stored (and, when
the ``out`` leg came first, finds it there and does not count it twice).

State, bounded per node like IBM's Graph Feature Preprocessor (Blanuša et al., arXiv 2402.08593):
each node keeps its latest :data:`EDGE_CAP` outgoing and latest :data:`EDGE_CAP` incoming edges
(other node, time, amount in fen, flags) in a ring; every query reads only edges inside its window
``(t - w, t]``, so what a node saw beyond its window or beyond its cap never counts. Each edge's
time is checked on its own (rings are not assumed sorted in time), so an online transaction that
arrives after a later one of another customer is still counted in its windows; exact parity with
the offline path holds when the online path sees the transactions in the same (time, ``txn_id``)
order, as a replay does. A node with more than :data:`EDGE_CAP` edges in a window is counted over
its latest :data:`EDGE_CAP` (its counts saturate there). The temporal cycle search follows at most :data:`CYCLE_FANOUT` out-edges per node
and examines at most :data:`CYCLE_BUDGET` edges per transaction; pass-through chains are counted up
to :data:`CHAIN_CAP` hops. These caps keep the cost per transaction bounded (about 4 µs of
compiled work per row offline on the default data set, 2.6 µs before the 2-hop features; about 15 µs
per online call with the Python
around it) and make the result depend on the last days only, so a warm-up of the last 100 days
gives exactly what the whole history gives.

Two hops for fan-in and fan-out (:func:`_hub_features`): each edge carries whether it was the first
ever payment of its pair, so a row reads how many new payers and new payees its counterparty has over
30 days, and a customer's share of its 30-day flows with collectors (payees with many new payers) or
distributors (payers with many new payees). These are the fan-in and fan-out laundering patterns of
AMLworld (Altman et al., arXiv 2306.16424), which the Graph Feature Preprocessor counts at the hub,
read here from the side of the depositor or the recipient.

:func:`graph_step` computes one transaction's graph features and then stores its edge; the offline
path runs it over the whole history in time order (:func:`graph_pass`), the online path once per
transaction over the same arrays: the two paths agree exactly by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from amlscore.features.registry import DAY_NS, HOUR_NS

EDGE_CAP = 16  # edges kept per node and direction (the latest)
CYCLE_FANOUT = 8  # out-edges followed per node in the cycle search (the latest that fit in time)
CYCLE_BUDGET = 4096  # edges examined per cycle search at most
CYCLE_MAX_LEN = 5  # cycles of 2 to 5 edges
CHAIN_CAP = 8  # pass-through chains are counted up to this many hops
CHAIN_KEPT_MIN, CHAIN_KEPT_MAX = 0.8, 1.05  # an onward payment keeps 80 % to 105 % of what came in
NEVER = np.iinfo(np.int64).max  # report time of a customer never reported

GRAPH_FEATURES = (
    "cp_fan_in_7d", "cp_fan_out_7d", "cp_in_sum_7d", "cp_out_sum_7d",
    "scatter_gather_7d", "gather_scatter_7d",
    "cycle_len_7d", "cycle_cnt_7d",
    "chain_len_24h", "chain_kept_share_24h",
    "payer_indiv_share_30d", "payer_new_indiv_payees_30d", "payer_payees_30d",
    "cp_reported", "reported_cps_30d", "reported_2hop_30d", "reported_distance_30d",
    "reported_in_sum_30d", "reported_out_sum_30d",
    "cp_new_payers_30d", "cp_new_payees_30d", "cp_pass_through_30d", "pair_new_30d",
    "out_to_collectors_share_30d", "in_from_distributors_share_30d",
)
N_GRAPH = len(GRAPH_FEATURES)
# computed beside the compiled step from the peer groups' daily totals (both paths: payer_vs_peers)
PAYER_PEER_FEATURE = "payer_indiv_share_vs_peers_30d"
_G = {name: i for i, name in enumerate(GRAPH_FEATURES)}
G_CP_FAN_IN, G_CP_FAN_OUT, G_CP_IN_SUM, G_CP_OUT_SUM = (_G[n] for n in GRAPH_FEATURES[:4])
G_SG, G_GS, G_CYC_LEN, G_CYC_CNT, G_CHAIN, G_KEPT = (_G[n] for n in GRAPH_FEATURES[4:10])
G_INDIV_SHARE, G_NEW_INDIV, G_PAYEES = (_G[n] for n in GRAPH_FEATURES[10:13])
G_CP_REP, G_REP1, G_REP2, G_REP_DIST, G_REP_IN, G_REP_OUT = (_G[n] for n in GRAPH_FEATURES[13:19])
G_NEW_PAYERS, G_NEW_PAYEES, G_PASS, G_PAIR_NEW, G_TO_COLLECTORS, G_FROM_DISTRIBUTORS = (
    _G[n] for n in GRAPH_FEATURES[19:25])

# ring fields and directions
F_OTHER, F_T, F_FEN, F_INFO = 0, 1, 2, 3
OUT, IN = 0, 1
INFO_INDIV, INFO_FIRST = 1, 2  # flag bits; the chain length sits above them
_CHAIN_SHIFT = 4

W24H, W7D, W30D = 24 * HOUR_NS, 7 * DAY_NS, 30 * DAY_NS


@dataclass
class GraphArrays:
    """The graph state: per node, rings of its latest edges out and in, and how many it ever stored.

    ``ring[node, direction, slot] = (other node, time ns, amount fen, flags)``, the edge stored as
    number ``k`` in slot ``k % EDGE_CAP``; ``count[node, direction]`` is the number stored.
    """

    ring: np.ndarray  # int64 (nodes, 2, EDGE_CAP, 4)
    count: np.ndarray  # int64 (nodes, 2)

    @classmethod
    def empty(cls, nodes: int) -> GraphArrays:
        return cls(ring=np.zeros((max(nodes, 1), 2, EDGE_CAP, 4), dtype=np.int64),
                   count=np.zeros((max(nodes, 1), 2), dtype=np.int64))

    @property
    def capacity(self) -> int:
        return self.ring.shape[0]

    def grow(self, nodes: int) -> None:
        """Room for at least ``nodes`` nodes (doubling), the new ones empty."""
        if nodes <= self.capacity:
            return
        size = max(self.capacity, 1)
        while size < nodes:
            size *= 2
        ring = np.zeros((size,) + self.ring.shape[1:], dtype=np.int64)
        ring[: self.capacity] = self.ring
        count = np.zeros((size, 2), dtype=np.int64)
        count[: self.capacity] = self.count
        self.ring, self.count = ring, count

    def clear(self, node: int) -> None:
        """Forget a node's edges (its id is about to be reused)."""
        self.count[node] = 0


def report_times(reports, code_of: dict[str, int], n_customers: int, offset_hours: int) -> np.ndarray:
    """Per customer code, the first instant (UTC ns) it counts as reported: local midnight of the
    earliest ``report_date`` of its ``suspicious`` reports; :data:`NEVER` when it has none.

    ``reports`` is a contract reports frame (or None). A report counts from its report_date on, so
    a transaction the day before never sees it.
    """
    out = np.full(max(n_customers, 1), NEVER, dtype=np.int64)
    if reports is None or len(reports) == 0:
        return out
    import pandas as pd  # noqa: PLC0415 - callers have it loaded already

    rep = reports[reports["label"].astype(str) == "suspicious"]
    if len(rep) == 0:
        return out
    days = pd.to_datetime(rep["report_date"].astype(str)).to_numpy().astype("datetime64[D]").astype(np.int64)
    instants = days * DAY_NS - offset_hours * HOUR_NS
    for cust, t in zip(rep["customer_id"].astype(str).tolist(), instants.tolist()):
        code = code_of.get(cust)
        if code is not None and t < out[code]:
            out[code] = t
    return out


def payer_vs_peers(share: np.ndarray, peer_out_fen: np.ndarray, peer_indiv_fen: np.ndarray) -> np.ndarray:
    """The payer's share of its 30-day outflow to individuals minus its peer group's share over the
    complete lookback days before the transaction's day; NaN when the peer group paid nothing out
    (or the payer's share is undefined). Exact integer totals, one division: both paths agree."""
    with np.errstate(divide="ignore", invalid="ignore"):
        peer = np.where(peer_out_fen > 0, peer_indiv_fen / np.maximum(peer_out_fen, 1), np.nan)
    return share - peer


@njit(cache=True, inline="always")
def _slot(count: int, j: int) -> int:  # pragma: no cover - compiled
    """Ring slot of the ``j``-th newest of ``count`` stored edges."""
    return (count - 1 - j) % EDGE_CAP


@njit(cache=True, inline="always")
def _stored(count: np.ndarray, node: int, d: int) -> int:  # pragma: no cover - compiled
    return min(count[node, d], EDGE_CAP)


@njit(cache=True, inline="always")
def _add_distinct(buf: np.ndarray, n: int, x: int) -> int:  # pragma: no cover - compiled
    """Append ``x`` to ``buf[:n]`` unless there; returns the new length."""
    for i in range(n):
        if buf[i] == x:
            return n
    buf[n] = x
    return n + 1


@njit(cache=True, inline="always")
def _contains(buf: np.ndarray, n: int, x: int) -> bool:  # pragma: no cover - compiled
    for i in range(n):
        if buf[i] == x:
            return True
    return False


@njit(cache=True)
def _has_edge(ring: np.ndarray, count: np.ndarray, u: int, v: int, t: int, fen: int) -> bool:  # pragma: no cover
    """Is the edge u -> v at ``t`` of ``fen`` stored already (the other leg of a transfer inside the bank)?"""
    k = _stored(count, u, OUT)
    for j in range(k):
        s = _slot(count[u, OUT], j)
        te = ring[u, OUT, s, F_T]
        if te == t and ring[u, OUT, s, F_OTHER] == v and ring[u, OUT, s, F_FEN] == fen:
            return True
    return False


@njit(cache=True)
def _neighbours(ring: np.ndarray, count: np.ndarray, node: int, d: int, lo: int, buf: np.ndarray, n: int
                ) -> int:  # pragma: no cover - compiled
    """Add the distinct other ends of ``node``'s edges in direction ``d`` with time > ``lo`` to ``buf[:n]``."""
    k = _stored(count, node, d)
    for j in range(k):
        s = _slot(count[node, d], j)
        if ring[node, d, s, F_T] <= lo:
            continue
        n = _add_distinct(buf, n, ring[node, d, s, F_OTHER])
    return n


@njit(cache=True)
def _window_sum(ring: np.ndarray, count: np.ndarray, node: int, d: int, lo: int) -> int:  # pragma: no cover
    total = 0
    k = _stored(count, node, d)
    for j in range(k):
        s = _slot(count[node, d], j)
        if ring[node, d, s, F_T] <= lo:
            continue
        total += ring[node, d, s, F_FEN]
    return total


@njit(cache=True)
def _cycles(ring: np.ndarray, count: np.ndarray, u: int, v: int, t: int) -> tuple[int, int]:  # pragma: no cover
    """Temporal cycles closed by the edge u -> v at ``t``: paths v -> ... -> u of 1 to 4 stored edges,
    each no earlier than the one before, the first after ``t - 7d``, through distinct nodes.

    Depth-first from the payee over its out-edges, newest first, at most :data:`CYCLE_FANOUT` per node
    and :data:`CYCLE_BUDGET` edges in all. Returns (length of the shortest cycle with the closing edge,
    0 when none; number of paths found).
    """
    if u == v:
        return 0, 0
    max_path = CYCLE_MAX_LEN - 1
    node = np.empty(max_path + 1, dtype=np.int64)
    lower = np.empty(max_path + 1, dtype=np.int64)  # earliest time an edge out of node[d] may have
    nxt = np.zeros(max_path + 1, dtype=np.int64)  # next ring position to look at
    taken = np.zeros(max_path + 1, dtype=np.int64)
    node[0] = v
    lower[0] = t - W7D + 1
    depth = 0
    shortest = 0
    found = 0
    budget = CYCLE_BUDGET
    while depth >= 0 and budget > 0:
        x = node[depth]
        k = _stored(count, x, OUT)
        advanced = False
        while nxt[depth] < k and taken[depth] < CYCLE_FANOUT and budget > 0:
            s = _slot(count[x, OUT], nxt[depth])
            nxt[depth] += 1
            te = ring[x, OUT, s, F_T]
            if te < lower[depth]:
                continue
            budget -= 1
            y = ring[x, OUT, s, F_OTHER]
            if y == u:
                taken[depth] += 1
                found += 1
                length = depth + 2
                if shortest == 0 or length < shortest:
                    shortest = length
                continue
            if depth + 1 >= max_path:
                continue
            on_path = False
            for q in range(depth + 1):
                if node[q] == y:
                    on_path = True
            if on_path:
                continue
            taken[depth] += 1
            depth += 1
            node[depth] = y
            lower[depth] = te
            nxt[depth] = 0
            taken[depth] = 0
            advanced = True
            break
        if not advanced:
            depth -= 1
    return shortest, found


@njit(cache=True)
def _chain(ring: np.ndarray, count: np.ndarray, u: int, t: int, fen: int) -> tuple[int, float]:  # pragma: no cover
    """Pass-through hops ending with an edge out of ``u`` at ``t`` of ``fen``: 1 + the hops of the
    longest chain among ``u``'s incoming edges of the last 24 h whose amount this edge keeps moving
    (80 % to 105 % of it), capped at :data:`CHAIN_CAP`; 0 when none. Also the share kept of the
    chosen incoming edge (the newest among the longest), NaN when none."""
    best = 0
    kept = np.nan
    k = _stored(count, u, IN)
    lo = t - W24H
    for j in range(k):
        s = _slot(count[u, IN], j)
        if ring[u, IN, s, F_T] <= lo:
            continue
        prev_fen = ring[u, IN, s, F_FEN]
        if prev_fen <= 0:
            continue
        share = fen / prev_fen
        if share < CHAIN_KEPT_MIN or share > CHAIN_KEPT_MAX:
            continue
        hops = min((ring[u, IN, s, F_INFO] >> _CHAIN_SHIFT) + 1, CHAIN_CAP)
        if hops > best:
            best = hops
            kept = share
    return best, kept


@njit(cache=True)
def _reported_around(ring: np.ndarray, count: np.ndarray, report_ns: np.ndarray, first_report: int, c: int, t: int,
                     extra: int, extra_in: bool, extra_fen: int, out: np.ndarray) -> None:  # pragma: no cover
    """Reported customers (as of ``t``) one and two hops from customer ``c`` over the last 30 days'
    edges, and the amounts ``c`` received from and paid to reported ones; ``extra`` is the current
    transaction's counterparty when its edge is not stored yet (-1 otherwise). Before
    ``first_report`` (the earliest report time) nobody is reported and the graph is not read."""
    if t < first_report:
        return  # every count and sum is 0, as ``out`` holds already
    lo = t - W30D
    n_rep = report_ns.shape[0]
    direct = np.empty(2 * EDGE_CAP + 1, dtype=np.int64)
    nd = 0
    rep_in = 0
    rep_out = 0
    for d in range(2):
        k = _stored(count, c, d)
        for j in range(k):
            s = _slot(count[c, d], j)
            if ring[c, d, s, F_T] <= lo:
                continue
            y = ring[c, d, s, F_OTHER]
            if y == c:
                continue
            nd = _add_distinct(direct, nd, y)
            if y < n_rep and report_ns[y] <= t:
                if d == IN:
                    rep_in += ring[c, d, s, F_FEN]
                else:
                    rep_out += ring[c, d, s, F_FEN]
    if extra >= 0 and extra != c:
        nd = _add_distinct(direct, nd, extra)
        if extra < n_rep and report_ns[extra] <= t:
            if extra_in:
                rep_in += extra_fen
            else:
                rep_out += extra_fen
    rep1 = 0
    for i in range(nd):
        y = direct[i]
        if y < n_rep and report_ns[y] <= t:
            rep1 += 1
    second = np.empty(4 * EDGE_CAP * EDGE_CAP + 1, dtype=np.int64)
    n2 = 0
    for i in range(nd):
        y = direct[i]
        for d in range(2):
            k = _stored(count, y, d)
            for j in range(k):
                s = _slot(count[y, d], j)
                if ring[y, d, s, F_T] <= lo:
                    continue
                z = ring[y, d, s, F_OTHER]
                if z == c or z >= n_rep or report_ns[z] > t or _contains(direct, nd, z):
                    continue
                n2 = _add_distinct(second, n2, z)
    out[G_REP1] = rep1
    out[G_REP2] = n2
    out[G_REP_DIST] = 1 if rep1 > 0 else (2 if n2 > 0 else 0)
    out[G_REP_IN] = rep_in / 100.0
    out[G_REP_OUT] = rep_out / 100.0


@njit(cache=True)
def _new_ends(ring: np.ndarray, count: np.ndarray, node: int, d: int, lo: int, extra: int, buf: np.ndarray,
              stop: int) -> int:  # pragma: no cover - compiled
    """Distinct other ends of ``node``'s edges in direction ``d`` with time > ``lo`` that were the first
    ever payment between the two (flag :data:`INFO_FIRST`): the node's new payers (``d`` = IN) or new
    payees (``d`` = OUT); ``extra`` (>= 0) is one more such end, the current edge when not stored yet.
    ``buf`` (at least :data:`EDGE_CAP` + 1 long) is scratch; counting stops once it reaches ``stop``."""
    n = 0
    if extra >= 0:
        buf[0] = extra
        n = 1
    k = _stored(count, node, d)
    for j in range(k):
        if n >= stop:
            break
        s = _slot(count[node, d], j)
        if ring[node, d, s, F_T] <= lo or not (ring[node, d, s, F_INFO] & INFO_FIRST):
            continue
        n = _add_distinct(buf, n, ring[node, d, s, F_OTHER])
    return min(n, stop)


@njit(cache=True)
def _known_since(ring: np.ndarray, count: np.ndarray, node: int, lo: int) -> int:  # pragma: no cover - compiled
    """The later of ``lo`` and, for each direction whose ring is full, just before its oldest kept edge:
    the start of the span over which both of the node's rings still hold every edge. A full ring with
    exactly :data:`EDGE_CAP` edges counts as full, so a stretch that starts after a warm-up gives the
    same value as the whole history (older edges lie before the warm-up, outside every window)."""
    for d in range(2):
        if count[node, d] < EDGE_CAP:
            continue
        oldest = ring[node, d, 0, F_T]
        for s in range(1, EDGE_CAP):
            oldest = min(oldest, ring[node, d, s, F_T])
        lo = max(lo, oldest - 1)
    return lo


@njit(cache=True)
def _pass_through(ring: np.ndarray, count: np.ndarray, node: int, t: int, xin: int, xout: int) -> float:  # pragma: no cover
    """``node``'s outgoing amount over its incoming amount in (t-30d, t], over the span its rings still
    cover (:func:`_known_since`); ``xin``/``xout`` add the current edge's amount when not stored yet.
    NaN when nothing came in."""
    lo = _known_since(ring, count, node, t - W30D)
    got = _window_sum(ring, count, node, IN, lo) + xin
    if got <= 0:
        return np.nan
    return (_window_sum(ring, count, node, OUT, lo) + xout) / got


@njit(cache=True)
def _hub_share(ring: np.ndarray, count: np.ndarray, c: int, d: int, lo: int, min_new: int, xu: int, xv: int,
               xfen: int, xfirst: bool, scratch: np.ndarray) -> float:  # pragma: no cover - compiled
    """Share of customer ``c``'s amount in direction ``d`` over its edges with time > ``lo`` whose other
    end has, as of now, at least ``min_new`` new counterparties on its far side over the same window:
    for ``d`` = OUT, payees with that many new payers (collectors of a fan-in); for ``d`` = IN, payers
    with that many new payees (distributors of a fan-out). The current edge ``xu -> xv`` of ``xfen``
    (``xu`` = -1 when it is stored already) counts as if stored. NaN when ``c`` moved nothing that way.

    The 2-hop aggregate of the IBM Graph Feature Preprocessor's fan-in/fan-out patterns (Blanuša et al.,
    arXiv 2402.08593), carried by every row of the customer and not only its payments to the hub.
    ``scratch`` is (3, :data:`EDGE_CAP` + 1) int64, reused across calls (no allocation per row)."""
    far = 1 - d
    ends, fens, buf = scratch[0], scratch[1], scratch[2]
    n = 0
    k = _stored(count, c, d)
    for j in range(k + 1):
        if j < k:
            s = _slot(count[c, d], j)
            if ring[c, d, s, F_T] <= lo:
                continue
            y, f = ring[c, d, s, F_OTHER], ring[c, d, s, F_FEN]
        elif xu >= 0 and (xu == c if d == OUT else xv == c):
            y, f = (xv if d == OUT else xu), xfen
        else:
            break
        i = 0
        while i < n and ends[i] != y:
            i += 1
        if i == n:
            ends[n] = y
            fens[n] = 0
            n += 1
        fens[i] += f
    total = 0
    hub = 0
    for i in range(n):
        y = ends[i]
        total += fens[i]
        extra = -1
        if xu >= 0 and xfirst:
            if d == OUT and xv == y:
                extra = xu
            elif d == IN and xu == y:
                extra = xv
        if _new_ends(ring, count, y, far, lo, extra, buf, min_new) >= min_new:
            hub += fens[i]
    return hub / total if total > 0 else np.nan


@njit(cache=True)
def _pair_new(ring: np.ndarray, count: np.ndarray, c: int, cp: int, d: int, lo: int) -> bool:  # pragma: no cover
    """Whether a stored edge of ``c`` in direction ``d`` with ``cp``, time > ``lo``, was their first ever."""
    k = _stored(count, c, d)
    for j in range(k):
        s = _slot(count[c, d], j)
        if (ring[c, d, s, F_OTHER] == cp and ring[c, d, s, F_T] > lo and ring[c, d, s, F_INFO] & INFO_FIRST):
            return True
    return False


@njit(cache=True)
def _hub_features(ring: np.ndarray, count: np.ndarray, c: int, cp: int, u: int, v: int, t: int, fen: int,
                  first_pair: bool, virtual: bool, min_new: int, out: np.ndarray) -> None:  # pragma: no cover
    """The 2-hop fan-in/fan-out features into ``out``: the counterparty's new payers and payees and
    pass-through over 30 days, whether this pair is one of them, and the customer's shares of outflow to
    collectors and inflow from distributors. ``cp`` = -1 (no counterparty): only the customer's shares;
    ``virtual``: the current edge ``u -> v`` is not stored yet and counts as if it were."""
    lo30 = t - W30D
    xu = u if (cp >= 0 and virtual) else -1
    scratch = np.empty((3, EDGE_CAP + 1), dtype=np.int64)
    out[G_TO_COLLECTORS] = _hub_share(ring, count, c, OUT, lo30, min_new, xu, v, fen, first_pair, scratch)
    out[G_FROM_DISTRIBUTORS] = _hub_share(ring, count, c, IN, lo30, min_new, xu, v, fen, first_pair, scratch)
    if cp < 0:
        return
    new_now = virtual and first_pair
    buf, every = scratch[0], EDGE_CAP + 1
    out[G_NEW_PAYERS] = _new_ends(ring, count, cp, IN, lo30, u if (new_now and cp == v) else -1, buf, every)
    out[G_NEW_PAYEES] = _new_ends(ring, count, cp, OUT, lo30, v if (new_now and cp == u) else -1, buf, every)
    xin = fen if (virtual and cp == v) else 0
    xout = fen if (virtual and cp == u) else 0
    out[G_PASS] = _pass_through(ring, count, cp, t, xin, xout)
    d = OUT if c == u else IN
    out[G_PAIR_NEW] = 1.0 if (new_now or _pair_new(ring, count, c, cp, d, lo30)) else 0.0


@njit(cache=True)
def graph_step(ring: np.ndarray, count: np.ndarray, report_ns: np.ndarray, first_report: int, c: int, cp: int,
               is_in: bool, t: int, fen: int, payee_indiv: bool, first_pair: bool, store: bool, hub_min_new: int,
               out: np.ndarray) -> None:  # pragma: no cover - compiled
    """One transaction's graph features into ``out`` (:data:`GRAPH_FEATURES` order), then its edge stored.

    ``c`` is the customer's node, ``cp`` the counterparty's (-1 when unknown: no edge); ``is_in`` the
    direction; ``payee_indiv`` whether the payee is an individual; ``first_pair`` whether the payer
    never paid this payee before; ``store`` whether this row stores the edge (False for the ``in``
    leg of a transfer inside the bank, whose ``out`` leg stores it). ``report_ns`` is each customer's
    first reported instant (:func:`report_times`), ``first_report`` its minimum; ``hub_min_new`` the
    new counterparties that make a collector or distributor (``hub_min_new_counterparties``).
    """
    out[:] = 0.0
    out[G_KEPT] = np.nan
    out[G_INDIV_SHARE] = np.nan
    out[G_PASS] = np.nan
    if cp < 0:
        _reported_around(ring, count, report_ns, first_report, c, t, -1, False, 0, out)
        _hub_features(ring, count, c, cp, -1, -1, t, 0, False, False, hub_min_new, out)
        return
    u = cp if is_in else c
    v = c if is_in else cp
    virtual = store or not _has_edge(ring, count, u, v, t, fen)  # count the edge once
    n_rep = report_ns.shape[0]

    # the counterparty's recent flows (distinct payers and payees, amounts in and out over 7 days)
    buf = np.empty(EDGE_CAP + 1, dtype=np.int64)
    lo7 = t - W7D
    n = _neighbours(ring, count, cp, IN, lo7, buf, 0)
    sum_in = _window_sum(ring, count, cp, IN, lo7)
    if virtual and cp == v:
        n = _add_distinct(buf, n, u)
        sum_in += fen
    out[G_CP_FAN_IN] = n
    out[G_CP_IN_SUM] = sum_in / 100.0
    n = _neighbours(ring, count, cp, OUT, lo7, buf, 0)
    sum_out = _window_sum(ring, count, cp, OUT, lo7)
    if virtual and cp == u:
        n = _add_distinct(buf, n, v)
        sum_out += fen
    out[G_CP_FAN_OUT] = n
    out[G_CP_OUT_SUM] = sum_out / 100.0

    # gather-scatter at the payer: distinct payers and payees of u over 7 days, the smaller of the two
    n_in = _neighbours(ring, count, u, IN, lo7, buf, 0)
    n_out = _neighbours(ring, count, u, OUT, lo7, buf, 0)
    if virtual:
        n_out = _add_distinct(buf, n_out, v)
    out[G_GS] = min(n_in, n_out)

    # scatter-gather into the payee: other intermediaries m that paid v within 7 days and were paid
    # (before that) by one of the payers of u of the last 7 days
    sources = np.empty(EDGE_CAP, dtype=np.int64)
    n_src = _neighbours(ring, count, u, IN, lo7, sources, 0)
    if n_src > 0:
        mids = np.empty(EDGE_CAP, dtype=np.int64)
        n_mid = 0
        kv = _stored(count, v, IN)
        for j in range(kv):
            s = _slot(count[v, IN], j)
            t2 = ring[v, IN, s, F_T]
            if t2 <= lo7:
                continue
            m = ring[v, IN, s, F_OTHER]
            if m == u or m == v or _contains(mids, n_mid, m):
                continue
            km = _stored(count, m, IN)
            for q in range(km):
                sm = _slot(count[m, IN], q)
                t1 = ring[m, IN, sm, F_T]
                if t1 <= lo7:
                    continue
                if t1 <= t2 and _contains(sources, n_src, ring[m, IN, sm, F_OTHER]):
                    mids[n_mid] = m
                    n_mid += 1
                    break
        out[G_SG] = n_mid

    # temporal cycles back to the payee within 7 days
    shortest, found = _cycles(ring, count, u, v, t)
    out[G_CYC_LEN] = shortest
    out[G_CYC_CNT] = found

    # pass-through chain ending with this edge
    hops, kept = _chain(ring, count, u, t, fen)
    out[G_CHAIN] = hops
    out[G_KEPT] = kept

    # the payer's side over 30 days: share of its outflow to individuals, first-time individual payees
    lo30 = t - W30D
    total = fen if virtual else 0
    indiv = fen if (virtual and payee_indiv) else 0
    payees = np.empty(EDGE_CAP + 1, dtype=np.int64)
    n_payees = 0
    new_indiv = np.empty(EDGE_CAP + 1, dtype=np.int64)
    n_new = 0
    if virtual:
        n_payees = _add_distinct(payees, n_payees, v)
        if payee_indiv and first_pair:
            n_new = _add_distinct(new_indiv, n_new, v)
    ku = _stored(count, u, OUT)
    for j in range(ku):
        s = _slot(count[u, OUT], j)
        if ring[u, OUT, s, F_T] <= lo30:
            continue
        f = ring[u, OUT, s, F_FEN]
        info = ring[u, OUT, s, F_INFO]
        y = ring[u, OUT, s, F_OTHER]
        total += f
        n_payees = _add_distinct(payees, n_payees, y)
        if info & INFO_INDIV:
            indiv += f
            if info & INFO_FIRST:
                n_new = _add_distinct(new_indiv, n_new, y)
    out[G_INDIV_SHARE] = indiv / total if total > 0 else np.nan
    out[G_NEW_INDIV] = n_new
    out[G_PAYEES] = n_payees

    # reported customers around (point in time: a report counts from its report_date on)
    out[G_CP_REP] = 1.0 if (cp < n_rep and cp != c and report_ns[cp] <= t) else 0.0
    _reported_around(ring, count, report_ns, first_report, c, t, cp if virtual else -1, is_in, fen, out)
    _hub_features(ring, count, c, cp, u, v, t, fen, first_pair, virtual, hub_min_new, out)

    if store:
        info = (INFO_INDIV if payee_indiv else 0) | (INFO_FIRST if first_pair else 0) | (hops << _CHAIN_SHIFT)
        s = count[u, OUT] % EDGE_CAP
        ring[u, OUT, s, F_OTHER] = v
        ring[u, OUT, s, F_T] = t
        ring[u, OUT, s, F_FEN] = fen
        ring[u, OUT, s, F_INFO] = info
        count[u, OUT] += 1
        s = count[v, IN] % EDGE_CAP
        ring[v, IN, s, F_OTHER] = u
        ring[v, IN, s, F_T] = t
        ring[v, IN, s, F_FEN] = fen
        ring[v, IN, s, F_INFO] = info
        count[v, IN] += 1


@njit(cache=True)
def graph_pass(ring: np.ndarray, count: np.ndarray, report_ns: np.ndarray, cust: np.ndarray, cp: np.ndarray,
               is_in: np.ndarray, t: np.ndarray, fen: np.ndarray, payee_indiv: np.ndarray, first_pair: np.ndarray,
               store: np.ndarray, hub_min_new: int) -> np.ndarray:  # pragma: no cover - compiled
    """:func:`graph_step` over rows in time order; the features (n, :data:`N_GRAPH`)."""
    n = len(t)
    result = np.empty((n, N_GRAPH), dtype=np.float64)
    row = np.empty(N_GRAPH, dtype=np.float64)
    first_report = report_ns.min()
    for i in range(n):
        graph_step(ring, count, report_ns, first_report, cust[i], cp[i], is_in[i], t[i], fen[i], payee_indiv[i], first_pair[i],
                   store[i], hub_min_new, row)
        result[i] = row
    return result
