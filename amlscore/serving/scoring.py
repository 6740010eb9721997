"""The scoring engine: online features -> model set -> rules -> decision -> audit log.

Everything that changes state happens under one lock, in this order, for each transaction:

1. a txn_id already in the audit log is a replay: the original decision is returned (same request
   id) and nothing is counted; the same txn_id with different content is refused (409);
2. the online feature state counts the transaction and returns its feature row (it refuses an
   unknown customer, a malformed field or a transaction older than the customer's latest one, and
   then changes nothing);
3. the model set scores the row (suspicion score 0..100, components, alert), and for compliance
   callers who ask for it explains it in the same pass (``ModelSet.score_and_explain``: TreeSHAP
   for LightGBM, the anomaly attribution, the rules with their conditions);
4. the rules fired (from the model set's pass), the customer's current risk level and the peer
   comparisons are added;
5. the decision (input, feature row, scores, reasons, versions, caller) is queued for the audit
   log's next commit (group commit, :class:`amlscore.core.audit.AuditLog`); the response is built from
   it once that commit is done (the service awaits it without blocking its event loop).

A crash between 2 and 5 leaves the transaction counted but undecided; sending it again scores the
stored feature row (the state does not count it twice) and records the decision then.

The engine knows nothing of HTTP: it raises :mod:`amlscore.serving.errors` exceptions, which the service
turns into responses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amlscore.contract import load_dataset, report_data_warnings
from amlscore.features.catalogue import FEATURE_NAMES, FEATURE_SET_VERSION
from amlscore.features.events import timestamp_ns
from amlscore.features.online import BadTransactionError, LateTransactionError, OnlineFeatureState, warm_up
from amlscore.features.registry import UnknownCustomerError
from amlscore.models.rules import RulesConfig, explain_rules, load_rules_config, score_transaction_rules
from amlscore.serving import words
from amlscore.core.audit import AuditLog, AuditRecord, input_hash, new_ulid, utc_now_iso
from amlscore.serving.auth import Caller
from amlscore.serving.config import Settings, SettingsError
from amlscore.serving.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    NotReady,
    ServingError,
    UnprocessableTransaction,
    json_safe,
    with_code,
)
from amlscore.serving.feedback import FeedbackStore, make_entry
from amlscore.serving.ratings import BehaviourLog, RatingBook
from amlscore.serving.registry import LoadedModel, ModelCache, RegistryLoader, meta_value
from amlscore.serving.schemas import FeedbackRequest, Transaction

log = logging.getLogger(__name__)
SERVICE_NAME = "amlscore"
_DAY_NS = 86_400 * 1_000_000_000
Progress = Callable[[int, int], None]


# -- model-set results, read defensively (attribute or mapping, array or scalar) -----------------------
def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj[name]
    return getattr(obj, name)


def _num(v: Any) -> float | None:
    """A model output as a plain float; NaN or infinity (JSON has neither) as None."""
    f = float(v)
    return f if math.isfinite(f) else None


def _at(obj: Any, name: str, i: int) -> Any:
    v = _field(obj, name)
    if np.ndim(v) == 0:
        return v.item() if hasattr(v, "item") else v
    return v[i].item() if hasattr(v[i], "item") else v[i]


def explanation_dict(expl: Any) -> dict[str, Any]:
    """A model-set explanation as plain JSON-safe data (what ``Explanation.to_dict()`` gives).

    For a dataclass the fields are read directly (one level of nested dataclasses, shallow) instead
    of ``dataclasses.asdict``, whose deep copy costs about 2 ms per explanation; :func:`json_safe`
    copies and cleans (NaN -> None, numpy -> plain) the result.
    """
    if dataclasses.is_dataclass(expl) and not isinstance(expl, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(expl):
            v = getattr(expl, f.name)
            if isinstance(v, (list, tuple)):
                v = [dict(vars(item)) if dataclasses.is_dataclass(item) else item for item in v]
            elif dataclasses.is_dataclass(v):
                v = dict(vars(v))
            out[f.name] = v
    else:
        out = dict(expl.to_dict() if hasattr(expl, "to_dict") else expl)
    try:  # the common case: already plain JSON (C encoder check, ~20x cheaper than walking it in Python)
        json.dumps(out, allow_nan=False)
        return out
    except (TypeError, ValueError):
        return json_safe(out)


_ATTRIBUTION_KEYS = ("lgbm_contributions", "contributions")  # amlscore.models.model_set.Explanation, then older names
_ANOMALY_KEYS = ("anomaly_attribution", "anomaly")


def split_explanation(expl: dict[str, Any] | None) -> tuple[list[Any] | None, Any]:
    """(LightGBM attributions, anomaly attribution) out of a model-set explanation dict."""
    if not expl:
        return None, None
    attributions = next((expl[k] for k in _ATTRIBUTION_KEYS if k in expl), None)
    anomaly = next((expl[k] for k in _ANOMALY_KEYS if k in expl), None)
    return attributions, anomaly


# -- state binding ------------------------------------------------------------------------------------
def customers_hash(customers: pd.DataFrame) -> str:
    """Fingerprint of the customers table: the online state indexes customers by their row."""
    hashed = pd.util.hash_pandas_object(customers.astype(str), index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:32]


def bind_state(state_dir: Path, customers: pd.DataFrame, params_hash: str, data_dir: Path) -> None:
    """Refuse to reuse a state folder built from another customers table or other feature parameters."""
    path = state_dir / "state_binding.json"
    current = {"customers_hash": customers_hash(customers), "feature_params_hash": params_hash,
               "feature_set_version": FEATURE_SET_VERSION}
    if path.exists():
        bound = json.loads(path.read_text(encoding="utf-8"))
        for key, value in current.items():
            if bound.get(key) != value:
                raise SettingsError(
                    f"the state folder {str(state_dir)!r} was built with {key} {bound.get(key)!r} (data folder "
                    f"{bound.get('data_dir')!r}) but the service now has {value!r} (data folder {str(data_dir)!r}). "
                    "The online feature state, the audit log and the feedback belong to that data: start with "
                    "another --state-dir, or with the original data folder.")
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**current, "data_dir": str(data_dir), "created_at": utc_now_iso()}, indent=2) + "\n",
                    encoding="utf-8")


def prepare_state(settings: Settings, progress: Progress | None = None) -> tuple[int, int]:
    """Bind the state folder to the data and warm up an empty online state, then close it.

    ``amlscore serve`` runs this before starting the server so the (one-time) warm-up shows a
    progress bar; the service does the same on its own when started directly. Returns
    ``(transactions in the state, transactions replayed now)``.
    """
    state_dir = Path(settings.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(settings.data_dir, require_reports=False)
    report_data_warnings(dataset)
    state = OnlineFeatureState(dataset.customers, store=state_dir / "features.sqlite")
    try:
        bind_state(state_dir, dataset.customers, state.params.hash, Path(settings.data_dir))
        replayed = warm_up(state, dataset.transactions, settings.warm_up_days, progress)
        return int(state.processed), replayed
    finally:
        state.close()


@dataclass(frozen=True)
class Outcome:
    """A decision as recorded, and whether this call was a replay of it.

    ``waits`` are the audit-log commits the answer depends on (the decision's own, and for a replay
    the note of the replay and, when the original decision is still being committed, that commit):
    nothing may be sent before they are done (:meth:`wait`, :meth:`wait_async`).
    """

    record: AuditRecord
    replayed: bool
    waits: tuple[Future, ...] = ()

    def wait(self) -> None:
        """Block until the record (and a replay's note) is durable; raises what the commit raised."""
        for f in self.waits:
            f.result()

    async def wait_async(self) -> None:
        """:meth:`wait` for the event loop: other requests are served meanwhile."""
        for f in self.waits:
            if not f.done():
                await asyncio.wrap_future(f)
            f.result()


def wait_all(outcomes: Sequence[Any]) -> list[Future]:
    """The distinct commits a list of outcomes (and errors, which have none) waits for."""
    seen: dict[int, Future] = {}
    for o in outcomes:
        for f in getattr(o, "waits", ()):
            seen.setdefault(id(f), f)
    return list(seen.values())


class ScoringEngine:
    """Online features, model set, rules, ratings, audit log and feedback behind one lock.

    Parameters
    ----------
    settings : the service settings.
    loader : where model sets come from (default: the MLflow registry of ``settings``).
    warm_up_progress : called as ``progress(done, total)`` while an empty state is warmed up.
    """

    def __init__(self, settings: Settings, loader: RegistryLoader | None = None,
                 warm_up_progress: Progress | None = None) -> None:
        started = time.perf_counter()
        self.settings = settings
        self.started_at = time.time()
        self.lock = threading.RLock()
        self.ready = False
        state_dir = Path(settings.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        self.loader = loader or RegistryLoader(settings.tracking_uri, settings.model_name, state_dir / "models")
        self.models = ModelCache(self.loader)

        # 1. the model set first: a bad model fails before the (possibly long) warm-up
        self.model = self._load_model(settings.model_alias, settings.model_version)
        self.rules_config = self._rules_config(self.model)

        # 2. the data folder and the online feature state
        dataset = load_dataset(settings.data_dir, require_reports=False)
        report_data_warnings(dataset)
        self.customers = dataset.customers
        self.data_fingerprint = dataset.fingerprint
        self.state = OnlineFeatureState(dataset.customers, store=state_dir / "features.sqlite")
        bind_state(state_dir, dataset.customers, self.state.params.hash, Path(settings.data_dir))
        self._check_params(self.model)
        self.warmed_up = warm_up(self.state, dataset.transactions, settings.warm_up_days, warm_up_progress)
        self.registry = self.state.registry
        self.offset_hours = int(self.state.params.bank_utc_offset_hours)

        # 3. durable logs
        self.audit = AuditLog(state_dir / "audit.sqlite", sync=settings.audit_sync)
        self.feedback = FeedbackStore(state_dir / "feedback.sqlite", state_dir / "feedback")

        # 4. behaviour over the rating window, from the feature store, and the ratings at start
        self.behaviour = BehaviourLog(self.rules_config)
        self._load_behaviour()
        self.ratings = RatingBook(dataset.customers, dataset.reports, self.rules_config)
        self.ratings.rate_all(self.behaviour, self.feedback.reports_frame())
        del dataset
        self._warm_code_paths()
        self.ready = True
        log.info("scoring engine ready in %.1f s: model %s v%s, %d customers, %d transactions in the state "
                 "(%d replayed at warm-up), %d decisions in the audit log", time.perf_counter() - started,
                 self.model.name, self.model.version, len(self.customers), self.state.processed, self.warmed_up,
                 self.audit.count())

    # -- loading ------------------------------------------------------------------------------
    def _load_model(self, alias: str | None, version: str | None) -> LoadedModel:
        loaded = self.loader.load(alias=None if version else alias, version=version)
        try:
            loaded.model_set.check_features(list(FEATURE_NAMES))
        except Exception as exc:
            raise SettingsError(f"model {loaded.source} does not match the online features "
                                f"({FEATURE_SET_VERSION}): {exc}") from None
        fset = meta_value(loaded.model_set, "feature_set_version")
        if fset is not None and str(fset) != FEATURE_SET_VERSION:
            raise SettingsError(f"model {loaded.source} was trained on feature set {fset!r}; "
                                f"this service computes {FEATURE_SET_VERSION!r}")
        self.models.put(loaded.version, loaded.model_set)
        return loaded

    def _check_params(self, loaded: LoadedModel) -> None:
        trained = meta_value(loaded.model_set, "feature_params_hash")
        if trained is not None and str(trained) != self.state.params.hash:
            raise SettingsError(f"model {loaded.source} was trained with feature parameters {trained!r}; the online "
                                f"state computes them with {self.state.params.hash!r} (amlscore/features/config/feature_params.yaml)")

    @staticmethod
    def _rules_config(loaded: LoadedModel) -> RulesConfig:
        """The model set's own rules configuration when it carries one, else the packaged one (same hash)."""
        cfg = getattr(loaded.model_set, "rules_config", None)
        if isinstance(cfg, RulesConfig):
            return cfg
        cfg = load_rules_config()
        expected = meta_value(loaded.model_set, "rules_config_hash")
        if expected is not None and str(expected) != cfg.hash:
            log.warning("model %s was built with rules configuration %s; the packaged one is %s: rules fired are "
                        "listed with the packaged configuration", loaded.source, expected, cfg.hash)
        return cfg

    def _load_behaviour(self) -> None:
        """Refill the behaviour window from the feature store (rows of the last lookback days).

        Only the store's recent events are read (:meth:`~features.store.SQLiteFeatureStore.recent_events`),
        so a start costs the rating window, not the whole history the store has kept.
        """
        rows = list(self.state.store.recent_events(self.behaviour.keep_ns / _DAY_NS))
        if not rows:
            return
        stamps = [timestamp_ns(rec["timestamp"]) for rec, _ in rows]
        limit = max(stamps) - self.behaviour.keep_ns
        for (rec, vec), t in zip(rows, stamps):
            if t >= limit:
                self.behaviour.add(rec["customer_id"], t, rec.get("counterparty_country"), vec)

    def _warm_code_paths(self, model_only: bool = False) -> None:
        """Run two made-up transactions through a throwaway in-memory state, the model set, the rules and the
        words, so the first real request does not pay for numba compilation and lazy imports. Nothing durable
        (state, audit log) is touched."""
        t0 = time.perf_counter()
        c = self.customers
        rows = [0]  # plus a customer with an agent and one with an emergency phone: every registry index non-empty
        for col in ("agent_id", "emergency_contact_phone"):
            has = np.flatnonzero(c[col].notna().to_numpy() & (c[col].astype(str).str.len() > 0).to_numpy())
            rows += has[:1].tolist()
        some = c.iloc[sorted(set(rows))]
        cid = str(some["customer_id"].iloc[0])
        now = datetime.now(timezone.utc)
        x = np.zeros((2, len(FEATURE_NAMES)))
        if not model_only:
            try:
                scratch = OnlineFeatureState(some)
                for k, extra in enumerate(({"channel": "online_banking", "txn_type": "transfer", "ip_address": "10.0.0.1",
                                            "device_id": "warm-up", "counterparty_country": "US"},
                                           {"channel": "counter", "txn_type": "cash_deposit"})):
                    rec = {"txn_id": f"warm-up-{k}", "customer_id": cid, "account_id": "warm-up", "direction": "in",
                           "timestamp": (now + timedelta(seconds=k)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                           "amount": 100.0 + k, "counterparty_type": "individual", **extra}
                    x[k] = scratch.update_vector(rec)
            except Exception as exc:  # pragma: no cover - best effort: the first request is only slower
                log.warning("code-path warm-up of the online features skipped: %s", exc)
        ms = self.model.model_set
        ms.score_vector(x[:1])
        ms.score_vector(x)
        for lang in ("en", "zh"):
            ms.explain_vector(x[:1], top_k=self.settings.top_k, lang=lang)
            if hasattr(ms, "score_and_explain"):
                ms.score_and_explain(x[:1], top_k=self.settings.top_k, lang=lang)
            explain_rules(score_transaction_rules(x[0], self.rules_config), self.rules_config, lang)
        log.info("code paths warmed in %.1f s", time.perf_counter() - t0)

    # -- scoring ------------------------------------------------------------------------------
    def _bank_day(self, t: datetime) -> date:
        return (t + timedelta(hours=self.offset_hours)).date()

    def _check_time(self, txn: Transaction) -> None:
        limit = self.settings.max_future_seconds
        if limit and txn.timestamp > datetime.now(timezone.utc) + timedelta(seconds=limit):
            raise with_code(UnprocessableTransaction, "timestamp_in_future",
                            f"transaction {txn.txn_id!r} is dated {txn.timestamp.isoformat()}, more than {limit} s "
                            "ahead of the server clock; it would make the customer's later transactions look late")

    def _features(self, record: dict[str, Any]) -> np.ndarray:
        try:
            return self.state.update_vector(record)
        except UnknownCustomerError as exc:
            raise with_code(UnprocessableTransaction, "unknown_customer", str(exc)) from None
        except LateTransactionError as exc:
            raise with_code(Conflict, "late_transaction", str(exc)) from None
        except BadTransactionError as exc:
            raise InvalidRequest(str(exc)) from None

    def _replay(self, record: dict[str, Any], ihash: str, caller: Caller, endpoint: str,
                known: dict[str, AuditRecord] | None = None) -> Outcome | None:
        prev = self.audit.by_txn(record["txn_id"]) if known is None else known.get(record["txn_id"])
        if prev is None:
            return None
        if prev.input_hash != ihash:
            raise with_code(Conflict, "txn_id_reused",
                            f"txn_id {record['txn_id']!r} was scored before (request {prev.request_id}) with different "
                            "content; a txn_id identifies one transaction")
        note = self.audit.submit_replay(prev.request_id, prev.txn_id, caller.key_id, caller.role, endpoint)
        original = self.audit.durable(prev.txn_id)  # the original decision may still be being committed
        return Outcome(prev, replayed=True, waits=(note,) if original is None else (original, note))

    def _decide(self, record: dict[str, Any], ihash: str, x: np.ndarray, scores: Any, i: int, caller: Caller,
                explain: bool, lang: str, endpoint: str, batch_id: str | None,
                explanation: dict[str, Any] | None = None) -> AuditRecord:
        """Build the full decision for one scored row (everything the audit log keeps).

        ``explanation`` is the row's explanation when the model set computed it with the scores
        (:meth:`_score_one`); otherwise it is computed here when ``explain`` is asked by a caller
        who sees it.
        """
        model = self.model
        rules_config = self.rules_config
        cid = record["customer_id"]
        code = self.registry.code_of[cid]
        group = self.registry.peer_group_names[int(self.registry.peer_group[code])]
        is_corporate = bool(self.registry.is_corporate[code])
        values = dict(zip(FEATURE_NAMES, x.tolist()))
        rule = self._rule_result(scores, i, x)
        rules_fired = [{
            "rule_id": f.rule_id,
            "weight": f.weight,
            "conditions": [{"feature": c.feature, "op": c.op, "threshold": c.threshold, "value": c.value} for c in f.conditions],
        } for f in rule.fired]
        if not (explain and caller.full_view):
            explanation = None
        elif explanation is None:
            explanation = explanation_dict(model.model_set.explain_vector(x[None, :], top_k=self.settings.top_k, lang=lang))
        request_id = new_ulid()
        decided_at = utc_now_iso()
        score = _num(_at(scores, "suspicion_score", i))
        alert = bool(_at(scores, "alert", i))
        decision = {  # plain JSON values only: numbers from the model go through _num, the explanation through json_safe
            "request_id": request_id,
            "txn_id": record["txn_id"],
            "customer_id": cid,
            "suspicion_score": score,
            "alert": alert,
            "decided_at": decided_at,
            "components": {
                "rule_score": _num(_at(scores, "rule_score", i)),
                "lgbm_probability": _num(_at(scores, "lgbm_probability", i)),
                "anomaly_score": _num(_at(scores, "anomaly_score", i)),
            },
            "alert_threshold": _num(model.model_set.alert_threshold),
            "customer_risk": self.ratings.summary(cid),
            "peer_group": group,
            "rules_fired": rules_fired,
            "rules_text": {"en": explain_rules(rule, rules_config, "en"), "zh": explain_rules(rule, rules_config, "zh")},
            "peer_comparisons": {lg: words.peer_comparisons(values, group, record["direction"], is_corporate, lg)
                                 for lg in ("en", "zh")},
            "explanation": explanation,
            "explanation_lang": lang if explanation is not None else None,
            "versions": model.versions(),
            "caller": {"key_id": caller.key_id, "role": caller.role},
        }
        v = decision["versions"]
        return AuditRecord(request_id=request_id, txn_id=record["txn_id"], customer_id=cid, decided_at=decided_at,
                           caller_key_id=caller.key_id, caller_role=caller.role, endpoint=endpoint, batch_id=batch_id,
                           input_hash=ihash, input=record, features=x, suspicion_score=score or 0.0, alert=alert,
                           model_name=model.name, model_version=model.version,
                           feature_set_version=v.get("feature_set_version"),
                           feature_params_hash=v.get("feature_params_hash"),
                           rules_config_hash=v.get("rules_config_hash"), decision=decision)

    def _rule_result(self, scores: Any, i: int, x: np.ndarray) -> Any:
        """Row ``i``'s transaction-rule result: the model set's own (``ScoreBatch.rules``) when it used the
        engine's rules configuration, else evaluated here."""
        rules = getattr(scores, "rules", None)
        if rules and getattr(self.model.model_set, "rules_config", None) is self.rules_config:
            return rules[i]
        return score_transaction_rules(x, self.rules_config)

    def _score_one(self, x: np.ndarray, caller: Caller, explain: bool, lang: str) -> tuple[Any, dict[str, Any] | None]:
        """Scores of one feature row and, for a caller who sees it and asks, its explanation, in one pass of
        the model set when it offers one (``score_and_explain``)."""
        ms = self.model.model_set
        if explain and caller.full_view and hasattr(ms, "score_and_explain"):
            scores, expl = ms.score_and_explain(x[None, :], top_k=self.settings.top_k, lang=lang)
            return scores, explanation_dict(expl)
        return ms.score_vector(x[None, :]), None

    def _remember(self, rec: AuditRecord) -> None:
        t = timestamp_ns(rec.input["timestamp"])
        self.behaviour.add(rec.customer_id, t, rec.input.get("counterparty_country"), rec.features)

    def score(self, txn: Transaction, caller: Caller, explain: bool = True, lang: str = "en",
              wait: bool = True) -> Outcome:
        """Score one transaction (or return its original decision when the txn_id was scored before).

        The decision is submitted to the audit log's next commit. With ``wait`` (the default) this
        returns once it is durable; with ``wait=False`` it returns at once and the caller must
        :meth:`Outcome.wait_async` (or :meth:`Outcome.wait`) before answering; the service does, so
        its event loop scores the next request while the commit's fsync runs.
        """
        record = txn.to_record()
        ihash = input_hash(record)
        with self.lock:
            self._require_ready()
            outcome = self._replay(record, ihash, caller, "score")
            if outcome is None:
                self._check_time(txn)
                x = self._features(record)
                scores, explanation = self._score_one(x, caller, explain, lang)
                rec = self._decide(record, ihash, x, scores, 0, caller, explain, lang, "score", None, explanation)
                durable = self.audit.submit([rec])
                self._remember(rec)
                outcome = Outcome(rec, replayed=False, waits=(durable,))
        if wait:
            outcome.wait()
        return outcome

    def score_batch(self, txns: Sequence[Transaction], caller: Caller, explain: bool = False,
                    lang: str = "en", wait: bool = True) -> tuple[str, list[Outcome | ServingError]]:
        """Score transactions in order, as one by one; per item an :class:`Outcome` or the error it got.

        Items in error change nothing; the others are decided and all decisions are committed to the
        audit log in one transaction, before this returns (``wait``) or before the caller answers
        (``wait=False``: it waits for :func:`wait_all` of the results).
        """
        batch_id = new_ulid()
        results: list[Outcome | ServingError | None] = [None] * len(txns)
        with self.lock:
            self._require_ready()
            pending: list[tuple[int, dict[str, Any], str, np.ndarray]] = []
            first_in_batch: dict[str, tuple[int, str]] = {}
            duplicates: list[tuple[int, int]] = []
            known = self.audit.by_txns([t.txn_id for t in txns])
            for i, txn in enumerate(txns):
                record = txn.to_record()
                ihash = input_hash(record)
                try:
                    seen = first_in_batch.get(record["txn_id"])
                    if seen is not None:
                        if seen[1] != ihash:
                            raise with_code(Conflict, "txn_id_reused", f"txn_id {record['txn_id']!r} appears twice in the "
                                            "batch with different content; a txn_id identifies one transaction")
                        duplicates.append((i, seen[0]))
                        continue
                    replay = self._replay(record, ihash, caller, "score_batch", known)
                    if replay is not None:
                        results[i] = replay
                        first_in_batch[record["txn_id"]] = (i, ihash)
                        continue
                    self._check_time(txn)
                    x = self._features(record)
                    first_in_batch[record["txn_id"]] = (i, ihash)
                    pending.append((i, record, ihash, x))
                except ServingError as exc:
                    results[i] = exc
            records: list[AuditRecord] = []
            if pending:
                scores = self.model.model_set.score_vector(np.vstack([p[3] for p in pending]))
                for j, (i, record, ihash, x) in enumerate(pending):
                    rec = self._decide(record, ihash, x, scores, j, caller, explain, lang, "score_batch", batch_id)
                    records.append(rec)
                    results[i] = Outcome(rec, replayed=False)
            if records:
                durable = (self.audit.submit(records),)
                for i, *_ in pending:
                    results[i] = dataclasses.replace(results[i], waits=durable)  # type: ignore[arg-type]
            for rec in records:
                self._remember(rec)
            for i, first in duplicates:
                res = results[first]
                results[i] = Outcome(res.record, replayed=True, waits=res.waits) if isinstance(res, Outcome) else res
        if wait:
            for f in wait_all(results):
                f.result()
        return batch_id, results  # type: ignore[return-value]

    # -- explaining a past decision -------------------------------------------------------------
    def explain(self, request_id: str, lang: str = "en") -> tuple[AuditRecord, dict[str, Any] | None, str]:
        """A recorded decision and its explanation, computed with the model version that decided.

        Returns ``(record, explanation, source)`` where source is ``decision`` (computed when scoring),
        ``deferred`` (computed later from the stored feature row with the same model version, then
        frozen in the audit log) or ``unavailable: <why>``.
        """
        rec = self.audit.by_request(request_id)
        if rec is None:
            raise with_code(NotFound, "unknown_request_id", f"no decision with request id {request_id!r} in the audit log")
        d = rec.decision
        if d.get("explanation") is not None and d.get("explanation_lang") == lang:
            return rec, d["explanation"], "decision"
        stored = self.audit.explanation(request_id, lang)
        if stored is not None:
            return rec, stored["explanation"], "deferred"
        try:  # outside the lock: loading an old version from the registry may take seconds
            model_set = self.models.get(rec.model_version)
        except ServingError as exc:
            return rec, None, f"unavailable: model version {rec.model_version} cannot be loaded ({exc.message})"
        with self.lock:
            expl = explanation_dict(model_set.explain_vector(rec.features[None, :], top_k=self.settings.top_k, lang=lang))
            stored = self.audit.append_explanation(request_id, lang, rec.model_version, expl)
        return rec, stored["explanation"], "deferred"

    # -- customers --------------------------------------------------------------------------------
    def customer_risk(self, customer_id: str, lang: str = "en", refresh: bool = False) -> tuple[dict[str, Any], bool]:
        """The customer's rating with its breakdown: ``(detail, refreshed)``."""
        if not self.ratings.knows(customer_id):
            raise with_code(NotFound, "unknown_customer", f"customer_id {customer_id!r} is not in the customers table")
        with self.lock:
            if refresh:
                self.ratings.refresh(customer_id, self.behaviour, self.feedback.reports_frame())
            detail = self.ratings.detail(customer_id, lang)
        if detail is None:
            raise with_code(NotFound, "not_rated", f"customer {customer_id!r} is not rated: onboarded after the rating "
                                                   f"date {self.ratings.as_of}")
        return detail, refresh

    # -- feedback -------------------------------------------------------------------------------
    def record_feedback(self, req: FeedbackRequest, caller: Caller) -> dict[str, Any]:
        """Store an analyst's disposition of a decision; returns the receipt."""
        rec = self.audit.by_request(req.request_id) if req.request_id else self.audit.by_txn(req.txn_id or "")
        if rec is None:
            ref = f"request id {req.request_id!r}" if req.request_id else f"txn_id {req.txn_id!r}"
            raise with_code(NotFound, "unknown_decision", f"no decision with {ref} in the audit log")
        txn_day = self._bank_day(pd.Timestamp(rec.input["timestamp"]).to_pydatetime()).isoformat()
        today = self._bank_day(datetime.now(timezone.utc)).isoformat()
        report_date = req.report_date.isoformat() if req.report_date else max(today, txn_day)
        if report_date < txn_day:
            raise InvalidRequest(f"The 'report_date' field must be on or after the transaction's day {txn_day}. "
                                 f"Got {report_date!r} instead.")
        entry = make_entry(request_id=rec.request_id, txn_id=rec.txn_id, customer_id=rec.customer_id, txn_day=txn_day,
                           label=req.label, typology=req.typology, analyst=req.analyst, note=req.note,
                           report_date=report_date, caller_key_id=caller.key_id, caller_role=caller.role,
                           model_version=rec.model_version, alert=rec.alert, score=rec.suspicion_score,
                           transaction_json=json.dumps(rec.input, ensure_ascii=False))
        with self.lock:
            self.feedback.record(entry)
        return {"report_id": entry.report_id, "request_id": rec.request_id, "txn_id": rec.txn_id,
                "customer_id": rec.customer_id, "label": entry.label, "report_date": entry.report_date,
                "export_file": str(self.feedback.export_file)}

    # -- administration -------------------------------------------------------------------------
    def reload(self, alias: str | None = None, version: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Load another model set (an alias or a version) and serve it from the next request on."""
        if version is None and alias is None:
            alias, version = self.settings.model_alias, self.settings.model_version
        new = self._load_model(alias, version)
        self._check_params(new)
        rules = self._rules_config(new)
        with self.lock:
            previous = self.model.versions()
            self.model = new
            self.rules_config = rules
            self._warm_code_paths(model_only=True)
        log.info("reloaded model: %s v%s -> %s v%s", previous["model_name"], previous["model_version"], new.name, new.version)
        return previous, new.versions()

    def _require_ready(self) -> None:
        if not self.ready:
            raise NotReady("the scoring engine is not ready")

    def metadata(self) -> dict[str, Any]:
        ms = self.model.model_set
        thresholds = meta_value(ms, "thresholds", {}) or {}
        return json_safe({
            "service": SERVICE_NAME,
            "api_version": "v1",
            "versions": self.model.versions(),
            "model_ref": self.model.source,
            "loaded_at": self.model.loaded_at,
            "alert_threshold": float(ms.alert_threshold),
            "thresholds": dict(thresholds) if isinstance(thresholds, dict) else {"value": thresholds},
            "feature_names": list(getattr(ms, "feature_names", FEATURE_NAMES)),
            "rules_config_revision": getattr(self.rules_config, "revision", None),
            "customers": int(len(self.customers)),
            "state": {
                "transactions": int(self.state.processed),
                "feature_params_hash": self.state.params.hash,
                "data_fingerprint": self.data_fingerprint,
                "ratings_as_of": self.ratings.as_of.isoformat() if self.ratings.as_of else None,
                "audit_decisions": self.audit.count(),
                "feedback": self.feedback.count(),
            },
        })

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ready else "starting",
            "ready": self.ready,
            "model_version": self.model.version if self.ready else None,
            "audit_decisions": self.audit.count(),
            "state_transactions": int(self.state.processed),
            "uptime_seconds": round(time.time() - self.started_at, 1),
        }

    def close(self) -> None:
        """Snapshot the online state and close the stores."""
        with self.lock:
            self.ready = False
            try:
                self.state.close()
            finally:
                self.audit.close()
                self.feedback.close()
