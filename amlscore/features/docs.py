"""Render the feature catalogue as Markdown for people (``docs/features.md`` is generated from here)."""

from __future__ import annotations

from amlscore.features.catalogue import CATALOGUE, FEATURE_SET_VERSION, WINDOWS
from amlscore.features.params import FeatureParams, load_feature_params

_GROUP_TITLES = {
    "velocity": "Velocity and volume",
    "cash": "Cash",
    "channel": "Channel, amount and time of day",
    "pass_through": "Pass-through",
    "counterparty": "Counterparties",
    "geography": "Geography",
    "shared_identifiers": "Shared identifiers across customers",
    "dormancy": "Dormancy",
    "peer_group": "Peer groups and own history",
    "profile": "Profile consistency",
    "graph": "Counterparty graph",
    "id_component": "Components of shared identifiers",
}

_HEADER = """# Feature catalogue ({version})

Generated from `amlscore/features/catalogue.py` by `amlscore catalogue`; do not edit by hand.
{count} features, one row per transaction. Parameters: `amlscore/features/config/feature_params.yaml`
(hash `{params_hash}`).

How to read it:

* **Window**: a window `w` ending at a transaction at time `t` covers `(t - w, t]`: the transaction
  itself and the customer's (or the identifier's) earlier transactions, never a later one. Ties in
  time are ordered by `txn_id`. Windows: {windows}.
* **Entity**: what the feature is counted over: the transaction alone, the customer's history, an
  IP address, device, operator, agent or phone shared across customers, or the peer group
  (customer type x occupation or industry).
* Amounts are CNY and summed exactly (in fen). A feature that is undefined is empty (`NaN`).
* The same definitions feed training (offline, whole histories) and serving (online, one
  transaction at a time); the test suite holds the two to identical values.

Handling of awkward input on the online path: an unknown customer, a missing or malformed field or
a transaction older than the customer's latest processed one is refused with a message naming it,
and nothing is counted; a `txn_id` seen before returns the row it got then and is not counted again.
Late transactions belong to the offline path, which orders the whole history.

The online state is durable in SQLite (`amlscore/features/store.py`): each transaction is committed, with the
row it got, in its own SQLite transaction before the row is returned (WAL, `synchronous=NORMAL`), and
the whole state is snapshotted every 50,000 transactions, by a forked child that writes a checksummed
file beside the database while the parent goes on (the request path pays only the fork, ~30 ms; the
pickling in the request path took 1.5-1.9 s). WAL checkpoints run in a background thread
(`amlscore/storage/wal.py`), never in the committing call. A restarted service loads the newest valid
snapshot (a damaged, foreign or too-new file is ignored with a warning) and replays the transactions
stored after it, so after a crash or kill of the process it continues exactly where it stopped. After
a power cut or an operating-system crash the database stays consistent, but the transactions
committed since the last WAL checkpoint (one runs about every 200 transactions) may be missing,
and the state continues from the last one kept; `SQLiteFeatureStore(path, durable=True)` fsyncs every
commit and survives a power cut too. Memory
follows the windows, not the history: a customer keeps the events of its last 90 days, peer-group
days older than the lookback are dropped, the peer-group sizes and shared agent and phone counts are
cached once per customer, and IP, device and operator windows idle for longer than their window plus
90 days are forgotten (a slice of the tables every 100 transactions, not all at once). A customer's
event buffers double only when the events inside the window fill three quarters of them (a full
buffer otherwise drops the events that left the window), and halve whenever those events fill under
an eighth, so they grow only where a window grows and a burst's room comes back once it has left
the window. Only each customer's set of
counterparties grows with the history, as the first-time counterparty feature needs it.

Warm-up: a service starts from the last days of the history (100 by default), not all of it. Three
facts per customer reach further back than any window: the time of its previous transaction, of its
previous incoming one, and the counterparties it ever dealt with. `amlscore.features.online.warm_up` seeds
them from the older history before it replays the recent days (and keeps the seed as the snapshot at
event 0, so a rebuild from the stored events starts from it too); without the seed, a counterparty
last paid 200 days ago would be "new" to the service but not to training. After the warm-up every
feature equals the offline path's over the whole history, exactly, except the standard deviations:
both paths take them from running sums of squares, which start at the history's first day offline
and at the warm-up's first day online, so they agree up to rounding (at most 0.2 yuan of standard
deviation in the test, where a window's amounts are nearly equal).

Counterparty graph (`amlscore/features/graph.py`, the last section below): the nodes are the bank's
customers and the accounts outside it (by `counterparty_account`); a transaction with a known
counterparty is an edge from payer to payee. A transfer between two customers comes as two legs:
the payer's `out` row stores the edge and the payee's `in` row reads the graph as if it were stored
(counting it once either way). Like IBM's Graph Feature Preprocessor (Blanuša et al., arXiv
2402.08593), the state is windowed and bounded per node: each node keeps its latest 16 outgoing and
16 incoming edges, and every feature reads only those inside its window, so a node with more edges
in a window is counted over its latest 16 (the counts saturate there). The temporal cycle search
(depth-first from the payee over out-edges, newest first, each hop no earlier than the one before)
follows at most 8 out-edges per node and examines at most 4,096 edges per transaction; pass-through
chains count up to 8 hops. One compiled step (`graph_step`) computes a transaction's graph features
and then stores its edge: the offline path runs it over the whole history in time order, the online
path once per transaction, so the two agree exactly when the service sees the transactions in the
same (time, `txn_id`) order across customers. Online, the graph is one array per node id, outside
accounts idle for 120 days are forgotten and their ids reused (their edges are older than any
window), and only the set of payer-payee pairs ever stored (for "first payment to this payee") grows
with the history; the warm-up seeds it from the older history.

Reported neighbours: a customer counts as reported from the bank-local start of the `report_date` of
its earliest `suspicious` report, never before (`not_suspicious` dispositions do not count, and a
customer's own report is never its own neighbour). Offline the reports come with the data set;
online `OnlineFeatureState(..., reports=...)` takes them as an input (the service passes the data
folder's reports and the analysts' feedback, `set_reports` replaces them) and the two paths agree
given the same reports. Training at a cut-off uses every report in the data set, each from its
report_date, as the service would have known it at the time.

Components of shared identifiers (`amlscore/features/idcomp.py`, the last section below): customers
are linked by an IP address, device or operator both were seen with inside the window (30 days by
default; a link counts only while it was seen inside it, so a shared Wi-Fi or a public IP does not
join its users for ever) and by the own phone, emergency contact phone and agent the customers table
gives them (from the onboarding date on). A customer's component is everyone reached over such links
in a chain: A and B share a device, B and C an IP, C and D an emergency phone make one component of
4, which no single identifier's count shows. Union-find cannot forget a link, so each transaction
runs a bounded breadth-first search over bounded state (as the graph above): a customer keeps its 16
most recently seen identifiers, an identifier its 13 most recently seen customers; an identifier with
more than 12 customers in the window (a NAT address, an agent serving many) is a hub and is not
followed; the search runs whole levels (customers at the same distance) until it has found 64, where
the size saturates (what it finds does not depend on the order links are stored in, so a warm-up
replay finds the same). Growth counts the members reached only over links first seen (or customers
onboarded) within the last 7 days; reported members (over every customer found) count from their
report_date as above. One compiled step (`idcomp_step`) serves both paths, so they agree exactly in the same
order; online only the identifiers' slots grow with the distinct identifiers seen. Windows, caps and
which identifiers are followed are parameters (`id_components` below).
"""


def _flat(values: dict, prefix: str = "") -> list[tuple[str, object]]:
    """``(dotted name, value)`` of the parameters, a nested section's entries under its name."""
    out: list[tuple[str, object]] = []
    for key, value in values.items():
        if isinstance(value, dict):
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def render_catalogue_markdown(params: FeatureParams | None = None) -> str:
    """The catalogue as a Markdown document, grouped by theme, with each feature's formula."""
    params = params or load_feature_params()
    lines = [_HEADER.format(version=FEATURE_SET_VERSION, count=len(CATALOGUE), params_hash=params.hash,
                            windows=", ".join(WINDOWS))]
    for group, title in _GROUP_TITLES.items():
        specs = [s for s in CATALOGUE if s.group == group]
        lines.append(f"\n## {title}\n")
        lines.append("| feature | meaning | window | entity | formula |")
        lines.append("|---|---|---|---|---|")
        for s in specs:
            formula = s.formula.replace("|", "\\|")
            lines.append(f"| `{s.name}` | {s.meaning} | {s.window or '-'} | {s.entity} | `{formula}` |")
    lines.append("\n## Parameters\n")
    lines.append("| parameter | value |")
    lines.append("|---|---|")
    for key, value in _flat(params.model_dump(mode="json")):
        shown = ", ".join(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else value
        lines.append(f"| `{key}` | {shown} |")
    return "\n".join(lines) + "\n"
