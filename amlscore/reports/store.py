"""The case store: one data set laid out so that a report reads one customer in milliseconds.

A case report needs a customer's transactions and feature rows, its peer group's activity and the
identifiers it shares with other customers. Validating a data set and computing its features takes
about a minute for the default bank, so that work is done once per data set and kept here:

======================  ================================================================================
file                    content
======================  ================================================================================
``store.json``          data fingerprint, contract version, feature-parameter and rules-config hashes,
                        first and last day of the data (bank clock), row counts
``customers.parquet``   the validated customers table
``reports.parquet``     the validated reports table
``transactions.arrow``  transactions sorted by (customer_id, timestamp, txn_id)
``features.arrow``      their feature rows (same order): ``txn_id``, ``customer_id``, ``timestamp`` and
                        every catalogue feature
``rules.arrow``         rule score and fired rule ids of every transaction (packaged rules configuration)
``rows.parquet``        where each customer's rows are in the three files above: ``customer_id, start, stop``
``daily.arrow``         per bank day and customer: amounts and counts by kind (peer comparisons), sorted
                        by day; ``daily_index.parquet`` gives each day's rows
``links.parquet``       identifiers used by two customers or more: IP address, device, operator (from
                        transactions), agent, phone and emergency-contact phone (from customers)
``scores-<key>.parquet``  written on demand: every transaction scored by one model set (alert lists,
                        portfolio, and the window of a case report: :mod:`amlscore.reports.model_cache`)
``explain-<key>.sqlite``  written on demand: one model set's explanations by feature vector
                        (:mod:`amlscore.reports.model_cache`)
======================  ================================================================================

The three per-customer files are Arrow IPC files of small zstd-compressed record batches, memory
mapped: one customer's rows are one or two batches, read in a few milliseconds (a Parquet filter on
a 135-column file costs ten times more). The store lives in ``<data>/.report-cache/<fingerprint>`` unless another folder is
given, is written to a temporary folder and renamed into place, and is rebuilt whenever the data's
fingerprint (sha256 of its files) changes, or the code and configuration that derived it: the
``features`` package's code, the feature parameters or the rules configuration.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from amlscore.contract.errors import AmlError
from amlscore.reports.files import package_code_hash, replace_dir

STORE_VERSION = 4
ROW_GROUP_ROWS = 8192
BATCH_ROWS = 2048  # rows per record batch of the per-customer Arrow files
CACHE_DIR_NAME = ".report-cache"
Progress = Callable[[str, float], None]

#: Daily per-customer measures (bank day): the columns of ``daily.parquet`` besides customer_id, day.
DAILY_MEASURES: tuple[str, ...] = (
    "n_txn", "in_sum", "out_sum", "n_in", "n_out", "cash_dep_sum", "cash_wd_sum", "n_cash",
    "cross_border_sum", "n_cross_border", "high_risk_sum", "n_night", "n_operated_by_other",
    "n_near_threshold_cash",
)


class CaseStoreError(AmlError):
    """The case store cannot be built or read."""


def data_fingerprint(data: str | Path) -> str:
    """sha256 of the data folder's table files (the contract's fingerprint), without validating them."""
    from amlscore.contract import find_table_files, fingerprint_files

    return fingerprint_files(find_table_files(data, require_reports=False))


def default_store_dir(data: str | Path, fingerprint: str) -> Path:
    """Where the store of a data folder lives by default."""
    return Path(data) / CACHE_DIR_NAME / fingerprint[:16]


def _to_local_day(ts: pd.Series, offset_hours: float) -> pd.Series:
    """UTC timestamps as bank-clock calendar days (naive midnight)."""
    t = pd.to_datetime(ts, utc=True)
    return (t + pd.Timedelta(hours=offset_hours)).dt.tz_localize(None).dt.normalize()


def _arrow(frame: pd.DataFrame) -> pa.Table:
    with warnings.catch_warnings():  # pyarrow reads tz-aware columns through a pandas API deprecated in pandas 3.1
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from pandas.errors import Pandas4Warning

            warnings.simplefilter("ignore", Pandas4Warning)
        except ImportError:  # pragma: no cover - pandas < 3.1
            pass
        return pa.Table.from_pandas(frame, preserve_index=False)


def _write(frame: pd.DataFrame, path: Path, row_group_size: int = ROW_GROUP_ROWS) -> None:
    table = _arrow(frame)
    pq.write_table(table, path, row_group_size=row_group_size, compression="zstd")


def _customer_order(frame: pd.DataFrame) -> np.ndarray:
    ts = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    return np.lexsort((frame["txn_id"].astype(str).to_numpy(), ts, frame["customer_id"].astype(str).to_numpy()))


@dataclass
class CaseStore:
    """Read access to one data set's store; see the module docstring for the files.

    Open it with :meth:`open`, which builds the store first when needed.
    """

    root: Path
    data: Path
    meta: dict[str, Any]
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- opening and building -------------------------------------------------------------------
    @classmethod
    def open(cls, data: str | Path, store_dir: str | Path | None = None, *, rebuild: bool = False,
             progress: Progress | None = None, dataset: Any = None, features: pd.DataFrame | None = None) -> "CaseStore":
        """Open the store of ``data``, building it first when it is missing or stale.

        Parameters
        ----------
        data : path
            A data folder in the contract.
        store_dir : path, optional
            Where the store lives; default ``<data>/.report-cache/<fingerprint[:16]>``.
        rebuild : bool
            Build it again even when a current one exists.
        progress : callable(stage, fraction), optional
        dataset, features : optional
            The loaded data set and its features, when the caller has them (see :func:`build_store`).
        """
        data = Path(data)
        fp = data_fingerprint(data)
        root = Path(store_dir) if store_dir is not None else default_store_dir(data, fp)
        meta_path = root / "store.json"
        if not rebuild and meta_path.is_file():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("fingerprint") == fp and _derivation_current(meta):
                return cls(root=root, data=data, meta=meta)
        build_store(data, root, progress=progress, dataset=dataset, features=features)
        return cls(root=root, data=data, meta=json.loads(meta_path.read_text(encoding="utf-8")))

    # -- metadata -------------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

    @property
    def utc_offset_hours(self) -> float:
        return float(self.meta["utc_offset_hours"])

    @property
    def first_day(self) -> pd.Timestamp:
        return pd.Timestamp(self.meta["first_day"])

    @property
    def last_day(self) -> pd.Timestamp:
        return pd.Timestamp(self.meta["last_day"])

    def local(self, ts: pd.Series | pd.Timestamp) -> Any:
        """UTC timestamp(s) on the bank's clock, timezone-naive."""
        off = pd.Timedelta(hours=self.utc_offset_hours)
        if isinstance(ts, pd.Series):
            return (pd.to_datetime(ts, utc=True) + off).dt.tz_localize(None)
        return (pd.Timestamp(ts).tz_convert("UTC") + off).tz_localize(None)

    # -- whole small tables ---------------------------------------------------------------------
    @cached_property
    def customers(self) -> pd.DataFrame:
        return pd.read_parquet(self.root / "customers.parquet")

    @cached_property
    def reports(self) -> pd.DataFrame:
        return pd.read_parquet(self.root / "reports.parquet")

    @cached_property
    def customer_index(self) -> dict[str, int]:
        return {cid: i for i, cid in enumerate(self.customers["customer_id"].astype(str))}

    def customer(self, customer_id: str) -> pd.Series:
        """One customer's row; :class:`CaseStoreError` when unknown."""
        i = self.customer_index.get(str(customer_id))
        if i is None:
            raise CaseStoreError(f"customer {customer_id!r} is not in the data set {self.data}")
        return self.customers.iloc[i]

    @cached_property
    def ground_truth(self) -> pd.DataFrame | None:
        """The synthetic generator's ground truth (``txn_id, customer_id, typology, ...``), if present."""
        from amlscore.contract.schema import GROUND_TRUTH_FILE

        path = self.data / GROUND_TRUTH_FILE
        if not path.is_file():
            return None
        return pd.read_csv(path, dtype={"txn_id": str, "customer_id": str, "typology": str, "scenario_id": str})

    # -- per-customer reads ---------------------------------------------------------------------
    @cached_property
    def rows(self) -> dict[str, tuple[int, int]]:
        """customer_id -> (start, stop) row range in the per-customer files."""
        r = pd.read_parquet(self.root / "rows.parquet")
        return dict(zip(r["customer_id"].astype(str), zip(r["start"].astype(int), r["stop"].astype(int))))

    def _read_customer(self, name: str, customer_ids: list[str], columns: list[str] | None = None) -> pd.DataFrame:
        ranges = sorted(self.rows[c] for c in dict.fromkeys(str(x) for x in customer_ids) if str(c) in self.rows)
        reader = pa.ipc.open_file(pa.memory_map(str(self.root / name)))
        schema = reader.schema
        cols = columns if columns is not None else schema.names
        pieces = []
        cache: dict[int, pa.RecordBatch] = {}
        for start, stop in ranges:
            for b in range(start // BATCH_ROWS, (stop - 1) // BATCH_ROWS + 1):
                if b not in cache:
                    cache[b] = reader.get_batch(b).select(cols)
                lo = max(start - b * BATCH_ROWS, 0)
                hi = min(stop - b * BATCH_ROWS, BATCH_ROWS)
                pieces.append(cache[b].slice(lo, hi - lo))
        if not pieces:
            return pa.Table.from_batches([], schema=pa.schema([schema.field(c) for c in cols])).to_pandas()
        return pa.Table.from_batches(pieces).to_pandas()

    def transactions(self, customer_id: str | list[str], columns: list[str] | None = None) -> pd.DataFrame:
        """A customer's (or several customers') transactions in time order."""
        ids = [customer_id] if isinstance(customer_id, str) else list(customer_id)
        return self._read_customer("transactions.arrow", ids, columns)

    def features(self, customer_id: str | list[str], columns: list[str] | None = None) -> pd.DataFrame:
        """A customer's feature rows in time order (same order as :meth:`transactions`)."""
        ids = [customer_id] if isinstance(customer_id, str) else list(customer_id)
        return self._read_customer("features.arrow", ids, columns)

    def rules(self, customer_id: str | list[str]) -> pd.DataFrame:
        """Rule score and fired rules (``|``-joined ids) of a customer's transactions."""
        ids = [customer_id] if isinstance(customer_id, str) else list(customer_id)
        return self._read_customer("rules.arrow", ids)

    def find_transaction(self, txn_id: str) -> tuple[str, pd.Timestamp] | None:
        """``(customer_id, UTC timestamp)`` of a transaction of the data set, or None.

        Reads the ``txn_id`` column alone (Arrow compute finds the row), then the one batch holding it.
        """
        import pyarrow.compute as pc

        path = str(self.root / "rules.arrow")
        schema = pa.ipc.open_file(pa.memory_map(path)).schema
        ids = pa.ipc.open_file(pa.memory_map(path), options=pa.ipc.IpcReadOptions(
            included_fields=[schema.get_field_index("txn_id")])).read_all().column(0)
        i = pc.index(ids, pa.scalar(str(txn_id), type=ids.type)).as_py()
        if i is None or i < 0:
            return None
        batch = pa.ipc.open_file(pa.memory_map(path)).get_batch(i // BATCH_ROWS)
        row = pa.Table.from_batches([batch.slice(i % BATCH_ROWS, 1)]).select(["customer_id", "timestamp"]).to_pandas()
        return str(row["customer_id"].iat[0]), pd.Timestamp(row["timestamp"].iat[0])

    def table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A whole per-customer table (``transactions``, ``features`` or ``rules``), in customer order."""
        if name not in ("transactions", "features", "rules"):
            raise CaseStoreError(f"The 'name' parameter must be one of transactions, features, rules. Got {name!r} instead.")
        return _read_ipc(self.root / f"{name}.arrow", columns)

    @cached_property
    def _daily_index(self) -> pd.DataFrame:
        return pd.read_parquet(self.root / "daily_index.parquet")

    def daily(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Daily measures of every customer with ``start <= day <= end`` (bank days)."""
        idx = self._daily_index
        sel = idx[(idx["day"] >= pd.Timestamp(start)) & (idx["day"] <= pd.Timestamp(end))]
        reader = pa.ipc.open_file(pa.memory_map(str(self.root / "daily.arrow")))
        if not len(sel):
            return reader.schema.empty_table().to_pandas()
        lo, hi = int(sel["start"].min()), int(sel["stop"].max())
        batches = [reader.get_batch(b) for b in range(lo // BATCH_ROWS, (hi - 1) // BATCH_ROWS + 1)]
        table = pa.Table.from_batches(batches).slice(lo - (lo // BATCH_ROWS) * BATCH_ROWS, hi - lo)
        return table.to_pandas()

    @cached_property
    def links(self) -> pd.DataFrame:
        """Identifiers shared by two customers or more: ``kind, value, customer_id, n_txn, first_seen, last_seen``."""
        return pd.read_parquet(self.root / "links.parquet")

    # -- batch scores of a model set (portfolio) -------------------------------------------------
    def scores_path(self, key: str) -> Path:
        return self.root / f"scores-{key}.parquet"

    def batch_scores(self, key: str, score: Callable[[pd.DataFrame], pd.DataFrame],
                     progress: Progress | None = None, chunk_rows: int = 100_000) -> pd.DataFrame:
        """Every transaction scored by ``score`` (a model set's ``score_frame``), cached under ``key``."""
        path = self.scores_path(key)
        if path.is_file():
            return pd.read_parquet(path)
        reader = pa.ipc.open_file(pa.memory_map(str(self.root / "features.arrow")))
        parts = []
        done = 0
        total = max(self.meta.get("transactions", 1), 1)
        step = max(chunk_rows // BATCH_ROWS, 1)
        for first in range(0, reader.num_record_batches, step):
            batches = [reader.get_batch(i) for i in range(first, min(first + step, reader.num_record_batches))]
            f = pa.Table.from_batches(batches).to_pandas()
            s = score(f)
            keep = [c for c in ("suspicion_score", "rule_score", "lgbm_probability", "anomaly_score", "alert") if c in s.columns]
            out = f[["txn_id", "customer_id", "timestamp"]].reset_index(drop=True)
            out = pd.concat([out, s[keep].reset_index(drop=True)], axis=1)
            parts.append(out)
            done += len(f)
            if progress:
                progress("scoring", done / total)
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        tmp = path.with_name(path.name + f".{uuid.uuid4().hex[:8]}.partial")
        _write(frame, tmp, row_group_size=65536)
        os.replace(tmp, path)
        return frame


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------
def features_code_hash() -> str:
    """sha256 of the :mod:`features` package's code: the store's feature rows were computed by it."""
    return package_code_hash("features")


def _derivation(params_hash: str, rules_hash: str) -> dict[str, Any]:
    return {"store_version": STORE_VERSION, "features_code_hash": features_code_hash(),
            "feature_params_hash": params_hash, "rules_config_hash": rules_hash}


def _derivation_current(meta: dict[str, Any]) -> bool:
    """Whether a store was derived by this code and configuration: features and rule scores are kept
    in it, so new feature code, feature parameters or rules make it stale, not only new data."""
    from amlscore.features.params import load_feature_params
    from amlscore.models.rules import load_rules_config

    want = _derivation(load_feature_params().hash, load_rules_config().hash)
    return all(meta.get(k) == v for k, v in want.items())



def build_store(data: str | Path, root: str | Path, progress: Progress | None = None, *, dataset: Any = None,
                features: pd.DataFrame | None = None) -> Path:
    """Validate ``data``, compute its features and write the store into ``root`` (replacing it).

    ``dataset`` (``contract.load_dataset(data)``) and ``features`` (``amlscore.features.offline.build_features``
    of it with the packaged parameters), when a caller already has them (``amlscore demo`` after
    training), save loading and computing them again; a dataset whose fingerprint is not the
    folder's is not used.
    """
    from amlscore.contract import load_dataset, report_data_warnings
    from amlscore.contract.schema import CONTRACT_VERSION
    from amlscore.features.offline import build_features
    from amlscore.features.params import load_feature_params
    from amlscore.models.rules import evaluate_rules, load_rules_config

    def report(stage: str, frac: float) -> None:
        if progress:
            progress(stage, float(min(max(frac, 0.0), 1.0)))

    data, root = Path(data), Path(root)
    started = time.perf_counter()
    report("loading", 0.0)
    if dataset is None or getattr(dataset, "fingerprint", None) != data_fingerprint(data):
        dataset, features = load_dataset(data, require_reports=False), None
        report_data_warnings(dataset)
    report("loading", 1.0)
    params = load_feature_params()
    cfg = load_rules_config()
    offset = float(cfg.bank.utc_offset_hours)
    if features is None:
        features = build_features(dataset, params, progress=lambda stage, frac: report("features", frac))
    report("features", 1.0)

    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.with_name(f".{root.name}.{uuid.uuid4().hex[:8]}.partial")
    staging.mkdir(parents=True)
    try:
        report("writing", 0.0)
        txns = dataset.transactions
        order = _customer_order(txns)
        txns_sorted = txns.iloc[order].reset_index(drop=True)
        f_order = _customer_order(features)
        feats = features.iloc[f_order].reset_index(drop=True)
        if not (feats["txn_id"].astype(str).to_numpy() == txns_sorted["txn_id"].astype(str).to_numpy()).all():
            raise CaseStoreError("feature rows and transactions do not line up (txn_id order differs)")
        _write(dataset.customers, staging / "customers.parquet", row_group_size=65536)
        _write(dataset.reports, staging / "reports.parquet", row_group_size=65536)
        _write_ipc(_storable(txns_sorted), staging / "transactions.arrow")
        report("writing", 0.3)
        _write_ipc(feats, staging / "features.arrow")
        report("writing", 0.5)
        rules = evaluate_rules(feats, cfg)
        _write_ipc(_rule_frame(feats, rules, cfg), staging / "rules.arrow")
        _write(_row_ranges(txns_sorted["customer_id"]), staging / "rows.parquet", row_group_size=65536)
        report("writing", 0.6)
        daily = daily_measures(txns_sorted, feats, offset)  # sorted by day
        _write_ipc(daily, staging / "daily.arrow")
        _write(_day_ranges(daily["day"]), staging / "daily_index.parquet", row_group_size=65536)
        report("writing", 0.8)
        _write(shared_identifiers(txns_sorted, dataset.customers, offset), staging / "links.parquet", row_group_size=65536)
        days = _to_local_day(txns["timestamp"], offset)
        meta = {
            **_derivation(params.hash, cfg.hash),
            "fingerprint": dataset.fingerprint,
            "data": str(data.resolve()),
            "contract_version": CONTRACT_VERSION,
            "rules_config_revision": cfg.revision,
            "utc_offset_hours": offset,
            "first_day": days.min().date().isoformat() if len(days) else None,
            "last_day": days.max().date().isoformat() if len(days) else None,
            "customers": int(len(dataset.customers)),
            "transactions": int(len(txns)),
            "reports": int(len(dataset.reports)),
            "built_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - started, 1),
        }
        (staging / "store.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        replace_dir(staging, root)
        report("writing", 1.0)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root


def _write_ipc(frame: pd.DataFrame, path: Path) -> None:
    table = _arrow(frame).combine_chunks()  # batch i = rows [i*B, (i+1)*B)
    opts = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=opts) as writer:
        for batch in table.to_batches(max_chunksize=BATCH_ROWS):
            writer.write_batch(batch)


def _read_ipc(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    return (table.select(columns) if columns else table).to_pandas()


def _row_ranges(customer_ids: pd.Series) -> pd.DataFrame:
    """``customer_id, start, stop`` of each customer's block of rows (the rows are sorted by customer)."""
    ids = customer_ids.astype(str).to_numpy()
    if not len(ids):
        return pd.DataFrame({"customer_id": pd.Series([], dtype=str), "start": [], "stop": []})
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(ids)]])
    return pd.DataFrame({"customer_id": ids[starts], "start": starts.astype(np.int64), "stop": stops.astype(np.int64)})


def _day_ranges(days: pd.Series) -> pd.DataFrame:
    """``day, start, stop``: the rows of each day in a frame sorted by day."""
    d = pd.to_datetime(days).to_numpy()
    if not len(d):
        return pd.DataFrame({"day": pd.Series([], dtype="datetime64[ns]"), "start": [], "stop": []})
    change = np.flatnonzero(d[1:] != d[:-1]) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(d)]])
    return pd.DataFrame({"day": d[starts], "start": starts.astype(np.int64), "stop": stops.astype(np.int64)})


def _storable(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as plain strings (Parquet filters and later concatenations stay simple)."""
    out = frame.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype("string")
    return out


def _rule_frame(feats: pd.DataFrame, rules: pd.DataFrame, cfg: Any) -> pd.DataFrame:
    """``txn_id, customer_id, timestamp, rule_score, fired`` (fired rule ids joined by ``|``)."""
    return pd.DataFrame({
        "txn_id": feats["txn_id"].astype(str).to_numpy(),
        "customer_id": feats["customer_id"].astype(str).to_numpy(),
        "timestamp": feats["timestamp"].to_numpy(),
        "rule_score": rules["rule_score"].to_numpy(dtype=float),
        "fired": rules["rules_fired"].astype(str).to_numpy(),
    })


def daily_measures(txns: pd.DataFrame, feats: pd.DataFrame, utc_offset_hours: float) -> pd.DataFrame:
    """Per customer and bank day: the sums and counts of :data:`DAILY_MEASURES` (active days only)."""
    amount = txns["amount"].to_numpy(dtype=float)
    is_in = (txns["direction"].astype(str) == "in").to_numpy()
    ttype = txns["txn_type"].astype(str).to_numpy()
    dep = ttype == "cash_deposit"
    wd = ttype == "cash_withdrawal"
    xb = feats["is_cross_border"].to_numpy(dtype=float) > 0
    hr = feats["is_high_risk_country"].to_numpy(dtype=float) > 0
    frame = pd.DataFrame({
        "customer_id": txns["customer_id"].astype(str).to_numpy(),
        "day": _to_local_day(txns["timestamp"], utc_offset_hours).to_numpy(),
        "n_txn": 1,
        "in_sum": np.where(is_in, amount, 0.0),
        "out_sum": np.where(is_in, 0.0, amount),
        "n_in": is_in.astype(np.int64),
        "n_out": (~is_in).astype(np.int64),
        "cash_dep_sum": np.where(dep, amount, 0.0),
        "cash_wd_sum": np.where(wd, amount, 0.0),
        "n_cash": (dep | wd).astype(np.int64),
        "cross_border_sum": np.where(xb, amount, 0.0),
        "n_cross_border": xb.astype(np.int64),
        "high_risk_sum": np.where(hr, amount, 0.0),
        "n_night": (feats["is_night"].to_numpy(dtype=float) > 0).astype(np.int64),
        "n_operated_by_other": (feats["is_operated_by_other"].to_numpy(dtype=float) > 0).astype(np.int64),
        "n_near_threshold_cash": (feats["is_near_threshold_cash"].to_numpy(dtype=float) > 0).astype(np.int64),
    })
    out = frame.groupby(["day", "customer_id"], sort=True).sum().reset_index()
    return out[["customer_id", "day", *DAILY_MEASURES]]


def _clean_text(s: pd.Series) -> pd.Series:
    t = s.astype("string").str.strip()
    return t.mask(t == "")


def shared_identifiers(txns: pd.DataFrame, customers: pd.DataFrame, utc_offset_hours: float) -> pd.DataFrame:
    """Identifiers held by two customers or more, one row per (kind, value, customer).

    Transactions give ``ip``, ``device`` and ``operator`` (with counts and first / last bank day);
    customers give ``agent``, ``phone`` and ``emergency_phone`` (a customer is linked to a number
    when it is its own phone or its emergency contact's, so "A's emergency contact is B's phone"
    shows up as one shared value).
    """
    day = _to_local_day(txns["timestamp"], utc_offset_hours)
    parts = []
    for kind, col in (("ip", "ip_address"), ("device", "device_id"), ("operator", "operator_id")):
        v = _clean_text(txns[col])
        sel = v.notna().to_numpy()
        if not sel.any():
            continue
        f = pd.DataFrame({"value": v[sel].astype(str).to_numpy(), "customer_id": txns["customer_id"].astype(str).to_numpy()[sel],
                          "day": day[sel].to_numpy()})
        g = f.groupby(["value", "customer_id"], sort=True).agg(n_txn=("day", "size"), first_seen=("day", "min"),
                                                               last_seen=("day", "max")).reset_index()
        shared = g.groupby("value")["customer_id"].transform("size") >= 2
        g = g[shared.to_numpy()]
        g.insert(0, "kind", kind)
        parts.append(g)
    cid = customers["customer_id"].astype(str)
    onboarded = pd.to_datetime(customers["onboarded_at"])
    pairs = [("agent", _clean_text(customers["agent_id"]))]
    phone = _clean_text(customers["phone"])
    emergency = _clean_text(customers["emergency_contact_phone"])
    pairs.append(("phone", phone))
    both = pd.concat([pd.DataFrame({"value": phone, "customer_id": cid, "first_seen": onboarded}),
                      pd.DataFrame({"value": emergency, "customer_id": cid, "first_seen": onboarded})])
    for kind, values in pairs:
        f = pd.DataFrame({"value": values, "customer_id": cid, "first_seen": onboarded}).dropna(subset=["value"])
        f = f[f.groupby("value")["customer_id"].transform("size") >= 2]
        f = f.assign(kind=kind, n_txn=0, last_seen=pd.NaT)
        parts.append(f)
    both = both.dropna(subset=["value"]).drop_duplicates(["value", "customer_id"])
    both = both[both.groupby("value")["customer_id"].transform("size") >= 2]
    # Only values where an emergency contact is involved (plain shared phones are already listed).
    emerg_values = set(emergency.dropna().astype(str))
    both = both[both["value"].astype(str).isin(emerg_values)]
    parts.append(both.assign(kind="emergency_phone", n_txn=0, last_seen=pd.NaT))
    cols = ["kind", "value", "customer_id", "n_txn", "first_seen", "last_seen"]
    out = pd.concat([p[cols] for p in parts], ignore_index=True)
    out["value"] = out["value"].astype(str)
    out["customer_id"] = out["customer_id"].astype(str)
    out["n_txn"] = out["n_txn"].astype(np.int64)
    out["first_seen"] = pd.to_datetime(out["first_seen"]).astype("datetime64[ns]")
    out["last_seen"] = pd.to_datetime(out["last_seen"]).astype("datetime64[ns]")
    return out.sort_values(["kind", "value", "customer_id"], kind="stable").reset_index(drop=True)
