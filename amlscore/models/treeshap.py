"""Compiled path-dependent TreeSHAP of a LightGBM booster, one row at a time (the online explanations).

LightGBM's ``pred_contrib=True`` runs the recursive TreeSHAP of Lundberg et al. (``Tree::TreeSHAP``):
at every node it copies the path so far, and at every leaf it unwinds the path once per feature.
Here the trees are flattened once into their root-to-leaf paths, as GPUTreeShap does (Mitchell et
al., 2022). For each leaf, every unique feature on its path is one *element* holding

* the "zero fraction" ``z``: the product of that feature's cover ratios on the path (LightGBM's
  ``data_count(child) / data_count(node)``, multiplied in path order, so the very same doubles);
* the edges of that feature on the path. For a row only the "one fraction" ``o`` depends on the
  input: 1 if the row takes every one of those edges (LightGBM's ``NumericalDecision`` at each of
  their nodes), else 0.

A leaf of value ``v`` whose ``n`` elements are ``(z_j, o_j)`` adds to element ``i``'s feature

    v (o_i - z_i) * sum_S |S|! (n-1-|S|)! / n! * prod_{j in S} o_j * prod_{j not in S, j != i} z_j

(the sum over subsets ``S`` of the other elements): what LightGBM's EXTEND and UNWOUND sums compute.
The Shapley weight is the Beta integral ``int_0^1 t^|S| (1-t)^(n-1-|S|) dt``, so the sum is

    int_0^1 prod_{j != i} (z_j (1 - t) + o_j t) dt,

the integral of a polynomial of degree ``n - 1``, which a Gauss-Legendre rule of ``ceil(n / 2)``
points gives exactly (the identity Linear TreeSHAP, Yu et al. 2022, builds on). Prefix and suffix
products over the elements give every ``i`` at once: about ``n * ceil(n / 2)`` multiply-adds per
leaf, no division. Leaves with the same number of elements are processed side by side, so the
compiler vectorises across leaves. The result equals LightGBM's to rounding (summation order
differs; the tests hold it to 1e-9); the expected value (the last output) is summed exactly as
LightGBM sums it, so it is bit-identical.

Supported: single-output boosters (binary or regression: one tree per iteration, no
``average_output``) whose splits are all numerical (``decision_type`` ``<=``), with missing types
None, Zero or NaN, and constant leaves. Anything else (categorical splits, linear trees,
multiclass, random forest) makes :meth:`CompiledTreeShap.build` return None, and the caller keeps
LightGBM's own TreeSHAP.

The kernel is compiled by numba with ``cache=True`` (once per machine, then loaded from
``__pycache__``) and releases the GIL; the tables are built from the text model in a fraction of a
second (~0.1 s for 130 trees of 31 leaves).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

__all__ = ["CompiledTreeShap", "UnsupportedModelError"]

_MAX_ELEMENTS = 128  # unique features on one path (LightGBM paths are far shorter)


class UnsupportedModelError(ValueError):
    """The booster holds something the compiled TreeSHAP does not reproduce exactly."""


def _gauss_legendre_tables(max_points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss-Legendre rules of 1..max_points points on [0, 1], concatenated: rule ``k`` is ``[ptr[k], ptr[k] + k)``."""
    ptr = np.zeros(max_points + 1, dtype=np.int64)
    ts, ws, size = [], [], 0
    for k in range(1, max_points + 1):
        x, w = np.polynomial.legendre.leggauss(k)
        ptr[k] = size
        size += k
        ts.append(0.5 * (x + 1.0))
        ws.append(0.5 * w)
    return np.concatenate(ts), np.concatenate(ws), ptr


_GL_T, _GL_W, _GL_PTR = _gauss_legendre_tables((_MAX_ELEMENTS + 1) // 2)


class CompiledTreeShap:
    """TreeSHAP contributions of one row, as LightGBM's ``pred_contrib=True``, from flattened root-to-leaf paths.

    Build it with :meth:`build` (None when the booster is not supported) and call
    :meth:`contributions`. It holds only read-only numpy arrays: one object serves every thread.

    Attributes
    ----------
    n_features : int
    expected_value : float
        The last output: the sum over trees of LightGBM's ``Tree::ExpectedValue``.
    n_trees, n_nodes, n_leaves, n_elements : int
        Trees used, internal nodes, leaves of trees with splits, and (leaf, unique feature) pairs.
    """

    def __init__(self, n_features: int, expected_value: float, n_trees: int, arrays: dict[str, np.ndarray]) -> None:
        self.n_features = int(n_features)
        self.expected_value = float(expected_value)
        self.n_trees = int(n_trees)
        for arr in arrays.values():
            arr.setflags(write=False)
        self.n_nodes = int(len(arrays["node_feature"]))
        self.n_leaves = int(len(arrays["leaf_value"]))
        self.n_elements = int(len(arrays["elem_key"]))
        self._args = (arrays["node_feature"], arrays["node_threshold"], arrays["node_missing"],
                      arrays["node_default_left"], arrays["combo_ptr"], arrays["combo_key"], arrays["group_n"],
                      arrays["group_leaves"], arrays["group_elem0"], arrays["group_leaf0"], arrays["elem_key"],
                      arrays["elem_zero"], arrays["elem_feature"], arrays["leaf_value"], _GL_T, _GL_W, _GL_PTR)

    # -- building ---------------------------------------------------------------------------------
    @classmethod
    def build(cls, booster: Any, start_iteration: int = 0, num_iteration: int = -1) -> "CompiledTreeShap | None":
        """The compiled form of ``booster``'s trees, or None if the model is not supported.

        ``start_iteration`` / ``num_iteration`` choose the trees as LightGBM's C API does. The
        defaults (0, -1: every tree of the model) are what :mod:`amlscore.models.supervised`'s single-row
        predictor uses, and what ``Booster.predict`` uses for a booster loaded from text. (A booster
        fresh from early-stopped training that was not cut at its best iteration would need
        ``num_iteration=booster.best_iteration`` to match ``Booster.predict``.)
        """
        try:
            text = booster.model_to_string(num_iteration=num_iteration, start_iteration=start_iteration)
            return cls.from_model_string(text, n_features=int(booster.num_feature()))
        except UnsupportedModelError:
            return None

    @classmethod
    def from_model_string(cls, text: str, n_features: int | None = None) -> "CompiledTreeShap":
        """Build from LightGBM's text model; raises :class:`UnsupportedModelError` if it is not supported.

        The text model, not ``Booster.dump_model()``, is read: it holds the very doubles LightGBM
        loads (thresholds and leaf values to 17 digits, ``inf`` as ``inf``), while the JSON dump
        writes an infinite threshold as 1e300 (``Common::AvoidInf``), which would send a row's
        ``inf`` (or anything above 1e300) down the other branch.
        """
        header, trees = _parse_model_string(text)
        if int(header.get("num_class", "1")) != 1 or int(header.get("num_tree_per_iteration", "1")) != 1:
            raise UnsupportedModelError("only single-output models (one tree per iteration) are supported")
        if "average_output" in header:
            raise UnsupportedModelError("average_output (random forest) is not supported")
        n_feat = int(header["max_feature_idx"]) + 1
        if n_features is not None and int(n_features) != n_feat:
            raise UnsupportedModelError(f"the model has {n_feat} features, the booster {n_features}")

        node_feature: list[int] = []
        node_threshold: list[float] = []
        node_missing: list[int] = []
        node_default_left: list[int] = []
        leaves: list[tuple[float, list[tuple[int, tuple[int, ...], float]]]] = []  # (value, [(feature, keys, z)])
        expected = 0.0
        for tree in trees:
            if tree.get("is_linear", "0") != "0":
                raise UnsupportedModelError("linear trees are not supported")
            n_leaves = int(tree["num_leaves"])
            values = _floats(tree, "leaf_value", n_leaves)
            if n_leaves == 1:  # a constant tree: Tree::ExpectedValue is its value, and it adds no contribution
                expected += values[0]
                continue
            n_inner = n_leaves - 1
            feature = _ints(tree, "split_feature", n_inner)
            threshold = _floats(tree, "threshold", n_inner)
            decision = _ints(tree, "decision_type", n_inner)
            left, right = _ints(tree, "left_child", n_inner), _ints(tree, "right_child", n_inner)
            leaf_count = _ints(tree, "leaf_count", n_leaves)
            inner_count = _ints(tree, "internal_count", n_inner)
            if min(leaf_count) <= 0 or min(inner_count) <= 0:  # LightGBM would divide by zero: leave it to it
                raise UnsupportedModelError("a node has a data count of 0")
            base = len(node_feature)
            for k in range(n_inner):
                d = decision[k]
                if d & 1:
                    raise UnsupportedModelError("categorical splits are not supported")
                missing = (d >> 2) & 3  # Tree::GetMissingType: 0 None, 1 Zero, 2 NaN
                if missing == 3:
                    raise UnsupportedModelError("unknown missing type 3")
                if not 0 <= feature[k] < n_feat:
                    raise UnsupportedModelError(f"split feature {feature[k]} is out of range")
                node_feature.append(feature[k])
                node_threshold.append(threshold[k])
                node_missing.append(missing)
                node_default_left.append(1 if d & 2 else 0)  # kDefaultLeftMask

            # depth-first walk; a stack entry is (node, path) with path a list of (key, feature, ratio)
            # where key = 2 * global node id + (0 if the edge goes left else 1)
            stack: list[tuple[int, list[tuple[int, int, float]]]] = [(0, [])]
            while stack:
                node, path = stack.pop()
                if node < 0:
                    leaves.append((values[~node], _path_elements(path)))
                    continue
                w = float(inner_count[node])  # TreeSHAP: data_count(child) / w, as doubles
                gid = base + node
                for side, child in ((1, right[node]), (0, left[node])):
                    ratio = (inner_count[child] if child >= 0 else leaf_count[~child]) / w
                    stack.append((child, path + [(2 * gid + side, feature[node], ratio)]))
            # Tree::ExpectedValue: leaves in index order, (leaf_count / total_count) * leaf_value
            total = float(inner_count[0])
            ev = 0.0
            for i in range(n_leaves):
                ev += (leaf_count[i] / total) * values[i]
            expected += ev  # GBDT::PredictContrib adds the trees' expected values in tree order

        return cls(n_feat, expected, len(trees),
                   _layout(node_feature, node_threshold, node_missing, node_default_left, leaves))

    # -- scoring ----------------------------------------------------------------------------------
    def contributions(self, row: np.ndarray) -> np.ndarray:
        """Contributions of one row (float64, shape (n_features,)): shape (n_features + 1,), the expected value last.

        Takes ~0.15 ms of CPU for 130 trees of 31 leaves (LightGBM's own TreeSHAP: ~1.3 ms).
        """
        row = np.ascontiguousarray(row, dtype=np.float64)
        if row.shape != (self.n_features,):
            raise ValueError(f"a row of {self.n_features} features is expected. Got shape {row.shape} instead.")
        if not row.flags.writeable:  # numba types read-only arrays apart: one compiled (and cached) signature only
            row = row.copy()
        out = np.zeros(self.n_features + 1, dtype=np.float64)
        _contributions_kernel(row, *self._args, out)
        out[self.n_features] = self.expected_value
        return out

    def contributions_many(self, X: np.ndarray) -> np.ndarray:
        """Contributions of several rows (one at a time), shape (n_rows, n_features + 1)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"rows of {self.n_features} features are expected. Got shape {X.shape} instead.")
        if not X.flags.writeable:
            X = X.copy()
        out = np.zeros((X.shape[0], self.n_features + 1), dtype=np.float64)
        for i in range(X.shape[0]):
            _contributions_kernel(X[i], *self._args, out[i])
        out[:, self.n_features] = self.expected_value
        return out


def _parse_model_string(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """LightGBM's text model as (header, trees), each a dict of its ``key=value`` lines (a bare key maps to "")."""
    header: dict[str, str] = {}
    trees: list[dict[str, str]] = []
    current = header
    for line in text.splitlines():
        if line.startswith("end of trees"):
            break
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
        elif line:
            key, _, value = line.partition("=")
            current[key] = value
    if "max_feature_idx" not in header:
        raise UnsupportedModelError("not a LightGBM text model")
    return header, trees


def _floats(tree: dict[str, str], key: str, n: int) -> list[float]:
    values = [float(v) for v in tree.get(key, "").split()]  # float() reads "inf" / "-inf" as LightGBM writes them
    if len(values) != n:
        raise UnsupportedModelError(f"a tree has {len(values)} {key} values, {n} expected")
    return values


def _ints(tree: dict[str, str], key: str, n: int) -> list[int]:
    values = [int(v) for v in tree.get(key, "").split()]
    if len(values) != n:
        raise UnsupportedModelError(f"a tree has {len(values)} {key} values, {n} expected")
    return values


def _path_elements(path: list[tuple[int, int, float]]) -> list[tuple[int, tuple[int, ...], float]]:
    """A leaf's elements (feature, edge keys, zero fraction), by last occurrence as LightGBM's unique path."""
    zero: dict[int, float] = {}
    keys: dict[int, list[int]] = {}
    last: dict[int, int] = {}
    for depth, (key, feature, ratio) in enumerate(path):
        # TreeSHAP: hot/cold_zero_fraction * incoming_zero_fraction, in path order
        zero[feature] = ratio * zero[feature] if feature in zero else ratio
        keys.setdefault(feature, []).append(key)
        last[feature] = depth
    return [(f, tuple(keys[f]), zero[f]) for f in sorted(last, key=last.__getitem__)]


def _layout(node_feature: list[int], node_threshold: list[float], node_missing: list[int],
            node_default_left: list[int], leaves: list) -> dict[str, np.ndarray]:
    """The kernel's arrays: leaves grouped by element count, each group's elements element-major.

    An element of one edge reads the row's decision at that edge (key ``2 * node + side``); an
    element of several edges (a feature split on more than once on the path) reads a *combo* key
    ``2 * n_nodes + c``, the AND of its edges, computed once per row.
    """
    n_nodes = len(node_feature)
    combos: dict[tuple[int, ...], int] = {}
    by_size: dict[int, list[int]] = {}
    for index, (_, elements) in enumerate(leaves):
        if len(elements) > _MAX_ELEMENTS:
            raise UnsupportedModelError(f"a path has {len(elements)} unique features (at most {_MAX_ELEMENTS})")
        by_size.setdefault(len(elements), []).append(index)
    group_n, group_leaves, group_elem0, group_leaf0 = [], [], [], []
    elem_key: list[int] = []
    elem_zero: list[float] = []
    elem_feature: list[int] = []
    leaf_value: list[float] = []
    for n in sorted(by_size):
        members = by_size[n]
        group_n.append(n)
        group_leaves.append(len(members))
        group_elem0.append(len(elem_key))
        group_leaf0.append(len(leaf_value))
        leaf_value.extend(leaves[i][0] for i in members)
        for j in range(n):
            for i in members:
                feature, keys, z = leaves[i][1][j]
                if len(keys) == 1:
                    elem_key.append(keys[0])
                else:
                    elem_key.append(2 * n_nodes + combos.setdefault(keys, len(combos)))
                elem_zero.append(z)
                elem_feature.append(feature)
    combo_ptr = np.zeros(len(combos) + 1, dtype=np.int64)
    combo_key: list[int] = []
    for keys, c in sorted(combos.items(), key=lambda item: item[1]):
        combo_key.extend(keys)
        combo_ptr[c + 1] = len(combo_key)
    return {"node_feature": np.asarray(node_feature, dtype=np.int64),
            "node_threshold": np.asarray(node_threshold, dtype=np.float64),
            "node_missing": np.asarray(node_missing, dtype=np.uint8),
            "node_default_left": np.asarray(node_default_left, dtype=np.uint8),
            "combo_ptr": combo_ptr, "combo_key": np.asarray(combo_key, dtype=np.int64),
            "group_n": np.asarray(group_n, dtype=np.int64), "group_leaves": np.asarray(group_leaves, dtype=np.int64),
            "group_elem0": np.asarray(group_elem0, dtype=np.int64),
            "group_leaf0": np.asarray(group_leaf0, dtype=np.int64),
            "elem_key": np.asarray(elem_key, dtype=np.int64), "elem_zero": np.asarray(elem_zero, dtype=np.float64),
            "elem_feature": np.asarray(elem_feature, dtype=np.int64),
            "leaf_value": np.asarray(leaf_value, dtype=np.float64)}


@njit(cache=True, nogil=True, fastmath={"contract"})
def _contributions_kernel(row, node_feature, node_threshold, node_missing, node_default_left, combo_ptr, combo_key,
                          group_n, group_leaves, group_elem0, group_leaf0, elem_key, elem_zero, elem_feature,
                          leaf_value, gl_t, gl_w, gl_ptr, out):  # pragma: no cover - compiled
    """Add the TreeSHAP contributions of ``row`` to ``out[:n_features]`` (see the module's docstring)."""
    n_features = row.shape[0]
    # LightGBM's dense-row reader keeps a value only if |v| > kZeroThreshold (1e-35f) or NaN: the rest reads
    # as 0. flags: bit 0 = "is zero" (Tree::IsZero after NaN -> 0), bit 1 = "is NaN"; node_missing is 0
    # (None), 1 (Zero: zero goes the default way) or 2 (NaN: NaN goes the default way), a mask of these.
    xz = np.empty(n_features, dtype=np.float64)
    flags = np.empty(n_features, dtype=np.uint8)
    for f in range(n_features):
        v = row[f]
        if np.isnan(v):
            xz[f] = 0.0  # NumericalDecision: NaN -> 0 unless the missing type is NaN (then flagged)
            flags[f] = 3
        elif abs(v) > 1.0000000180025095e-35:
            xz[f] = v
            flags[f] = 0
        else:
            xz[f] = 0.0
            flags[f] = 1
    # Tree::NumericalDecision at every node: took[2k] = went left, took[2k + 1] = went right
    n_nodes = node_feature.shape[0]
    n_combos = combo_ptr.shape[0] - 1
    took = np.empty(2 * n_nodes + n_combos, dtype=np.uint8)
    for k in range(n_nodes):
        f = node_feature[k]
        le = np.uint8(xz[f] <= node_threshold[k])
        special = np.uint8((flags[f] & node_missing[k]) != 0)
        left = (le & (special ^ np.uint8(1))) | (node_default_left[k] & special)
        took[2 * k] = left
        took[2 * k + 1] = left ^ np.uint8(1)
    for c in range(n_combos):
        ok = np.uint8(1)
        for p in range(combo_ptr[c], combo_ptr[c + 1]):
            ok &= took[combo_key[p]]
        took[2 * n_nodes + c] = ok
    max_n = 1
    for g in range(group_n.shape[0]):
        max_n = max(max_n, group_n[g])
    chunk = 128  # leaves processed side by side (the vectorised inner loops)
    one = np.empty(max_n * chunk, dtype=np.float64)
    pre = np.empty(max_n * chunk, dtype=np.float64)
    acc = np.empty(max_n * chunk, dtype=np.float64)
    prod = np.empty(chunk, dtype=np.float64)
    for g in range(group_n.shape[0]):
        n = group_n[g]
        n_leaves = group_leaves[g]
        e0 = group_elem0[g]
        l0 = group_leaf0[g]
        n_points = (n + 1) // 2  # Gauss-Legendre: exact for the degree n - 1 integrand
        p0 = gl_ptr[n_points]
        for c0 in range(0, n_leaves, chunk):
            m = min(chunk, n_leaves - c0)
            for j in range(n):
                base = e0 + j * n_leaves + c0
                oj = one[j * chunk:j * chunk + m]
                kj = elem_key[base:base + m]
                aj = acc[j * chunk:j * chunk + m]
                for i in range(m):
                    oj[i] = took[kj[i]]
                    aj[i] = 0.0
            values = leaf_value[l0 + c0:l0 + c0 + m]
            for q in range(n_points):
                t = gl_t[p0 + q]
                s = 1.0 - t
                w = gl_w[p0 + q]
                # prefix products of the factors z_j (1 - t) + o_j t, element by element
                for i in range(m):
                    prod[i] = 1.0
                for j in range(n):
                    base = e0 + j * n_leaves + c0
                    pj = pre[j * chunk:j * chunk + m]
                    zj = elem_zero[base:base + m]
                    oj = one[j * chunk:j * chunk + m]
                    for i in range(m):
                        pj[i] = prod[i]
                        prod[i] *= zj[i] * s + oj[i] * t
                # suffix products (times w v), accumulated with the prefix: prod over j' != j
                for i in range(m):
                    prod[i] = w * values[i]
                for j in range(n - 1, -1, -1):
                    base = e0 + j * n_leaves + c0
                    pj = pre[j * chunk:j * chunk + m]
                    zj = elem_zero[base:base + m]
                    oj = one[j * chunk:j * chunk + m]
                    aj = acc[j * chunk:j * chunk + m]
                    for i in range(m):
                        aj[i] += pj[i] * prod[i]
                        prod[i] *= zj[i] * s + oj[i] * t
            for j in range(n):
                base = e0 + j * n_leaves + c0
                for i in range(m):
                    out[elem_feature[base + i]] += (one[j * chunk + i] - elem_zero[base + i]) * acc[j * chunk + i]
