"""Spark engine for the offline features: the local engine's own pieces, run as Spark tasks.

``amlscore features --engine spark`` computes exactly what :func:`amlscore.features.offline.write_features`
computes (the parity test holds every value to the local engine's), in five steps:

1. **Parquet in.** The driver checks and types the data folder with the contract loader (as the local
   engine does: bad data is refused before any work) and stages the transactions, in time order with their
   position ``seq`` and UTC nanoseconds ``t_ns``, as Parquet that Spark reads.
2. **Shared identifiers** (``ip_customers_*``, ``device_customers_*``, ``operator_customers_30d``): per
   identifier column, ``groupBy(bucket of the identifier).applyInPandas`` runs
   :func:`~amlscore.features.offline.entity_customer_counts` over whole identifiers; joined back by ``seq``.
3. **Peer groups' day totals**: ``mapInPandas`` gives each row's :data:`~amlscore.features.offline.PEER_DAILY`
   values, a Spark ``groupBy(peer_group, day).sum`` adds them up, and the driver turns the small
   (groups x days) result into :class:`~amlscore.features.offline.PeerDays`, shipped to the tasks.
4. **Counterparty graph**: the graph features are one pass in time order over every customer's edges
   (a cycle or a chain crosses customers), so they run as ONE task (``groupBy`` of a constant) over the
   narrow columns they read, through :func:`~amlscore.features.offline.graph_columns`; joined back by ``seq``.
   This is the part that does not spread over executors (its memory: the narrow columns of every row plus
   about 1 KB per graph node). The components of shared identifiers (``id_component_*``) are the same
   kind of pass (:func:`~amlscore.features.offline.id_component_matrix`), run as one task over the whole
   history: a link's first sighting, which their growth reads, is not bounded by a window.
5. **Per customer**: ``groupBy(bucket of customer_id).applyInPandas`` runs
   :func:`~amlscore.features.offline.customer_group_features`, the local engine's partition function, over
   whole customers; the result is written as Parquet (a folder of part files, renamed into place when
   complete).

``pyspark`` is imported only inside these functions: ``import amlscore.features`` needs no JVM.
"""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.features.catalogue import FEATURE_NAMES, INTEGER_FEATURES
from amlscore.features.feature_folder import folder_manifest, write_manifest
from amlscore.features.events import Coded, TxnColumns, counterparty_keys, derive_facts
from amlscore.features.graph import report_times
from amlscore.features.idcomp import transaction_fields
from amlscore.features.offline import (
    ENTITY_FEATURES,
    ENTITY_WINDOWS,
    GRAPH_COLUMNS,
    GRAPH_WARM_UP_DAYS,
    ID_COLUMNS,
    ID_COMPONENT_FEATURES,
    PEER_DAILY,
    PeerDays,
    customer_group_features,
    edge_pairs,
    entity_customer_counts,
    graph_columns,
    id_component_columns,
    identifier_codes,
    ordered_transactions,
    peer_daily_values,
)
from amlscore.features.params import FeatureParams
from amlscore.features.registry import DAY_NS, HOUR_NS, CustomerRegistry
from amlscore.storage.staged import staged_folder

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from amlscore.contract.load import Dataset

DEFAULT_MASTER = "local[*]"
# the contract columns the features read (besides txn_id, customer_id and timestamp)
_FEATURE_INPUTS = ("direction", "amount", "channel", "txn_type", "counterparty_id", "counterparty_type",
                   "counterparty_country", "counterparty_account", "ip_address", "ip_country", "ip_region",
                   "device_id", "operator_id")
_GRAPH_INPUTS = ("customer_id", "direction", "amount", "channel", "txn_type", "counterparty_id", "counterparty_type",
                 "counterparty_account")
_TEXT_INPUTS = ("customer_id", "counterparty_id", "counterparty_country", "counterparty_account", "ip_address",
                "ip_country", "ip_region", "device_id", "operator_id")
GRAPH_BLOCK_DAYS = 90  # local days of history per graph task (each replays GRAPH_WARM_UP_DAYS before it too)
_ROWS_PER_GROUP = 100_000  # rows per applyInPandas group (about): whole customers or identifiers each


class SparkUnavailableError(AmlError):
    """PySpark or Java is missing, or the session could not start."""


def spark_session(master: str | None = None, *, app_name: str = "amlscore", conf: dict[str, str] | None = None
                  ) -> SparkSession:
    """A Spark session: ``SPARK_REMOTE`` (Spark Connect, ``sc://host:15002``) when set and no ``master``
    is given, else ``master`` (default ``local[*]``; ``spark://host:7077``, ``yarn``, ``k8s://...``).

    Local mode runs the Python workers with this interpreter (``PYSPARK_PYTHON`` unless set), so they
    import the same amlscore; on a cluster every executor needs amlscore installed (docs/spark.md).
    """
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415 - a JVM only when asked for
    except ImportError as exc:
        raise SparkUnavailableError(f"--engine spark needs PySpark ({exc}); install it with pip install "
                                    f"'amlscore[spark]' or use --engine local.") from None
    remote = os.environ.get("SPARK_REMOTE")
    builder = SparkSession.builder.appName(app_name)
    if remote and master is None:
        builder = builder.remote(remote)
    else:
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise SparkUnavailableError("--engine spark needs Java 17 or later (apt-get install openjdk-17-jre-headless, "
                                        "or set JAVA_HOME); or use --engine local.")
        master = master or DEFAULT_MASTER
        if master.startswith("local"):  # the workers are this machine's: run them with this interpreter
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(master)
    # UTC everywhere; timestamps written as Parquet's UTC-adjusted microseconds (not the legacy INT96)
    settings = {"spark.sql.session.timeZone": "UTC", "spark.sql.execution.arrow.pyspark.enabled": "true",
                "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - py4j and Spark raise many kinds; all mean "no session"
        where = f"SPARK_REMOTE={remote}" if remote and master is None else master
        raise SparkUnavailableError(f"could not start Spark ({where}): "
                                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


@contextmanager
def command_session(master: str | None = None) -> Iterator[SparkSession]:
    """A session for one command: the active one when there is one (left running), else a new one
    from :func:`spark_session`, stopped at the end."""
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415
    except ImportError:
        active = None
    else:
        active = SparkSession.getActiveSession()
    session = active if active is not None else spark_session(master)
    try:
        yield session
    finally:
        if active is None:
            session.stop()


@dataclass(frozen=True)
class _Context:
    """What every task needs besides its rows (pickled into the task closures; PySpark broadcasts a
    closure larger than its threshold itself)."""

    registry: CustomerRegistry
    params: FeatureParams
    reports: pd.DataFrame | None


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """A task's rows as the local engine sees them: time order (``seq``), UTC timestamps from ``t_ns``."""
    frame = frame.sort_values("seq", kind="stable").reset_index(drop=True)
    frame["timestamp"] = pd.to_datetime(frame["t_ns"].to_numpy(dtype=np.int64), utc=True)
    for column in _TEXT_INPUTS:
        if column not in frame.columns:  # a narrow task: missing identifiers are missing values
            frame[column] = None
    return frame


def _bucket(column: str, buckets: int) -> Any:
    from pyspark.sql import functions as F  # noqa: PLC0415

    return F.pmod(F.xxhash64(F.col(column)), F.lit(buckets)).alias("_bucket")


def _stage(dataset: Dataset, folder: Path, params: FeatureParams) -> tuple[int, tuple[int, int]]:
    """The transactions in time order with ``seq`` and ``t_ns``, as Parquet for Spark; returns the rows and
    the first and last local day."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    txns = ordered_transactions(dataset.transactions)
    columns = [c for c in ("txn_id", "customer_id", *_FEATURE_INPUTS) if c in txns.columns]
    t_ns = pd.to_datetime(txns["timestamp"], utc=True).array.as_unit("ns").asi8
    arrays = {"seq": pa.array(np.arange(len(txns), dtype=np.int64)), "t_ns": pa.array(t_ns)}
    for c in columns:
        values = txns[c]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        arrays[c] = pa.array(values, from_pandas=True)
    # the output's timestamp: microseconds, what Spark keeps (the features read t_ns, exact)
    arrays["timestamp"] = pa.array(t_ns // 1000, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(arrays), folder / "transactions.parquet", row_group_size=1_000_000)
    days = (t_ns[[0, -1]] + params.bank_utc_offset_hours * HOUR_NS) // DAY_NS if len(t_ns) else np.zeros(2, np.int64)
    return len(txns), (int(days[0]), int(days[1]))


def _entity_task(ctx: _Context, column: str, windows: tuple[str, ...], names: list[str]):  # noqa: ANN202
    """The applyInPandas function of one identifier column: counts over the whole identifiers it gets."""
    n_cust = len(ctx.registry.onboard_ns)

    def counts(frame: pd.DataFrame) -> pd.DataFrame:
        frame = _typed(frame)
        codes = pd.factorize(frame[column], use_na_sentinel=True)[0].astype(np.int64)
        cust = ctx.registry.codes(frame["customer_id"].astype(str).to_numpy(dtype=object))
        values = entity_customer_counts(codes, frame["t_ns"].to_numpy(dtype=np.int64), cust, n_cust, windows)
        return pd.DataFrame({"seq": frame["seq"].to_numpy(), **dict(zip(names, values))})

    return counts


def _entity_counts(txns: DataFrame, ctx: _Context, buckets: int) -> DataFrame:
    """``seq`` and :data:`ENTITY_FEATURES` of every row with an identifier (step 2)."""
    from pyspark.sql import functions as F  # noqa: PLC0415

    joined = None
    for column, prefix, windows in ENTITY_WINDOWS:
        names = [f"{prefix}_{w}" for w in windows]
        counts = _entity_task(ctx, column, windows, names)
        schema = "seq long, " + ", ".join(f"{n} long" for n in names)
        part = (txns.where(F.col(column).isNotNull()).select(column, "seq", "t_ns", "customer_id", _bucket(column, buckets))
                .groupBy("_bucket").applyInPandas(counts, schema))
        joined = part if joined is None else joined.join(part, "seq", "full_outer")
    return joined.na.fill(0, list(ENTITY_FEATURES))


def _peer_days(txns: DataFrame, ctx: _Context) -> PeerDays:
    """The peer groups' day totals over the whole table (step 3)."""
    from pyspark.sql import functions as F  # noqa: PLC0415

    def values(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in batches:
            frame = _typed(frame)
            tx = TxnColumns.from_frame(frame)
            facts = derive_facts(tx, ctx.registry, ctx.params)
            rows = pd.DataFrame(peer_daily_values(tx, facts), columns=list(PEER_DAILY))
            rows["peer_group"] = ctx.registry.peer_group[facts.cust]
            rows["day"] = facts.local_day
            yield rows.groupby(["peer_group", "day"], as_index=False).sum()  # fewer rows to shuffle

    schema = "peer_group long, day long, " + ", ".join(f"{q} long" for q in PEER_DAILY)
    inputs = txns.select("seq", "t_ns", *[c for c in _FEATURE_INPUTS if c in txns.columns], "customer_id")
    daily = (inputs.mapInPandas(values, schema).groupBy("peer_group", "day")
             .agg(*[F.sum(q).alias(q) for q in PEER_DAILY]).toPandas())
    return PeerDays.from_values(daily["peer_group"].to_numpy(dtype=np.int64), daily["day"].to_numpy(dtype=np.int64),
                                daily[list(PEER_DAILY)].to_numpy(dtype=np.int64), len(ctx.registry.peer_group_names),
                                ctx.params.peer_lookback_days)


def _first_pairs(txns: DataFrame, ctx: _Context) -> DataFrame:
    """``seq`` and ``first_pair`` of every row over the whole history (step 4a): the earliest storing
    row of each (payer, payee) by a Spark aggregation, joined back."""
    from pyspark.sql import functions as F  # noqa: PLC0415

    def keys(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in batches:
            frame = _typed(frame)
            payer, payee, store, has_cp = edge_pairs(frame, ctx.registry)
            yield pd.DataFrame({"seq": frame["seq"].to_numpy(), "payer": payer, "payee": payee, "store": store,
                                "has_cp": has_cp})

    inputs = txns.select("seq", "t_ns", *[c for c in ("customer_id", "direction", "counterparty_id",
                                                      "counterparty_account") if c in txns.columns])
    pairs = inputs.mapInPandas(keys, "seq long, payer string, payee string, store boolean, has_cp boolean")
    earliest = pairs.where("store").groupBy("payer", "payee").agg(F.min("seq").alias("earliest"))
    first = F.col("has_cp") & (F.col("earliest").isNull() | (F.col("earliest") >= F.col("seq")))
    return pairs.join(earliest, ["payer", "payee"], "left").select("seq", first.alias("first_pair"))


def _graph_task(ctx: _Context, peers: PeerDays):  # noqa: ANN202
    """The applyInPandas function of one stretch of history: the graph pass over it, rows kept as marked."""

    def graph(frame: pd.DataFrame) -> pd.DataFrame:
        frame = _typed(frame)
        tx = TxnColumns.from_frame(frame)
        facts = derive_facts(tx, ctx.registry, ctx.params)
        cp = counterparty_keys(frame, ctx.registry.code_of)
        values = graph_columns(tx, facts, cp, ctx.registry, ctx.reports, ctx.params, peers,
                               first_pair=frame["first_pair"].to_numpy(dtype=np.bool_))
        keep = frame["_emit"].to_numpy(dtype=np.bool_)
        out = pd.DataFrame(values[keep], columns=list(GRAPH_COLUMNS))
        out.insert(0, "seq", frame["seq"].to_numpy()[keep])
        return out

    return graph


def _graph(txns: DataFrame, ctx: _Context, peers: PeerDays, days: tuple[int, int], block_days: int,
           warm_up_days: int) -> DataFrame:
    """``seq`` and :data:`GRAPH_COLUMNS` of every row (step 4b): the history cut into stretches of
    ``block_days`` local days, each replayed from ``warm_up_days`` before it in its own task."""
    from pyspark.sql import functions as F  # noqa: PLC0415

    first_day, last_day = days
    last_block = (last_day - first_day) // block_days
    offset_ns = ctx.params.bank_utc_offset_hours * HOUR_NS
    rel = F.expr(f"(t_ns + {offset_ns}) div {DAY_NS} - {first_day}")  # local day from the first (integers)
    own = F.floor(rel / block_days).cast("long")
    # a row is also warm-up for the following blocks that start within warm_up_days after it
    upto = F.least(F.floor((rel + warm_up_days) / block_days).cast("long"), F.lit(last_block))
    inputs = txns.select("seq", "t_ns", *[c for c in _GRAPH_INPUTS if c in txns.columns]).join(
        _first_pairs(txns, ctx), "seq")
    rows = (inputs.withColumn("_own", own).withColumn("_block", F.explode(F.sequence(F.col("_own"), upto)))
            .withColumn("_emit", F.col("_block") == F.col("_own")).drop("_own"))
    schema = "seq long, " + ", ".join(f"{n} double" for n in GRAPH_COLUMNS)
    return rows.groupBy("_block").applyInPandas(_graph_task(ctx, peers), schema)


def _id_components_task(ctx: _Context):  # noqa: ANN202
    """The applyInPandas function of the whole history: the components' pass over it, in time order."""
    fields = transaction_fields(ctx.params.id_components)
    n_cust = len(ctx.registry.onboard_ns)
    report_ns = report_times(ctx.reports, ctx.registry.code_of, n_cust, ctx.params.bank_utc_offset_hours)

    def components(frame: pd.DataFrame) -> pd.DataFrame:
        frame = _typed(frame)
        columns = {f: Coded.of(frame[f]) for f in fields}
        cust = ctx.registry.codes(frame["customer_id"].astype(str).to_numpy(dtype=object))
        values = id_component_columns(frame["t_ns"].to_numpy(dtype=np.int64), cust, identifier_codes(columns, ctx.params),
                                      ctx.registry, report_ns, ctx.params.id_components)
        out = pd.DataFrame(values, columns=list(ID_COMPONENT_FEATURES))
        out.insert(0, "seq", frame["seq"].to_numpy())
        return out

    return components


def _id_components(txns: DataFrame, ctx: _Context) -> DataFrame:
    """``seq`` and :data:`ID_COMPONENT_FEATURES` of every row (step 4c): one task over the narrow columns."""
    from pyspark.sql import functions as F  # noqa: PLC0415

    fields = [f for f in transaction_fields(ctx.params.id_components) if f in txns.columns]
    schema = "seq long, " + ", ".join(f"{n} double" for n in ID_COMPONENT_FEATURES)
    return (txns.select("seq", "t_ns", "customer_id", *fields).withColumn("_one", F.lit(0))
            .groupBy("_one").applyInPandas(_id_components_task(ctx), schema))


def _output_schema() -> str:
    kinds = ", ".join(f"{n} {'int' if n in INTEGER_FEATURES else 'double'}" for n in FEATURE_NAMES)
    return f"txn_id string, customer_id string, timestamp timestamp, {kinds}"


def feature_frame(spark: SparkSession, dataset: Dataset, staging: Path, params: FeatureParams, *,
                  graph_block_days: int = GRAPH_BLOCK_DAYS, graph_warm_up_days: int = GRAPH_WARM_UP_DAYS) -> DataFrame:
    """The Spark DataFrame of the feature rows of ``dataset`` (columns ``txn_id``, ``customer_id``,
    ``timestamp`` and :data:`FEATURE_NAMES`; integer features int, the others double), staged under
    ``staging`` (kept until the caller has written the result). The graph runs in stretches of
    ``graph_block_days`` days, each replayed from ``graph_warm_up_days`` before it."""
    if graph_block_days < 1 or graph_warm_up_days < 0:
        raise ValueError(f"graph_block_days must be >= 1 and graph_warm_up_days >= 0. Got {graph_block_days!r} "
                         f"and {graph_warm_up_days!r} instead.")
    rows, days = _stage(dataset, staging, params)
    registry = CustomerRegistry.from_customers(dataset.customers, params.bank_utc_offset_hours)
    ctx = _Context(registry=registry, params=params, reports=dataset.reports)
    txns = spark.read.parquet(str(staging / "transactions.parquet"))
    buckets = max(1, -(-rows // _ROWS_PER_GROUP))
    entity = _entity_counts(txns, ctx, buckets)
    peers = _peer_days(txns, ctx)
    graph = _graph(txns, ctx, peers, days, graph_block_days, graph_warm_up_days)
    components = _id_components(txns, ctx)
    table = (txns.join(entity, "seq", "left").na.fill(0, list(ENTITY_FEATURES)).join(graph, "seq", "left")
             .join(components, "seq", "left"))

    def customers(frame: pd.DataFrame) -> pd.DataFrame:
        frame = _typed(frame)
        matrix = customer_group_features(frame, ctx.registry, ctx.params, peers,
                                         frame[list(ENTITY_FEATURES)].to_numpy(dtype=np.int64),
                                         frame[list(GRAPH_COLUMNS)].to_numpy(dtype=np.float64),
                                         frame[list(ID_COMPONENT_FEATURES)].to_numpy(dtype=np.float64))
        features = pd.DataFrame(matrix, columns=list(FEATURE_NAMES))
        features = features.astype({n: np.int32 for n in FEATURE_NAMES if n in INTEGER_FEATURES})
        return pd.concat([frame[list(ID_COLUMNS)], features], axis=1)

    return table.select("*", _bucket("customer_id", buckets)).groupBy("_bucket").applyInPandas(customers, _output_schema())


def write_features_spark(spark: SparkSession, dataset: Dataset, out: str | Path, params: FeatureParams,
                         **graph: int) -> int:
    """Compute the feature rows of ``dataset`` with Spark and write them as a Parquet folder ``out``
    (part files and :data:`~amlscore.features.feature_folder.MANIFEST`, which training checks); returns the
    row count.

    Written under ``out.partial`` and renamed, so a failure never leaves a partial result at ``out``.
    Rows come in no particular order (sort by ``timestamp`` and ``txn_id`` for time order).
    """
    with staged_folder(out) as (tmp, staging):
        frame = feature_frame(spark, dataset, staging, params, **graph)
        frame.write.mode("overwrite").parquet(str(tmp))
        rows = spark.read.parquet(str(tmp)).count()
        write_manifest(tmp, folder_manifest(rows, dataset, params, engine="spark", spark_version=spark.version))
    return rows
