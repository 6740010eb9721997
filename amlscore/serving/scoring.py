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

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amlscore.contract import load_dataset, report_data_warnings
from amlscore.features.catalogue import FEATURE_NAMES, FEATURE_SET_VERSION
from amlscore.features.events import timestamp_ns
from amlscore.features.online import OnlineFeatureState, warm_up
from amlscore.features.txn_checks import BadTransactionError, LateTransactionError
from amlscore.features.registry import UnknownCustomerError
from amlscore.models.rules import explain_rules, score_transaction_rules
from amlscore.serving import words
from amlscore.core.audit import AuditRecord, input_hash, new_ulid, utc_now_iso
from amlscore.core.decision import RecordedDecision, components_of, finite_or_none, fired_rules_json, json_safe
from amlscore.serving.auth import Caller
from amlscore.serving.config import Settings, SettingsError
from amlscore.serving.drift_watch import DriftWatch
from amlscore.serving.errors import (
    Conflict,
    InternalError,
    InvalidRequest,
    NotFound,
    NotReady,
    ServingError,
    UnprocessableTransaction,
    with_code,
)
from amlscore.serving import backends
from amlscore.serving.feedback import RatingChange, make_entry
from amlscore.serving.ratings import BehaviourLog, RatingBook
from amlscore.serving.registry import FolderLoader, LoadedModel, ModelCache, RegistryLoader
from amlscore.serving.outcome import Outcome, wait_all
from amlscore.serving.schemas import FeedbackRequest, Transaction
from amlscore.serving.shadow import ShadowItem, ShadowScorer
from amlscore.serving.state import Progress, bind_state, lock_state, rating_window_spec
from amlscore.storage.private import private_dir, restrict_tree

log = logging.getLogger(__name__)
SERVICE_NAME = "amlscore"
_DAY_NS = 86_400 * 1_000_000_000


def split_explanation(expl: dict[str, Any] | None) -> tuple[list[Any] | None, Any]:
    """(LightGBM contributions, anomaly attribution) of an explanation's JSON form (:meth:`Explanation.to_dict`)."""
    if not expl:
        return None, None
    return expl.get("lgbm_contributions"), expl.get("anomaly_attribution")


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
        state_dir = private_dir(settings.state_dir)  # owner-only: see amlscore.storage.private
        # one engine per state folder: two would each count and chain from their own view of it (with the
        # shared backends, the workers share the folder and the servers keep one log and one chain)
        self._folder_lock = None if settings.shared else lock_state(state_dir)
        try:
            self._open(state_dir, loader, warm_up_progress, started)
        except BaseException:
            if self._folder_lock is not None:
                self._folder_lock.release()
            raise

    def _open(self, state_dir: Path, loader: RegistryLoader | None, warm_up_progress: Progress | None,
              started: float) -> None:
        """Load the model set, the online state, the logs and the ratings (``__init__`` holds the folder's lock)."""
        settings = self.settings
        self.loader = loader or (FolderLoader(settings.model_dir, settings.model_name) if settings.model_dir is not None
                                 else RegistryLoader(settings.tracking_uri, settings.model_name, state_dir / "models"))
        self.models = ModelCache(self.loader)

        # 1. the model set first: a bad model fails before the (possibly long) warm-up
        self.model = self._load_model(settings.model_alias, settings.model_version)
        self.rules_config = self.model.model_set.rules_config  # the one the model set was trained with
        self.on_drift_summary: Callable[[dict[str, Any]], None] | None = None  # the service's metrics, if any
        self.drift = DriftWatch.for_model(self.model.model_set, self.model.version, state_dir)
        self.shadow_model = self._load_shadow(self.model)  # AML_SHADOW: refused here when it does not fit

        # 2. the data folder and the online feature state
        dataset = load_dataset(settings.data_dir, require_reports=False)
        report_data_warnings(dataset)
        self.data_fingerprint = dataset.fingerprint
        # over the shared store (which trims its log and rows) the state keeps the rating window's rows itself
        self.state = OnlineFeatureState(dataset.customers, store=backends.feature_store(settings, state_dir),
                                        reports=dataset.reports,
                                        recent_rows=rating_window_spec(self.rules_config) if settings.state_url else None)
        if not settings.state_url:
            bind_state(state_dir, dataset.customers, self.state.params.hash, Path(settings.data_dir))
        self._check_params(self.model)
        self.warmed_up = warm_up(self.state, dataset.transactions, settings.warm_up_days, warm_up_progress)
        self.offset_hours = int(self.state.params.bank_utc_offset_hours)

        # 3. durable logs
        self.audit = backends.audit_log(settings, state_dir)
        self.feedback = backends.feedback_store(settings, state_dir)
        self.shadow: ShadowScorer | None = None
        if self.shadow_model is not None:
            self.shadow = ShadowScorer(self.shadow_model, self.audit, settings.shadow_queue)

        # 4. behaviour over the rating window, from the feature store, and the ratings at start
        self.behaviour = BehaviourLog(self.rules_config)
        self._load_behaviour()
        # with several workers, what the others counted reaches this one's behaviour window too
        self.state.on_event = lambda rec, row: self.behaviour.add(rec["customer_id"], timestamp_ns(rec["timestamp"]),
                                                                   rec.get("counterparty_country"), row)
        self.state.on_customers = lambda rows: self.ratings.upsert(rows, self.behaviour, self.feedback.reports_frame())
        self.state.on_rebuilt = self._after_rebuild
        self.ratings = RatingBook(dataset.customers, dataset.reports, self.rules_config)
        self.ratings.rate_all(self.behaviour, self.feedback.reports_frame())
        self._feature_reports()  # the graph features count the analysts' reports too
        del dataset
        restrict_tree(state_dir)  # what others wrote there with the umask (the model cache)
        self._warm_code_paths()
        if self.shadow is not None:
            self.shadow.start()
        self.ready = True
        log.info("scoring engine ready in %.1f s: model %s v%s, %d customers, %d transactions in the state "
                 "(%d replayed at warm-up), %d decisions in the audit log", time.perf_counter() - started,
                 self.model.name, self.model.version, len(self.customers), self.state.processed, self.warmed_up,
                 self.audit.count())

    @property
    def customers(self) -> pd.DataFrame:
        """The customers table as it stands (the data folder's, plus changes made while serving)."""
        return self.state.customers

    @property
    def registry(self) -> Any:
        return self.state.registry

    # -- loading ------------------------------------------------------------------------------
    def _load_model(self, alias: str | None, version: str | None) -> LoadedModel:
        loaded = self.loader.load(alias=None if version else alias, version=version)
        try:
            loaded.model_set.check_features(list(FEATURE_NAMES))
        except Exception as exc:
            raise SettingsError(f"model {loaded.source} does not match the online features "
                                f"({FEATURE_SET_VERSION}): {exc}") from None
        fset = loaded.model_set.metadata.get("feature_set_version")
        if fset is not None and str(fset) != FEATURE_SET_VERSION:
            raise SettingsError(f"model {loaded.source} was trained on feature set {fset!r}; "
                                f"this service computes {FEATURE_SET_VERSION!r}")
        self.models.put(loaded.version, loaded.model_set)
        return loaded

    def _load_shadow(self, champion: LoadedModel) -> LoadedModel | None:
        """The shadow model set of ``AML_SHADOW`` (None when off), refused unless it reads the champion's feature row.

        The shadow scores the row computed for the champion, so its feature names (in order), feature
        set and feature parameters must be the champion's.
        """
        ref = self.settings.shadow_ref
        if ref is None:
            return None
        alias, version = ref
        shadow = self._load_model(alias, version)
        mine, theirs = champion.model_set, shadow.model_set
        problems = []
        if tuple(theirs.feature_names) != tuple(mine.feature_names):
            problems.append("its feature names (or their order) differ from the champion's")
        for key in ("feature_set_version", "feature_params_hash"):
            a, b = mine.metadata.get(key), theirs.metadata.get(key)
            if a != b:
                problems.append(f"its {key} is {b!r} where the champion's is {a!r}")
        if problems:
            raise SettingsError(f"The 'AML_SHADOW' setting names model {shadow.source} (v{shadow.version}), which "
                                f"cannot score the champion's ({champion.source}) feature row: {'; '.join(problems)}. "
                                "Give a model set trained on the same features and parameters, or leave AML_SHADOW off.")
        return shadow

    def _check_params(self, loaded: LoadedModel) -> None:
        trained = loaded.model_set.metadata.get("feature_params_hash")
        if trained is not None and str(trained) != self.state.params.hash:
            raise SettingsError(f"model {loaded.source} was trained with feature parameters {trained!r}; the online "
                                f"state computes them with {self.state.params.hash!r} (amlscore/features/config/feature_params.yaml)")

    def _load_behaviour(self) -> None:
        """Refill the behaviour window (rows of the last lookback days).

        Over the shared store, from the rows the online state keeps (its snapshot plus the log after
        it: the store itself trims its log and rows). Otherwise only the store's recent events are read
        (:meth:`~features.store.SQLiteFeatureStore.recent_events`), so a start costs the rating window,
        not the whole history the store has kept.
        """
        recent = self.state.recent
        if recent is not None and self.state.recent_complete:
            for cid, t, cp, values in recent.events():
                self.behaviour.add(cid, t, cp, recent.full_row(values))
            return
        rows = list(self.state.store.recent_events(self.behaviour.keep_ns / _DAY_NS))
        if not rows:
            return
        stamps = [timestamp_ns(rec["timestamp"]) for rec, _ in rows]
        limit = max(stamps) - self.behaviour.keep_ns
        for (rec, vec), t in zip(rows, stamps):
            if t >= limit:
                self.behaviour.add(rec["customer_id"], t, rec.get("counterparty_country"), vec)

    def _after_rebuild(self) -> None:
        """The online state was rebuilt from the shared store's snapshot (the worker fell behind the log's
        trim point): the rating window and the ratings are taken again from it."""
        self.behaviour = BehaviourLog(self.rules_config)
        self._load_behaviour()
        self.ratings = RatingBook(self.state.customers, self.ratings.base_reports, self.rules_config)
        self.ratings.rate_all(self.behaviour, self.feedback.reports_frame())

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
        if self.shadow_model is not None:
            self.shadow_model.model_set.score_vector(x)
        for lang in ("en", "zh"):
            ms.explain_vector(x[:1], top_k=self.settings.top_k, lang=lang)
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
            raise with_code(Conflict, "late_transaction", str(exc), channel_message=(
                f"transaction {record['txn_id']!r} is older than the customer's latest processed transaction; "
                "send each customer's transactions in time order (late ones go through the offline path)")) from None
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
                            "content; a txn_id identifies one transaction",
                            channel_message=f"txn_id {record['txn_id']!r} was scored before with different content; "
                                            "give each transaction its own txn_id, and send a scored one unchanged")
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
        rules_fired = fired_rules_json(rule.fired)
        if not (explain and caller.full_view):
            explanation = None
        elif explanation is None:
            explanation = model.model_set.explain_vector(x[None, :], top_k=self.settings.top_k, lang=lang).to_dict()
        request_id = new_ulid()
        decided_at = utc_now_iso()
        score = finite_or_none(scores.suspicion_score[i])
        alert = bool(scores.alert[i])
        if self.drift is not None:
            self.drift.observe(self._bank_day(datetime.fromisoformat(record["timestamp"])).isoformat(), x,
                               (float(scores.suspicion_score[i]), float(scores.rule_score[i]),
                                float(scores.lgbm_probability[i]), float(scores.anomaly_score[i])),
                               alert, str(record.get("channel")), "corporate" if is_corporate else "individual")
        decision: RecordedDecision = {  # plain JSON values only (finite_or_none; the explanation's to_dict)
            "request_id": request_id,
            "txn_id": record["txn_id"],
            "customer_id": cid,
            "suspicion_score": score,
            "alert": alert,
            "decided_at": decided_at,
            "components": components_of(scores, i),
            "alert_threshold": finite_or_none(model.model_set.alert_threshold),
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
        if scores.rules and self.model.model_set.rules_config is self.rules_config:
            return scores.rules[i]
        return score_transaction_rules(x, self.rules_config)

    def _score_one(self, x: np.ndarray, caller: Caller, explain: bool, lang: str) -> tuple[Any, dict[str, Any] | None]:
        """Scores of one feature row and, for a caller who sees it and asks, its explanation, in one pass of
        the model set (``score_and_explain``)."""
        ms = self.model.model_set
        if explain and caller.full_view:
            scores, expl = ms.score_and_explain(x[None, :], top_k=self.settings.top_k, lang=lang)
            return scores, expl.to_dict()
        return ms.score_vector(x[None, :]), None

    def _to_shadow(self, records: list[AuditRecord]) -> None:
        """Hand the decided rows to the shadow's queue (never waits: a full queue drops and counts)."""
        if self.shadow is not None and records:
            self.shadow.offer([ShadowItem(r.request_id, r.txn_id, r.features) for r in records])

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
                self._to_shadow([rec])
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
                try:
                    record = txn.to_record()
                    ihash = input_hash(record)
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
                except Exception:  # noqa: BLE001 - this item fails alone; the ones counted before are still decided
                    log.exception("unexpected failure on item %d (txn_id %r) of batch %s", i, txn.txn_id, batch_id)
                    results[i] = InternalError()
            records = self._decide_pending(pending, results, caller, explain, lang, batch_id)
            if records:
                durable = (self.audit.submit(records),)
                for rec_i in (i for i, *_ in pending if isinstance(results[i], Outcome)):
                    results[rec_i] = dataclasses.replace(results[rec_i], waits=durable)  # type: ignore[arg-type]
            for rec in records:
                self._remember(rec)
            self._to_shadow(records)
            for i, first in duplicates:
                res = results[first]
                results[i] = Outcome(res.record, replayed=True, waits=res.waits) if isinstance(res, Outcome) else res
        if wait:
            for f in wait_all(results):
                f.result()
        return batch_id, results  # type: ignore[return-value]

    def _decide_pending(self, pending: list[tuple[int, dict[str, Any], str, np.ndarray]],
                        results: list[Any], caller: Caller, explain: bool, lang: str,
                        batch_id: str) -> list[AuditRecord]:
        """Decide every counted item of a batch (one model call), filling ``results`` in place.

        Each item the online state counted gets its decision, so the state and the audit log stay
        together item by item: when the model set fails on the stacked rows, each row is scored
        alone, and a row that still fails is answered 500 (counted; sending it again decides it
        from its stored feature row).
        """
        if not pending:
            return []
        records: list[AuditRecord] = []
        try:
            scores = self.model.model_set.score_vector(np.vstack([p[3] for p in pending]))
            rows = [(p, scores, j) for j, p in enumerate(pending)]
        except Exception:  # noqa: BLE001 - fall back to one row at a time
            log.exception("scoring the %d rows of batch %s together failed; scoring them one by one", len(pending), batch_id)
            rows = [(p, None, 0) for p in pending]
        for (i, record, ihash, x), scores, j in rows:
            try:
                if scores is None:
                    scores = self.model.model_set.score_vector(x[None, :])
                rec = self._decide(record, ihash, x, scores, j, caller, explain, lang, "score_batch", batch_id)
            except Exception:  # noqa: BLE001
                log.exception("unexpected failure deciding item %d (txn_id %r) of batch %s", i, record["txn_id"], batch_id)
                results[i] = InternalError()
                continue
            records.append(rec)
            results[i] = Outcome(rec, replayed=False)
        return records

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
            expl = model_set.explain_vector(rec.features[None, :], top_k=self.settings.top_k, lang=lang).to_dict()
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
            history = [{"rating": c.before, "replaced_at": c.recorded_at, "replaced_by": c.caller_key_id}
                       for c in self.feedback.rating_changes(customer_id) if c.before is not None]
            detail = self.ratings.detail(customer_id, lang, history)
        if detail is None:
            raise with_code(NotFound, "not_rated", f"customer {customer_id!r} is not rated: onboarded after the rating "
                                                   f"date {self.ratings.as_of}")
        return detail, refresh

    def upsert_customers(self, rows: list[dict[str, Any]], caller: Caller) -> dict[str, Any]:
        """Add or change customers (contract rows): the online state, the ratings and the data folder's
        customers file take them; with several workers, the others through the shared log. Each change's
        ratings before and after go to the feedback store's rating changes (by this worker only: the
        others apply the change without recording it again)."""
        from amlscore.contract import ContractViolationError, write_customers  # noqa: PLC0415
        from amlscore.features.registry import typed_customers  # noqa: PLC0415

        try:
            typed = typed_customers(rows)
        except ContractViolationError as exc:
            raise InvalidRequest(f"the customers sent break the data contract: {exc}") from None
        with self.lock:
            self._require_ready()
            known = set(self.registry.code_of)
            changed = self.state.upsert_customers(typed)
            ratings = self.ratings.upsert(changed, self.behaviour, self.feedback.reports_frame()) if len(changed) else {}
            at = utc_now_iso()
            self.feedback.record_rating_changes([
                RatingChange(cid, at, caller.key_id, caller.role, r["before"], r["after"]) for cid, r in ratings.items()])
            if len(changed):
                write_customers(self.settings.data_dir, self.customers)  # what the next start and training read
        ids = changed["customer_id"].astype(str).tolist()
        log.warning("customers changed while serving: %d added, %d updated", sum(c not in known for c in ids),
                    sum(c in known for c in ids))
        return json_safe({"added": [c for c in ids if c not in known], "updated": [c for c in ids if c in known],
                          "unchanged": len(typed) - len(ids), "ratings": ratings})

    # -- feedback -------------------------------------------------------------------------------
    def _feature_reports(self) -> None:
        """Give the online features the data folder's reports plus the analysts' (each counts from its
        report_date on); training sees the same once the feedback export joins the data folder."""
        parts = [p for p in (self.ratings.base_reports, self.feedback.reports_frame()) if p is not None and len(p)]
        self.state.set_reports(pd.concat(parts, ignore_index=True) if parts else None)

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
            self._feature_reports()
        return {"report_id": entry.report_id, "request_id": rec.request_id, "txn_id": rec.txn_id,
                "customer_id": rec.customer_id, "label": entry.label, "report_date": entry.report_date,
                "export_file": str(self.feedback.export_file)}

    # -- administration -------------------------------------------------------------------------
    def reload(self, alias: str | None = None, version: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Load another model set (an alias or a version) and serve it from the next request on."""
        if version is None and alias is None:
            alias, version = self.settings.model_alias, self.settings.model_version
        try:
            new = self._load_model(alias, version)
        except NotReady as exc:  # the registry or the download failed: details for the log, not the caller
            what = f"version {version}" if version else f"alias @{alias}"
            log.error("reload of %s failed: %s", what, exc.message)
            raise NotReady(f"The model registry could not provide {what} now; the service goes on with version "
                           f"{self.model.version}. The server log has the details.") from None
        try:  # the shadow must read the new champion's row: refused before anything changes
            shadow = self._load_shadow(new) if self.shadow is not None else None
        except SettingsError as exc:  # the details name the shadow model: for the log, never for a response
            log.error("reload refused: %s", exc)
            raise with_code(Conflict, "shadow_mismatch", "The shadow model set (AML_SHADOW) cannot score the new "
                            "champion's feature rows (different features or feature parameters); the reload is "
                            f"refused and the service goes on with version {self.model.version}. The server log "
                            "has the details.") from None
        restrict_tree(self.settings.state_dir)  # the model cache it may have downloaded into
        self._check_params(new)
        rules = new.model_set.rules_config
        drift = DriftWatch.for_model(new.model_set, new.version, Path(self.settings.state_dir),
                                     on_summary=self.on_drift_summary)
        with self.lock:
            previous = self.model.versions()
            if self.drift is not None:
                self.drift.save()
            self.model = new
            self.rules_config = rules
            self.drift = drift
            if self.shadow is not None and shadow is not None:
                self.shadow_model = shadow
                self.shadow.swap(shadow)
            self._warm_code_paths(model_only=True)
        log.info("reloaded model: %s v%s -> %s v%s", previous["model_name"], previous["model_version"], new.name, new.version)
        return previous, new.versions()

    def observe_drift(self, on_summary: Callable[[dict[str, Any]], None]) -> None:
        """Send the day's drift summary to ``on_summary`` every so many decisions (the service's metrics)."""
        self.on_drift_summary = on_summary
        if self.drift is not None:
            self.drift.on_summary = on_summary

    def drift_summary(self, day: str | None = None) -> dict[str, Any]:
        """The per-day drift figures of the served model set (``POST /v1/admin/drift``)."""
        self._require_ready()
        with self.lock:
            drift, version = self.drift, self.model.version
        if drift is None:
            raise NotReady(f"model version {version} carries no training reference: retrain it to get drift figures")
        return json_safe({"model_version": version, **drift.summary(day)})

    def _require_ready(self) -> None:
        if not self.ready:
            raise NotReady("the scoring engine is not ready")

    def metadata(self) -> dict[str, Any]:
        ms = self.model.model_set
        thresholds = ms.metadata.get("thresholds") or {}
        return json_safe({
            "service": SERVICE_NAME,
            "api_version": "v1",
            "versions": self.model.versions(),
            "model_ref": self.model.source,
            "loaded_at": self.model.loaded_at,
            "alert_threshold": float(ms.alert_threshold),
            "thresholds": dict(thresholds) if isinstance(thresholds, dict) else {"value": thresholds},
            "feature_names": list(ms.feature_names),
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
            if self.drift is not None:
                self.drift.save()
            try:
                if self.shadow is not None:
                    self.shadow.close()  # its last scores go to the audit log before it closes
                self.state.close()
            finally:
                self.audit.close()
                self.feedback.close()
                if self._folder_lock is not None:
                    self._folder_lock.release()
