"""The generalisation protocol: train and judge on a grid of banks, label shares and unseen typologies.

One figure on the default synthetic bank says little about another bank. The protocol measures
the model on a grid (``docs/generalisation.md``):

* **banks** of several sizes, windows and seeds, in several **world variants** (normal behaviour
  and typologies shifted from the defaults: :mod:`amlscore.synth.variant`);
* **label scarcity**: each cell trains on a share of the bank's reports (10 %, 25 %, 50 %, 100 %),
  subsampled deterministically per seed (nested: the 25 % are among the 50 %), suspicious reports
  and ``not_suspicious`` dispositions alike, so both keep their proportion;
* **leave-one-typology-out**: every suspicious report on a customer of one typology is removed from
  training, and that typology's recall is measured (the unseen-typology case);
* **external sets**: public data sets (AMLSim, AMLworld, SAML-D) converted into the contract by
  ``amlscore import``, each at every seed (the seed of the reports the adapter derives from the
  labels, and the training seed), label share and left-out typology its ground truth holds.

Each cell trains with :func:`amlscore.training.train.fit_model_set` (the same fit as
``amlscore train``, features computed once per bank) and is evaluated on the last 20 % of the
bank's time against the **full ground truth**, reported or not. The grid reports the mean and
the **worst** cell per metric and group, never a single seed, and the seed-to-seed spread of
PR-AUC.

This module does not generate or convert banks (training, synthesis and the adapters are separate
applications): the caller passes a :data:`BankMaker` that writes a bank for a :class:`BankSpec`
and an :data:`ExternalMaker` that converts an :class:`ExternalSet` at a seed (the command line and
``benchmarks/bench_generalisation.py`` pass :mod:`amlscore.synth`'s generator and
:func:`amlscore.adapters.import_data`). Logging to
MLflow goes through callbacks as well (:mod:`amlscore.training.tracking` is the only writer).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from amlscore.contract.config_file import load_yaml_model
from amlscore.contract.errors import AmlError
from amlscore.contract.load import Dataset, load_dataset
from amlscore.training.evaluate import customers_caught, evaluation_labels, read_ground_truth
from amlscore.training.labels import derive_labels
from amlscore.training.result import Prepared, TrainConfig
from amlscore.training.train import evaluate_period, features_and_rules, fit_model_set, prepare

__all__ = ["EXTERNAL_FORMATS", "SYNTHETIC", "BankSpec", "CellResult", "ExternalSet", "ProtocolError", "ProtocolGrid",
           "load_grid", "run_protocol", "subsample_reports", "summarise", "write_summary"]

#: Writes the bank of a spec into a folder (with ground_truth.csv) and returns it; cached by the caller.
BankMaker = Callable[["BankSpec"], Path]
#: Converts an external set with the adapter's report seed into a contract folder (with ground_truth.csv)
#: and returns it; cached by the caller.
ExternalMaker = Callable[["ExternalSet", int], Path]
#: Called after each cell (e.g. to log it to MLflow).
CellSink = Callable[["CellResult"], None]

_TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)} - {"data", "seed", "feedback"}
_PREPARE_FIELDS = {"cutoff", "fractions", "valid_start", "test_start", "rules_config_path", "feature_params_path"}


#: The formats ``amlscore import`` converts (amlscore.adapters.FORMATS; training does not import the
#: adapters, a test keeps the two equal).
ExternalFormat = Literal["amlsim", "amlworld", "saml-d"]
EXTERNAL_FORMATS: tuple[str, ...] = get_args(ExternalFormat)
#: The ``source`` of the synthetic banks' cells (an external set's cells carry the set's name).
SYNTHETIC = "synthetic"


class ProtocolError(AmlError):
    """The protocol file is missing or invalid."""


class ExternalSet(BaseModel):
    """One public data set of the grid (an entry of the ``external`` key).

    Attributes
    ----------
    name : str
        Names its cells and its rows of the summary (letters, digits, ``_ . -``; not ``synthetic``).
    format : {"amlsim", "amlworld", "saml-d"}
        The ``amlscore import`` format (docs/adapters.md).
    path : str
        AMLSim: the run's folder; AMLworld: the ``*_Trans.csv`` file; SAML-D: the CSV file. Relative
        paths are read from the protocol file's folder.
    patterns : str, optional
        AMLworld only: the ``*_Patterns.txt`` that names the typologies (else every laundering
        payment is ``unknown``).
    report_share : float in (0, 1], optional
        Share of the laundering customers the bank reports (default: the adapter's ``ReportPolicy``).
    bank : str
        AMLworld only: the bank whose accounts are the customers, or ``all``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")
    format: ExternalFormat
    path: str = Field(min_length=1)
    patterns: str | None = Field(None, min_length=1)
    report_share: float | None = Field(None, gt=0, le=1)
    bank: str = Field("all", min_length=1)

    @field_validator("name")
    @classmethod
    def _not_synthetic(cls, v: str) -> str:
        if v == SYNTHETIC:
            raise ValueError(f"must not be {SYNTHETIC!r} (the name of the synthetic banks' rows in the summary)")
        return v

    @model_validator(mode="after")
    def _amlworld_options(self) -> "ExternalSet":
        if self.format != "amlworld" and (self.patterns is not None or self.bank != "all"):
            key = "patterns" if self.patterns is not None else "bank"
            raise ValueError(f"entry {self.name!r}: {key!r} is for the amlworld format only; got it with "
                             f"format {self.format!r}")
        return self

    def resolved(self, folder: Path) -> "ExternalSet":
        """This entry with ``path`` and ``patterns`` made absolute, relative ones read from ``folder``."""
        def absolute(p: str | None) -> str | None:
            return None if p is None else str(p if Path(p).is_absolute() else (folder / p).resolve())
        return self.model_copy(update={"path": absolute(self.path), "patterns": absolute(self.patterns)})


class ProtocolGrid(BaseModel):
    """A protocol grid (YAML). Every list is one axis of the grid.

    Attributes
    ----------
    name : str
        Names the MLflow parent run and the summary.
    sizes : list of int
        Customers per bank (200 to 2,000,000).
    days : list of int
        Window lengths (30 to 1,098).
    seeds : list of int
        Generator seeds (each gives another bank) and training seeds.
    variants : list of str
        World variants by name or YAML file (:mod:`amlscore.synth.variant`).
    label_shares : list of float in (0, 1]
        Shares of the reports each cell trains on.
    leave_out : list of str
        Typologies left out of training, one cell each (at ``leave_out_label_shares``).
    leave_out_label_shares : list of float, optional
        Label shares of the leave-one-out cells (default: ``label_shares``).
    train : dict
        Overrides of :class:`amlscore.training.result.TrainConfig` for every cell (e.g. ``n_jobs``).
    configs : dict of name to dict
        Training configurations compared on the same banks and labels (each merged over ``train``;
        default: one, ``current``). They may not change what the features and split depend on.
    target_label_share, target_min_customers : float, int
        Where the targets are judged: worst cell at this label share on synthetic banks at least this
        big (the external sets are reported beside them, not judged).
    external : list of ExternalSet
        Public data sets, each crossed with ``seeds``, ``label_shares``, ``configs`` and the
        ``leave_out`` typologies its ground truth holds. With external sets, ``sizes`` may be empty.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("generalisation", min_length=1, max_length=100)
    sizes: list[int] = Field(default_factory=list)
    days: list[int] = Field([180], min_length=1)
    seeds: list[int] = Field(min_length=1)
    variants: list[str] = Field(["default"], min_length=1)
    label_shares: list[float] = Field([1.0], min_length=1)
    leave_out: list[str] = Field(default_factory=list)
    leave_out_label_shares: list[float] | None = None
    train: dict[str, Any] = Field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = Field(default_factory=lambda: {"current": {}}, min_length=1)
    target_label_share: float = Field(0.25, gt=0, le=1)
    target_min_customers: int = Field(3000, ge=200)
    external: list[ExternalSet] = Field(default_factory=list)

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[int]) -> list[int]:
        bad = [x for x in v if not 200 <= x <= 2_000_000]
        if bad:
            raise ValueError(f"must be whole numbers of customers in [200, 2000000]; got {bad}")
        return v

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        bad = [x for x in v if not 30 <= x <= 1098]
        if bad:
            raise ValueError(f"must be whole numbers of days in [30, 1098]; got {bad}")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or any(x < 0 for x in v):
            raise ValueError(f"must be distinct non-negative whole numbers; got {v}")
        return v

    @field_validator("label_shares", "leave_out_label_shares")
    @classmethod
    def _shares(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and any(not 0 < x <= 1 for x in v):
            raise ValueError(f"must be shares in (0, 1]; got {v}")
        return v

    @field_validator("train")
    @classmethod
    def _train(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(v) - _TRAIN_FIELDS)
        if unknown:
            raise ValueError(f"unknown training parameter {unknown[0]!r}; allowed: {', '.join(sorted(_TRAIN_FIELDS))}")
        return v

    @field_validator("configs")
    @classmethod
    def _configs(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, overrides in v.items():
            unknown = sorted(set(overrides) - _TRAIN_FIELDS)
            if unknown:
                raise ValueError(f"config {name!r}: unknown training parameter {unknown[0]!r}; allowed: "
                                 f"{', '.join(sorted(_TRAIN_FIELDS))}")
            shared = sorted(set(overrides) & _PREPARE_FIELDS)
            if shared:
                raise ValueError(f"config {name!r} may not change {shared[0]!r} (the features and split are shared "
                                 "by every config); put it under 'train'")
        return v

    @field_validator("external")
    @classmethod
    def _external(cls, v: list[ExternalSet]) -> list[ExternalSet]:
        names = [e.name for e in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"must name each set once; {twice[0]!r} is named {names.count(twice[0])} times")
        return v

    @model_validator(mode="after")
    def _leave_out_shares(self) -> "ProtocolGrid":
        if self.leave_out and len(set(self.leave_out)) != len(self.leave_out):
            raise ValueError(f"leave_out names a typology twice: {self.leave_out}")
        if not self.sizes and not self.external:
            raise ValueError("the grid has no bank: give 'sizes' (synthetic banks), 'external' (public data sets), "
                             "or both")
        return self

    def resolved(self, folder: Path) -> "ProtocolGrid":
        """The grid with every external set's paths absolute, relative ones read from ``folder``."""
        return self.model_copy(update={"external": [e.resolved(folder) for e in self.external]})

    def banks(self) -> list["BankSpec"]:
        """The distinct synthetic banks of the grid."""
        return [BankSpec(c, d, s, v) for c, d, s, v in itertools.product(self.sizes, self.days, self.seeds, self.variants)]

    def external_banks(self) -> list[tuple[ExternalSet, int]]:
        """Every external set at every seed (one conversion each: the seed draws the bank's reports)."""
        return list(itertools.product(self.external, self.seeds))

    def cells(self) -> list["Cell"]:
        """Every cell of the synthetic banks: each bank at each label share, and at each leave-out typology."""
        return [cell for bank in self.banks() for cell in self.cells_of(bank)]

    def cells_of(self, bank: "BankSpec", typologies: Collection[str] | None = None) -> list["Cell"]:
        """The cells of one bank; with ``typologies`` (an external set's ground truth), only the
        ``leave_out`` typologies among them get a cell."""
        left_out = [t for t in self.leave_out if typologies is None or t in typologies]
        out = []
        for config in self.configs:
            out += [Cell(bank, share, None, config) for share in self.label_shares]
            for typ in left_out:
                out += [Cell(bank, share, typ, config) for share in (self.leave_out_label_shares or self.label_shares)]
        return out

    def train_config(self, folder: Path, seed: int, config: str = "current") -> TrainConfig:
        """The training configuration of a cell."""
        return TrainConfig(data=folder, seed=seed, **{**self.train, **self.configs.get(config, {})})


@dataclasses.dataclass(frozen=True)
class BankSpec:
    """One bank of the grid: customers, days, seed and world variant of a synthetic bank, or an
    external set (``source`` its name) at a seed, with the customers and days its data holds."""

    customers: int
    days: int
    seed: int
    variant: str
    source: str = SYNTHETIC

    @property
    def synthetic(self) -> bool:
        return self.source == SYNTHETIC

    @property
    def key(self) -> str:
        """A folder-safe name of the bank (a variant file is named by its stem)."""
        if not self.synthetic:
            return f"{self.source}_s{self.seed}"
        return f"c{self.customers}_d{self.days}_s{self.seed}_{Path(self.variant).stem}"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One training and evaluation: a bank, a label share and an optional left-out typology."""

    bank: BankSpec
    label_share: float
    leave_out: str | None
    config: str = "current"

    @property
    def name(self) -> str:
        lo = f"_without_{self.leave_out}" if self.leave_out else ""
        return f"{self.bank.key}_labels{round(self.label_share * 100)}{lo}_{self.config}"

    def params(self) -> dict[str, Any]:
        return {"config": self.config, "source": self.bank.source, "customers": self.bank.customers, "days": self.bank.days,
                "seed": self.bank.seed, "variant": self.bank.variant, "label_share": self.label_share,
                "leave_out": self.leave_out or ""}


@dataclasses.dataclass
class CellResult:
    """What one cell measured (test period, full ground truth)."""

    cell: Cell
    metrics: dict[str, float]
    per_typology: dict[str, float]
    diagnostics: dict[str, Any]
    seconds: float

    def row(self) -> dict[str, Any]:
        """One flat row for the cells table."""
        return {"cell": self.cell.name, **self.cell.params(), **self.metrics,
                **{f"recall_1pct_{k}": v for k, v in sorted(self.per_typology.items())}, "seconds": self.seconds}


# ------------------------------------------------------------------------------------------------
# Loading the grid
# ------------------------------------------------------------------------------------------------


def load_grid(path: str | Path) -> ProtocolGrid:
    """Read and validate a protocol file; the external sets' relative paths are read from its folder.

    Raises
    ------
    ProtocolError
        A missing file, bad YAML, or a key that breaks its rule (naming the key, what is allowed
        and the value received).
    """
    path = Path(path)
    grid = load_yaml_model(path, ProtocolGrid, ProtocolError, what="protocol file",
                           expects="a mapping (sizes, days, seeds, variants, label_shares, leave_out, train, external).")
    return grid.resolved(path.resolve().parent)


# ------------------------------------------------------------------------------------------------
# Labels of a cell
# ------------------------------------------------------------------------------------------------


def _uniform_per_row(seed: int, ids: pd.Series) -> np.ndarray:
    """A uniform number per report that depends on the seed and the report id only (nested shares)."""
    digest = [hashlib.blake2b(f"{seed}/{x}".encode(), digest_size=8).digest() for x in ids.astype(str)]
    return np.array([int.from_bytes(d, "little") for d in digest], dtype=np.float64) / 2.0**64


def subsample_reports(reports: pd.DataFrame, share: float, seed: int, *,
                      leave_out_customers: set[str] | frozenset[str] = frozenset()) -> pd.DataFrame:
    """The reports a cell trains on.

    ``share`` of the suspicious reports and ``share`` of the ``not_suspicious`` dispositions are
    kept (each rounded, at least one of each label when there was one), chosen by a hash of the
    seed and ``report_id``, so the kept 25 % are among the kept 50 % of the same seed. Suspicious
    reports on ``leave_out_customers`` are then removed (their dispositions stay: an analyst's
    "not suspicious" is not a label of the left-out typology).
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1]; got {share}")
    if len(reports) == 0:
        return reports
    u = _uniform_per_row(seed, reports["report_id"])
    label = reports["label"].astype(str).to_numpy(dtype=object)
    keep = np.zeros(len(reports), dtype=bool)
    for value in ("suspicious", "not_suspicious"):
        idx = np.flatnonzero(label == value)
        if len(idx) == 0:
            continue
        k = max(1, int(round(share * len(idx))))
        keep[idx[np.argsort(u[idx], kind="stable")[:k]]] = True
    if leave_out_customers:
        gone = (label == "suspicious") & reports["customer_id"].astype(str).isin(leave_out_customers).to_numpy()
        keep &= ~gone
    return reports[keep].reset_index(drop=True)


def relabel(prep: Prepared, reports: pd.DataFrame) -> Prepared:
    """``prep`` as a bank holding only ``reports`` would have it: the dataset's reports, every period's
    labels and, when the reports differ from the bank's, the features that read reports (the graph's
    reported-neighbour features) and the rule scores are made anew from ``reports``.

    Without the rebuild a cell at a share of the reports would be scored with features that know the
    reports it does not train on (on AMLSim at 10 %: PR-AUC 0.797 / 0.786 with them, 0.785 / 0.778
    without; ``benchmarks/results/generalisation/external_amlsim/graph_reports_check.md``).
    """
    dataset = dataclasses.replace(prep.dataset, reports=reports)
    offset = prep.feature_params.bank_utc_offset_hours
    txns = dataset.transactions
    labels = {name: derive_labels(txns, reports, cutoff=prep.split.label_cutoff(name), utc_offset_hours=offset)
              for name in ("train", "valid", "test")}
    if _same_reports(reports, prep.dataset.reports):
        return dataclasses.replace(prep, dataset=dataset, labels=labels)
    features, rule_score = features_and_rules(dataset, prep.feature_params, prep.rules_config)
    if not features["txn_id"].astype(str).equals(prep.features["txn_id"].astype(str)):  # pragma: no cover - defensive
        raise AmlError(f"the features of {prep.dataset.source} rebuilt for a share of its reports are not in the order "
                       "of the bank's: the protocol cannot compare the cell's rows")
    return dataclasses.replace(prep, dataset=dataset, labels=labels, features=features, rule_score=rule_score)


def _same_reports(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two reports tables hold the same report ids (the protocol only ever drops reports)."""
    return len(a) == len(b) and set(a["report_id"].astype(str)) == set(b["report_id"].astype(str))


# ------------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------------


def _customers_caught(prep: Prepared, rows: np.ndarray, scores: pd.DataFrame, cell_prep: Prepared) -> dict[str, Any]:
    """:func:`~amlscore.training.evaluate.customers_caught` of the test period at a 1 % alert rate."""
    feats = prep.features.iloc[rows]
    labels = evaluation_labels(feats["txn_id"], cell_prep.dataset.transactions, cell_prep.dataset.reports,
                               prep.ground_truth, cutoff=prep.split.label_cutoff("test"),
                               utc_offset_hours=prep.feature_params.bank_utc_offset_hours)
    customers = prep.dataset.transactions["customer_id"].iloc[rows].astype(str).to_numpy(dtype=object)
    return customers_caught(customers, labels.y, scores["suspicion_score"].to_numpy(dtype=np.float64),
                            labels.typology, 0.01)


def run_cell(prep: Prepared, cell: Cell, config: TrainConfig, labelled: dict[Any, Prepared] | None = None) -> CellResult:
    """Subsample the reports, leave a typology out, fit on train + valid, evaluate on the test period.

    ``labelled`` keeps the last relabelled bank by (label share, left-out typology), so the cells of
    several configurations on the same reports build their features once (pass the same dict to
    consecutive cells; it holds one entry).
    """
    t0 = time.perf_counter()
    gt = prep.ground_truth
    if gt is None:
        raise AmlError(f"{prep.dataset.source} has no ground_truth.csv: the protocol judges against the ground truth.")
    left = frozenset(gt.loc[gt["typology"] == cell.leave_out, "customer_id"].astype(str)) if cell.leave_out else frozenset()
    if cell.leave_out and not left:
        raise AmlError(f"leave_out typology {cell.leave_out!r} has no scenario in bank {cell.bank.key}.")
    reports = subsample_reports(prep.dataset.reports, cell.label_share, cell.bank.seed, leave_out_customers=left)
    if not (reports["label"].astype(str) == "suspicious").any():
        raise AmlError(f"cell {cell.name}: no suspicious report is left to train on (bank {cell.bank.key} has "
                       f"{int((prep.dataset.reports['label'].astype(str) == 'suspicious').sum())} before the label share "
                       "and the leave-out); leave out a typology that is not every reported customer's.")
    key = (cell.label_share, cell.leave_out)
    cell_prep = labelled.get(key) if labelled is not None else None
    if cell_prep is None:
        cell_prep = relabel(prep, reports)
        if labelled is not None:
            labelled.clear()
            labelled[key] = cell_prep
    model_set, diagnostics, _ = fit_model_set(cell_prep, config)
    test_rows = np.flatnonzero(prep.split_codes == 2)
    report, scores = evaluate_period(model_set, cell_prep, test_rows, period="test",
                                     label_cutoff=prep.split.label_cutoff("test"))
    caught = _customers_caught(prep, test_rows, scores, cell_prep)
    per_typ = {r.typology: float(r.recall_at_1pct) for r in report.per_typology.itertuples(index=False)}
    o = report.overall
    metrics = {
        "pr_auc": o["pr_auc"], "roc_auc": o["roc_auc"], "recall_at_1pct": o["recall_at_1pct"],
        "recall_at_0_5pct": o["recall_at_0_5pct"], "precision_at_k": o["precision_at_k"],
        "worst_typology_recall_1pct": min(per_typ.values()) if per_typ else float("nan"),
        "left_out_recall_1pct": per_typ.get(cell.leave_out, float("nan")) if cell.leave_out else float("nan"),
        "lgbm_pr_auc": report.components["lgbm"]["pr_auc"], "rules_pr_auc": report.components["rules"]["pr_auc"],
        "anomaly_pr_auc": report.components["anomaly"]["pr_auc"],
        "reports_used": float(len(reports)),
        "suspicious_reports_used": float((reports["label"].astype(str) == "suspicious").sum()),
        "test_positives": o["positives"],
        "test_rows": o["n"],
        "recall_at_1pct_ceiling": recall_ceiling(o["n"], o["positives"], 0.01),
        "laundering_customers": float(caught["laundering_customers"]),
        "customer_recall_at_1pct": caught["customer_recall"],
        "customer_precision_at_1pct": caught["customer_precision"],
        "worst_typology_customer_recall_1pct": min(caught["per_typology"].values(), default=float("nan")),
    }
    for typ, value in caught["per_typology"].items():
        metrics[f"customer_recall_1pct_{typ}"] = value
    for i, c in enumerate(diagnostics.get("fusion_coef", [])):
        metrics[f"fusion_weight_{i}"] = float(c)
    floor = diagnostics.get("fusion", {}).get("anomaly_floor", {})
    metrics["anomaly_evidence_roc_auc"] = floor.get("evidence_roc_auc", float("nan"))
    metrics["anomaly_floor_applied"] = float(bool(floor.get("applied", False)))
    metrics["reported_customers_at_valid_cutoff"] = float(floor.get("reported_customers", float("nan")))
    metrics["pu_label_frequency"] = float(diagnostics.get("fusion", {}).get("label_frequency", float("nan")))
    worst_name = min(per_typ, key=per_typ.get) if per_typ else ""
    diag = {"worst_typology": worst_name, "fusion": diagnostics.get("fusion", {}),
            "train_positives": diagnostics["train_positives_transaction"] + diagnostics["train_positives_period"],
            "valid_positives": diagnostics["valid_positives_transaction"] + diagnostics["valid_positives_period"]}
    return CellResult(cell, {k: float(v) for k, v in metrics.items()}, per_typ, diag, time.perf_counter() - t0)


def run_protocol(grid: ProtocolGrid, make_bank: BankMaker, *, make_external: ExternalMaker | None = None,
                 on_cell: CellSink | None = None, progress: Callable[[str], None] | None = None) -> list[CellResult]:
    """Run every cell of the grid, the synthetic banks' then the external sets'; features are built once per bank.

    Parameters
    ----------
    grid : ProtocolGrid
    make_bank : callable
        Writes (or finds in its cache) the bank of a :class:`BankSpec`; returns its folder.
    make_external : callable, optional
        Converts (or finds in its cache) an :class:`ExternalSet` at a report seed; returns its folder.
        Required when the grid has external sets.
    on_cell : callable, optional
        Called with each :class:`CellResult` as soon as it is done (MLflow logging, a progress line).
    progress : callable, optional
        Called with a line of text at each stage.
    """
    say = progress or (lambda _line: None)
    if grid.external and make_external is None:
        raise ProtocolError(f"the grid has {len(grid.external)} external sets but no converter was given (make_external)")
    results: list[CellResult] = []
    for bank in grid.banks():
        say(f"bank {bank.key}: generating or reading")
        folder = make_bank(bank)
        dataset: Dataset = load_dataset(folder)
        results += _run_bank(grid, bank, folder, dataset, None, on_cell, say)
        del dataset
    for entry, seed in grid.external_banks():
        say(f"external set {entry.name}, seed {seed}: converting or reading")
        folder = make_external(entry, seed)  # type: ignore[misc]  # checked above
        dataset = load_dataset(folder)
        bank = external_bank(entry, seed, dataset)
        results += _run_bank(grid, bank, folder, dataset, ground_truth_typologies(folder), on_cell, say)
        del dataset
    return results


def external_bank(entry: ExternalSet, seed: int, dataset: Dataset) -> BankSpec:
    """The :class:`BankSpec` of a converted external set: its customers and the days its transactions span."""
    ts = dataset.transactions["timestamp"]
    days = int(math.ceil((ts.max() - ts.min()) / pd.Timedelta(days=1))) if len(ts) else 0
    return BankSpec(int(len(dataset.customers)), days, seed, "", entry.name)


def ground_truth_typologies(folder: Path) -> set[str]:
    """The typologies of a data folder's ``ground_truth.csv`` (empty without one)."""
    truth = read_ground_truth(folder)
    return set() if truth is None else set(truth["typology"].dropna().astype(str))


def _run_bank(grid: ProtocolGrid, bank: BankSpec, folder: Path, dataset: Dataset, typologies: set[str] | None,
              on_cell: CellSink | None, say: Callable[[str], None]) -> list[CellResult]:
    """Features, rules and split of one bank once, then each of its cells."""
    say(f"bank {bank.key}: features ({len(dataset.transactions):,} transactions)")
    prep = prepare(grid.train_config(folder, bank.seed), dataset=dataset)
    out = []
    labelled: dict[Any, Prepared] = {}
    # the configurations of one label setting in a row: its features are rebuilt once for all of them
    cells = sorted(grid.cells_of(bank, typologies), key=lambda c: (c.label_share, c.leave_out or ""))
    for cell in cells:
        say(f"cell {cell.name}: training")
        result = run_cell(prep, cell, grid.train_config(folder, bank.seed, cell.config), labelled)
        out.append(result)
        if on_cell:
            on_cell(result)
        say(f"cell {cell.name}: PR-AUC {result.metrics['pr_auc']:.3f}, recall@1% "
            f"{result.metrics['recall_at_1pct']:.3f}, worst typology {result.diagnostics['worst_typology']} "
            f"{result.metrics['worst_typology_recall_1pct']:.3f} ({result.seconds:.0f} s)")
    return out


# ------------------------------------------------------------------------------------------------
# Summary
# ------------------------------------------------------------------------------------------------

SUMMARY_METRICS = ("pr_auc", "recall_at_1pct", "worst_typology_recall_1pct", "left_out_recall_1pct",
                   "recall_at_1pct_ceiling", "customer_recall_at_1pct", "worst_typology_customer_recall_1pct")


def recall_ceiling(rows: float, positives: float, rate: float) -> float:
    """The highest recall any ranking can reach when it may flag ``ceil(rate * rows)`` rows: where the
    laundering transactions outnumber the alert budget, recall at that rate cannot reach 1 (a perfect
    model flags only laundering and still misses the rest)."""
    if not positives or positives != positives:
        return float("nan")
    return float(min(1.0, math.ceil(rate * rows) / positives))


GROUP_KEYS = ("config", "source", "customers", "days", "variant", "label_share", "leave_out")


def cells_frame(results: Sequence[CellResult]) -> pd.DataFrame:
    """One row per cell."""
    return pd.DataFrame([r.row() for r in results])


def summarise(results: Sequence[CellResult]) -> pd.DataFrame:
    """Mean and worst (minimum) over seeds per group of cells, and the seed-to-seed spread of PR-AUC."""
    return summarise_frame(cells_frame(results))


def summarise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`summarise` of a cells table (``cells.csv`` of one or several runs; those written before the
    external sets have no ``source``: their cells are all synthetic)."""
    frame = frame.assign(leave_out=frame["leave_out"].fillna(""),
                         source=frame["source"].fillna(SYNTHETIC) if "source" in frame.columns else SYNTHETIC,
                         variant=frame["variant"].fillna(""))
    rows = []
    for key, g in frame.groupby(list(GROUP_KEYS), sort=True, dropna=False):
        row = dict(zip(GROUP_KEYS, key))
        row["seeds"] = int(g["seed"].nunique())
        for m in SUMMARY_METRICS:
            vals = g[m].astype(float) if m in g.columns else pd.Series(np.nan, index=g.index)  # older cells.csv
            row[f"{m}_mean"] = float(vals.mean()) if vals.notna().any() else float("nan")
            row[f"{m}_worst"] = float(vals.min()) if vals.notna().any() else float("nan")
        row["pr_auc_spread"] = float(g["pr_auc"].max() - g["pr_auc"].min())
        row["worst_typologies"] = ", ".join(sorted(set(
            min((c for c in g.columns if c.startswith("recall_1pct_")), key=lambda c, r=r: r[c] if r[c] == r[c] else 9)
            .removeprefix("recall_1pct_") for _, r in g.iterrows())))
        rows.append(row)
    return pd.DataFrame(rows)


def targets(results: Sequence[CellResult], grid: ProtocolGrid) -> dict[str, dict[str, Any]]:
    """The issue's targets per config, judged on the worst cell at ``target_label_share`` on synthetic
    banks of at least ``target_min_customers`` customers: recall@1 % >= 0.85, PR-AUC >= 0.7, every
    typology (and the left-out one) >= 0.6, seed-to-seed PR-AUC spread <= 0.05.

    The external sets' cells are not judged: the targets were set on the synthetic world (its
    typologies and label policy), and a public set's labels are another data set's definition of
    laundering (AMLSim's: any payment between two fraud accounts); they are reported beside."""
    synthetic = [r for r in results if r.cell.bank.synthetic]
    return {name: _targets([r for r in synthetic if r.cell.config == name], grid) for name in grid.configs}


def _targets(results: Sequence[CellResult], grid: ProtocolGrid) -> dict[str, Any]:
    if not results:
        return {"judged_cells": 0}
    frame = cells_frame(results)
    sel = frame[(frame["label_share"] == grid.target_label_share) & (frame["customers"] >= grid.target_min_customers)]
    if sel.empty:
        return {"judged_cells": 0}
    summary = summarise([r for r in results if r.cell.label_share == grid.target_label_share
                         and r.cell.bank.customers >= grid.target_min_customers])
    typ_cols = [c for c in sel.columns if c.startswith("recall_1pct_")]
    worst_typ = float(np.nanmin(sel[typ_cols].to_numpy(dtype=float))) if typ_cols else float("nan")
    left = sel["left_out_recall_1pct"].dropna()
    checks = {
        "recall_at_1pct_worst": (float(sel["recall_at_1pct"].min()), 0.85, ">="),
        "pr_auc_worst": (float(sel["pr_auc"].min()), 0.70, ">="),
        "typology_recall_worst": (worst_typ, 0.60, ">="),
        "left_out_recall_worst": (float(left.min()) if len(left) else float("nan"), 0.60, ">="),
        "pr_auc_spread_worst": (float(summary["pr_auc_spread"].max()), 0.05, "<="),
    }
    out: dict[str, Any] = {"judged_cells": int(len(sel))}
    if "recall_at_1pct_ceiling" in sel.columns:  # context, not a target: what a perfect ranking would reach
        out["recall_at_1pct_ceiling_worst"] = float(sel["recall_at_1pct_ceiling"].min())
    for name, (value, bound, op) in checks.items():
        met = (value >= bound) if op == ">=" else (value <= bound)
        out[name] = {"value": value, "target": f"{op} {bound}", "met": bool(met) if value == value else None}
    return out


def _f(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _count(v: Any) -> str:
    """A whole number with thousands separators ("–" when missing; cells.csv may read it as a float)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{int(v):,}"


def summary_table_md(s: pd.DataFrame) -> list[str]:
    """The rows of a :func:`summarise_frame` table as Markdown lines."""
    lines = ["| config | source | customers | days | variant | labels | left out | seeds | PR-AUC mean | PR-AUC worst "
             "| PR-AUC spread | recall@1% mean | recall@1% worst | worst typology recall mean "
             "| worst typology recall worst | left-out recall worst | recall@1% ceiling worst "
             "| customers caught@1% mean | customers caught@1% worst | worst typology customers caught worst "
             "| weakest typologies |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in s.itertuples(index=False):
        lines.append(f"| {r.config} | {r.source} | {_count(r.customers)} | {_count(r.days)} | {r.variant or '–'} "
                     f"| {round(r.label_share * 100)} % | {r.leave_out or '–'} "
                     f"| {r.seeds} | {_f(r.pr_auc_mean)} | {_f(r.pr_auc_worst)} | {_f(r.pr_auc_spread)} "
                     f"| {_f(r.recall_at_1pct_mean)} | {_f(r.recall_at_1pct_worst)} "
                     f"| {_f(r.worst_typology_recall_1pct_mean)} | {_f(r.worst_typology_recall_1pct_worst)} "
                     f"| {_f(r.left_out_recall_1pct_worst)} | {_f(r.recall_at_1pct_ceiling_worst)} "
                     f"| {_f(r.customer_recall_at_1pct_mean)} | {_f(r.customer_recall_at_1pct_worst)} "
                     f"| {_f(r.worst_typology_customer_recall_1pct_worst)} | {r.worst_typologies} |")
    return lines


def summary_markdown(results: Sequence[CellResult], grid: ProtocolGrid) -> str:
    """The summary table (mean and worst per group) and the targets, as Markdown."""
    lines = [f"Protocol `{grid.name}`: {len(results)} cells, test period = last 20 % of each bank's time, "
             "judged against the full ground truth; mean and worst over seeds.", ""]
    lines += summary_table_md(summarise(results))
    frame = cells_frame(results)
    for source, g in frame.groupby("source", sort=False):
        what = "the synthetic banks" if source == SYNTHETIC else f"external set `{source}`"
        lines += ["", f"Over all {len(g)} cells of {what}: PR-AUC mean {_f(float(g['pr_auc'].mean()))}, worst "
                     f"{_f(float(g['pr_auc'].min()))}; recall@1% mean {_f(float(g['recall_at_1pct'].mean()))}, worst "
                     f"{_f(float(g['recall_at_1pct'].min()))}."]
    if grid.external:
        lines += ["", "The external sets are reported beside the synthetic banks and not judged against the "
                  "issue's targets (their labels are another data set's definition of laundering)."]
    for config, t in targets(results, grid).items():
        if not t.get("judged_cells"):
            continue
        lines += ["", f"Targets, config `{config}` (worst of {t['judged_cells']} cells at "
                  f"{round(grid.target_label_share * 100)} % of the reports on banks of "
                  f"{grid.target_min_customers:,}+ customers):", ""]
        for name, v in t.items():
            if isinstance(v, dict):
                state = {True: "met", False: "not met", None: "not measured"}[v["met"]]
                lines.append(f"* {name.replace('_', ' ')}: {_f(v['value'])} (target {v['target']}): {state}")
        if "recall_at_1pct_ceiling_worst" in t:
            lines.append(f"* for context, recall@1% a perfect ranking would reach in the worst of these cells: "
                         f"{_f(t['recall_at_1pct_ceiling_worst'])} (laundering transactions above 1 % of the "
                         "test period cap it)")
    return "\n".join(lines) + "\n"


def write_summary(results: Sequence[CellResult], grid: ProtocolGrid, out: str | Path) -> dict[str, Path]:
    """Write ``cells.csv``, ``summary.csv``, ``summary.md`` and ``targets.json`` into ``out``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"cells": folder / "cells.csv", "summary": folder / "summary.csv", "markdown": folder / "summary.md",
             "targets": folder / "targets.json"}
    cells_frame(results).to_csv(paths["cells"], index=False)
    summarise(results).to_csv(paths["summary"], index=False)
    paths["markdown"].write_text(summary_markdown(results, grid), encoding="utf-8")
    paths["targets"].write_text(json.dumps(targets(results, grid), indent=2), encoding="utf-8")
    return paths
