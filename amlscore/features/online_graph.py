"""The online path's counterparty graph: node ids, the graph's arrays, and one transaction's graph features.

:class:`OnlineGraph` numbers the graph's nodes (customers are nodes ``0 .. n_customers - 1``, their
registry codes; outside accounts get the ids after them, reused once an idle account is forgotten),
keeps the payer-payee pairs that stored an edge, and runs the compiled step of
:mod:`amlscore.features.graph` for each transaction.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from amlscore.features.graph import F_OTHER, N_GRAPH, GraphArrays, graph_step
from amlscore.features.registry import CustomerRegistry

_SPARE_NODES = 1024  # room for outside accounts beyond the customers at the start


class OnlineGraph:
    """The counterparty graph's state (snapshots keep :meth:`blob`) and the step that reads and extends it."""

    __slots__ = ("arrays", "n_customers", "outside", "outside_keys", "free", "next_node", "pairs", "row",
                 "last_cp_node")

    def __init__(self, n_customers: int) -> None:
        self.arrays = GraphArrays.empty(n_customers + _SPARE_NODES)
        self.n_customers = n_customers
        self.outside: dict[str, int] = {}
        self.outside_keys: dict[int, str] = {}  # node id -> key, for forgetting idle accounts
        self.free: list[int] = []
        self.next_node = n_customers
        # payer -> payee pairs that stored an edge, for "first payment to this payee" (grows with the
        # history, like each customer's set of counterparties)
        self.pairs: set[tuple[str, str]] = set()
        self.row = np.empty(N_GRAPH, dtype=np.float64)
        self.last_cp_node = -1  # graph node of the counterparty of the transaction being counted

    def blob(self) -> dict[str, Any]:
        """What a snapshot keeps: the nodes in use, not the arrays' spare room."""
        a, n = self.arrays, self.next_node
        return {"ring": a.ring[:n], "count": a.count[:n], "outside": self.outside, "outside_keys": self.outside_keys,
                "free": self.free, "next": n, "pairs": self.pairs}

    def restore(self, saved: dict[str, Any]) -> None:
        """The graph of a snapshot's :meth:`blob` (under the snapshot's customer codes; :meth:`remap` follows)."""
        self.arrays = GraphArrays(ring=saved["ring"], count=saved["count"])
        self.arrays.grow(len(saved["count"]) + _SPARE_NODES)
        self.outside, self.free = saved["outside"], saved["free"]
        self.outside_keys = saved["outside_keys"]
        self.next_node, self.pairs = saved["next"], saved["pairs"]

    def node(self, key: str, code_of: dict[str, int]) -> int:
        """The graph node of a counterparty key: a customer's code, else an outside account's id."""
        code = code_of.get(key)
        if code is not None:
            return code
        node = self.outside.get(key)
        if node is None:
            if self.free:
                node = self.free.pop()
            else:
                node = self.next_node
                self.next_node += 1
                self.arrays.grow(self.next_node)
            self.outside[key] = node
            self.outside_keys[node] = key
        return node

    def features(self, registry: CustomerRegistry, record: Mapping[str, Any], cust: int, cp: str | None, is_in: bool,
                 t: int, amount: float, report_ns: np.ndarray, first_report: int) -> np.ndarray:
        """The transaction's graph features (:data:`GRAPH_FEATURES` order); its edge joins the graph.

        The row is a buffer reused by the next call.
        """
        customer_id = record["customer_id"]
        if cp is None:
            node, payee_indiv, first, store = -1, False, False, False
        else:
            node = self.node(cp, registry.code_of)
            internal = node < self.n_customers
            store = not (is_in and internal)  # a transfer inside the bank: its out leg stores the edge
            if is_in:
                payee_indiv = not bool(registry.is_corporate[cust])
                pair = (cp, customer_id)
            else:
                payee_indiv = record["counterparty_type"] == "individual"
                pair = (customer_id, cp)
            first = pair not in self.pairs
            if store:
                self.pairs.add(pair)
        self.last_cp_node = node
        out = self.row
        graph_step(self.arrays.ring, self.arrays.count, report_ns, first_report, cust, node, is_in, t,
                   int(np.rint(amount * 100)), payee_indiv, first, store, out)
        return out

    def forget_idle(self, nodes: np.ndarray, idle_before: int) -> None:
        """Forget the outside accounts among ``nodes`` whose newest edge is at or before ``idle_before``; their
        ids are reused (every edge still naming them is older than any window)."""
        idle = nodes[self._last_times(nodes) <= idle_before]
        for node in idle.tolist():
            key = self.outside_keys.pop(node, None)
            if key is not None:
                del self.outside[key]
                self.arrays.clear(node)
                self.free.append(node)

    def _last_times(self, nodes: np.ndarray) -> np.ndarray:
        """Time of each node's newest stored edge (0 when none)."""
        ring, count = self.arrays.ring, self.arrays.count[nodes]
        latest = np.zeros(len(nodes), dtype=np.int64)
        for d in range(2):
            t = ring[nodes, d, (count[:, d] - 1) % ring.shape[2], 1]
            latest = np.maximum(latest, np.where(count[:, d] > 0, t, 0))
        return latest

    def remap(self, cmap: np.ndarray, new_n: int) -> None:
        """Renumber the nodes: customer ``c`` of the old codes becomes ``cmap[c]`` of ``new_n`` customers, and
        the outside accounts shift past the customers."""
        old_n = len(cmap)
        old_next = max(self.next_node, old_n)
        node_map = np.concatenate([cmap, np.arange(old_n, old_next, dtype=np.int64) - old_n + new_n])
        new_next = old_next - old_n + new_n
        graph = GraphArrays.empty(new_next + _SPARE_NODES)
        graph.ring[node_map] = self.arrays.ring[:old_next]
        graph.count[node_map] = self.arrays.count[:old_next]
        others = graph.ring[..., F_OTHER]
        graph.ring[..., F_OTHER] = node_map[np.clip(others, 0, old_next - 1)]
        self.arrays = graph
        shift = new_n - old_n
        self.outside = {k: v + shift for k, v in self.outside.items()}
        self.outside_keys = {v + shift: k for v, k in self.outside_keys.items()}
        self.free = [v + shift for v in self.free]
        self.next_node = new_next
        self.n_customers = new_n
