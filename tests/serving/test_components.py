"""Unit tests of the serving parts that need no running app: settings, keys, errors, words, audit, feedback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amlscore.core.audit import AuditLog, AuditRecord, input_hash, new_ulid
from amlscore.serving.auth import Caller, KeyStore, authorize, ensure_keys_file, hash_key, key_from_headers, write_keys_file
from amlscore.serving.config import Settings, SettingsError
from amlscore.core.decision import json_safe
from amlscore.serving.errors import Forbidden, Unauthorized
from amlscore.serving.feedback import FeedbackStore, make_entry
from amlscore.serving.middleware import rewrite_error
from amlscore.serving.words import peer_comparisons, peer_group_words


# -- settings -----------------------------------------------------------------------------------------
def test_settings_from_env_and_back(tmp_path: Path) -> None:
    env = {"AML_DATA_DIR": str(tmp_path / "d"), "AML_STATE_DIR": str(tmp_path / "s"), "AML_MODEL_VERSION": "7",
           "AML_WARM_UP_DAYS": "all", "MLFLOW_TRACKING_URI": "sqlite:///x.db", "AML_AUDIT_SYNC": "normal"}
    s = Settings.from_env(env)
    assert s.model_version == "7" and s.warm_up_days is None and s.keys_file == tmp_path / "s" / "api_keys.yaml"
    assert s.model_ref == "aml-model-set/7"
    assert Settings.from_env(s.to_env()) == s


@pytest.mark.parametrize("var,value,word", [("AML_WARM_UP_DAYS", "-3", "AML_WARM_UP_DAYS"),
                                            ("AML_AUDIT_SYNC", "sometimes", "AML_AUDIT_SYNC"),
                                            ("AML_MODEL_VERSION", "latest", "AML_MODEL_VERSION"),
                                            ("AML_MAX_BODY_BYTES", "ten", "AML_MAX_BODY_BYTES"),
                                            ("AML_TRACING", "maybe", "AML_TRACING")])
def test_settings_errors_name_the_variable(var: str, value: str, word: str) -> None:
    with pytest.raises(SettingsError, match=word) as exc:
        Settings.from_env({var: value})
    assert repr(value) in str(exc.value)


# -- keys and roles ----------------------------------------------------------------------------------
def test_keys_file_holds_hashes_only(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    created = ensure_keys_file(path)
    assert created is not None and set(created) == {"channel", "compliance", "admin"}
    text = path.read_text()
    assert all(key not in text for key in created.values()) and hash_key(created["admin"]) in text
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_keys_file(path) is None  # never overwritten
    store = KeyStore.load(path)
    assert store.authenticate(created["channel"]) == Caller("dev-channel", "channel")
    with pytest.raises(Unauthorized):
        store.authenticate("wrong")
    with pytest.raises(Unauthorized, match="missing"):
        store.authenticate(None)


def test_json_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    write_keys_file(path, {"gw": ("channel", "k1")})
    assert KeyStore.load(path).authenticate("k1").key_id == "gw"


@pytest.mark.parametrize("doc,match", [
    ({"keys": []}, "non-empty"),
    ({"keys": [{"id": "a", "role": "root", "sha256": "0" * 64}]}, "role"),
    ({"keys": [{"id": "a", "role": "channel", "sha256": "xyz"}]}, "sha256"),
    ({"keys": [{"id": "a b", "role": "channel", "sha256": "0" * 64}]}, "'id'"),
    ({"keys": [{"id": "a", "role": "channel", "sha256": "0" * 64}, {"id": "a", "role": "admin", "sha256": "1" * 64}]}, "unique"),
])
def test_bad_keys_files_are_refused(tmp_path: Path, doc: dict, match: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SettingsError, match=match):
        KeyStore.load(path)


def test_key_headers_and_permissions() -> None:
    assert key_from_headers({"authorization": "Bearer abc"}) == "abc"
    assert key_from_headers({"authorization": "bearer  abc "}) == "abc"
    assert key_from_headers({"x-api-key": "k"}) == "k"
    assert key_from_headers({"authorization": "Basic abc"}) is None
    authorize(Caller("a", "admin"), "/v1/admin/reload")
    authorize(Caller("c", "compliance"), "/v1/explain")
    with pytest.raises(Forbidden, match="compliance"):
        authorize(Caller("ch", "channel"), "/v1/customer_risk")
    with pytest.raises(Forbidden):
        authorize(Caller("c", "compliance"), "/v1/admin/reload")


# -- error shape ---------------------------------------------------------------------------------------
def test_rewrite_error_shapes() -> None:
    bento = json.dumps({"error": "1 validation error for Input", "detail": [
        {"type": "greater_than", "loc": ["transaction", "amount"], "msg": "Input should be greater than 0"}]}).encode()
    out = json.loads(rewrite_error(400, bento))
    assert out["code"] == "invalid_request" and "transaction.amount: Input should be greater than 0" in out["error"]
    assert json.loads(rewrite_error(404, b"Not Found")) == {"error": "Not Found", "code": "not_found", "status": 404}
    assert json.loads(rewrite_error(400, json.dumps([{"error": "boom"}]).encode()))["error"] == "boom"
    ours = json.dumps({"error": "x", "code": "late_transaction", "status": 409}).encode()
    assert rewrite_error(409, ours) == ours


def test_json_safe() -> None:
    assert json_safe({"a": float("nan"), "b": [np.float64(1.5), np.int64(2), np.bool_(True)], "c": np.array([1.0, np.inf])}) == \
        {"a": None, "b": [1.5, 2, True], "c": [1.0, None]}


# -- words ---------------------------------------------------------------------------------------------
def test_peer_comparisons_in_both_languages() -> None:
    f = {"peer_cash_ratio_30d": 4.2, "peer_txn_freq_ratio_30d": 1.0, "amount_vs_own_mean_90d": 3.0,
         "amount_z_own_90d": 2.5, "flow_vs_income_90d": float("nan")}
    en = peer_comparisons(f, "individual|self_employed", "in", False, "en")
    assert en[0] == "Cash over 30 days is 4.2 times the average of individual self-employed customers."
    assert any("own average incoming amount" in s and "+2.5 standard deviations" in s for s in en)
    assert not any("income" in s.lower() and "annualised" in s for s in en)  # NaN: no sentence
    zh = peer_comparisons(f, "corporate|real_estate", "out", True, "zh")
    assert zh[0] == "近30日现金交易额是单位客户（房地产）平均水平的4.2倍。"
    assert peer_group_words("individual|student", "en") == "individual student customers"


# -- audit log -----------------------------------------------------------------------------------------
def _record(i: int) -> AuditRecord:
    rec = {"txn_id": f"T{i}", "amount": 10.0 + i}
    return AuditRecord(request_id=new_ulid(), txn_id=f"T{i}", customer_id="C1", decided_at="2026-01-01T00:00:00Z",
                       caller_key_id="k", caller_role="channel", endpoint="score", batch_id=None,
                       input_hash=input_hash(rec), input=rec, features=np.arange(3.0), suspicion_score=12.5 + i,
                       alert=bool(i % 2), model_name="m", model_version="1", feature_set_version="f",
                       feature_params_hash="p", rules_config_hash="r", decision={"x": i})


def test_audit_log_round_trip_chain_and_tamper_detection(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path, sync="normal")
    recs = [_record(i) for i in range(5)]
    log.append(recs[:2])
    log.append(recs[2:])
    got = log.by_txn("T3")
    assert got is not None and got.request_id == recs[3].request_id and got.alert and np.array_equal(got.features, np.arange(3.0))
    assert set(log.by_txns(["T1", "T4", "nope"])) == {"T1", "T4"}
    assert log.by_request(recs[0].request_id).txn_id == "T0"
    assert log.verify() == (True, 5, None)
    with pytest.raises(sqlite3.IntegrityError):
        log.append([_record(1)])  # the same txn_id twice
    assert log.count() == 5
    log.close()
    reopened = AuditLog(path, sync="normal")  # the chain continues after a restart
    reopened.append([_record(9)])
    assert reopened.verify() == (True, 6, None)
    reopened.close()
    # someone edits a row behind the service's back (dropping the trigger first): the chain shows it
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER decisions_no_update")
    db.execute("UPDATE decisions SET suspicion_score = 0 WHERE txn_id = 'T2'")
    db.commit()
    db.close()
    ok, n, bad = AuditLog(path, sync="normal").verify()
    assert not ok and n == 2 and bad == 3


def test_audit_group_commit_makes_every_write_durable_before_its_future(tmp_path: Path) -> None:
    """Writes queued while a commit runs go into the next one; each future is done only after its commit."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    log = AuditLog(tmp_path / "audit.sqlite", sync="full")
    gate, entered = threading.Event(), threading.Event()
    real_commit = log._commit

    def slow_commit(group):  # the first commit waits (as a slow fsync would) until the test lets it go
        entered.set()
        gate.wait(10)
        real_commit(group)

    log._commit = slow_commit
    observed: list[tuple[float, int]] = []
    log.on_commit = lambda seconds, writes: observed.append((seconds, writes))
    recs = [_record(i) for i in range(40)]
    first = log.submit(recs[:1])
    assert entered.wait(10)
    # queued meanwhile, from several threads: readable at once, not durable yet
    with ThreadPoolExecutor(4) as pool:
        futures = list(pool.map(lambda r: log.submit([r]), recs[1:]))
    assert not first.done() and not any(f.done() for f in futures)
    assert log.by_txn("T7").request_id == recs[7].request_id and log.by_request(recs[9].request_id).txn_id == "T9"
    assert set(log.by_txns(["T3", "T30", "nope"])) == {"T3", "T30"}
    assert log.durable("T7") is futures[6]
    reader = AuditLog(tmp_path / "audit.sqlite", sync="normal")  # another connection sees nothing uncommitted
    assert reader.count() == 0 and reader.by_txn("T7") is None
    log._commit = real_commit
    gate.set()
    assert first.result(10) == 1 and all(f.result(10) == 1 for f in futures)
    assert log.durable("T7") is None and reader.count() == 40
    assert log.commits <= 3  # the 39 queued writes went in at most two commits after the first
    # every commit was reported with its duration and its writes (what /metrics exports)
    assert len(observed) == log.commits and sum(w for _, w in observed) == 40 and all(d > 0 for d, _ in observed)
    assert log.verify() == (True, 40, None)
    reader.close()
    log.close()


def test_a_failing_commit_observer_fails_no_decision(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite", sync="normal")

    def broken(seconds: float, writes: int) -> None:
        raise RuntimeError("exporter down")

    log.on_commit = broken
    assert log.append([_record(1)]) == 1 and log.append([_record(2)]) == 1
    assert log.count() == 2 and log.verify() == (True, 2, None)
    log.close()


def test_audit_failed_write_fails_alone_and_keeps_the_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite", sync="normal")
    log.append([_record(0)])
    gate = __import__("threading").Event()
    real_commit = log._commit
    log._commit = lambda group: (gate.wait(10), real_commit(group))
    blocker = log.submit([_record(1)])
    dup = log.submit([_record(0)])  # the same txn_id again: refused by the database
    ok = log.submit([_record(2)])
    replay = log.submit_replay("R", "T0", "k", "channel", "score")
    log._commit = real_commit
    gate.set()
    assert blocker.result(10) == 1 and ok.result(10) == 1 and replay.result(10) is None
    with pytest.raises(sqlite3.IntegrityError):
        dup.result(10)
    assert log.by_txn("T0").request_id != "" and log.count() == 3 and log.replay_count() == 1
    assert log.verify() == (True, 3, None)
    log.close()
    with pytest.raises(RuntimeError, match="closed"):
        log.submit([_record(5)])


def test_audit_checkpoints_run_outside_the_commits_and_close_truncates_the_wal(tmp_path: Path) -> None:
    """No checkpoint inside a commit (a response waits for its commit); the checkpoint thread keeps the WAL
    from growing with the log, and closing copies it in and truncates it."""
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path, sync="normal")
    log._wal.every, log._wal.max_pages = 20, 50
    assert log._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    big = {"words": "x" * 3000}  # ~1 page per decision
    for block in range(30):  # the thread is woken every 20 writes; each block waits for that pass (a loaded
        passes = log._wal.passes  # machine may not schedule the thread before the writes are all done)
        for i in range(20 * block, 20 * block + 20):
            rec = _record(i)
            log.append([AuditRecord(**{**rec.__dict__, "decision": {**big, "i": i}})])
        assert log._wal.wait_for_pass(passes, timeout=60)
    wal = path.with_name(path.name + "-wal")
    assert log._wal.thread is not None and log._wal.thread.is_alive()
    assert wal.stat().st_size < 400 * 4096, "the WAL kept every commit: no checkpoint ran"
    log.close()
    assert not log._wal.thread.is_alive()
    assert not wal.exists() or wal.stat().st_size == 0
    reopened = AuditLog(path, sync="normal")
    assert reopened.count() == 600 and reopened.verify() == (True, 600, None)
    reopened.close()


def test_tracing_setting() -> None:
    from amlscore.serving.config import bentoml_tracing

    assert bentoml_tracing({}) == {"excluded_urls": ["/"]} == bentoml_tracing({"AML_TRACING": "off"})
    assert bentoml_tracing({"AML_TRACING": "on"}) == {}
    assert Settings.from_env({"AML_TRACING": "on"}).tracing == "on" and Settings.from_env({}).tracing == "off"


def test_ulids_sort_by_time() -> None:
    ids = [new_ulid() for _ in range(3)]
    assert all(len(i) == 26 for i in ids) and len(set(ids)) == 3


# -- feedback ----------------------------------------------------------------------------------------
def test_feedback_export_keeps_the_latest_per_transaction(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.sqlite", tmp_path / "out")

    def entry(label: str, day: str = "2026-01-02") -> object:
        return make_entry(request_id="R1", txn_id="T1", customer_id="C1", txn_day="2026-01-05", label=label,
                          typology="fan_in" if label == "suspicious" else None, analyst="a", note=None, report_date=day,
                          caller_key_id="k", caller_role="compliance", model_version="1", alert=True, score=80.0,
                          transaction_json=json.dumps({"txn_id": "T1", "amount": 5.0}))

    store.record(entry("suspicious"))
    store.record(entry("not_suspicious", "2026-02-01"))
    reports = pd.read_csv(store.export_file, dtype=str, keep_default_na=False)
    assert len(reports) == 1 and reports["label"].item() == "not_suspicious"
    assert reports["report_date"].item() == "2026-02-01"
    assert store.count() == 2
    first = store.latest_frame()
    assert first["report_date"].item() == "2026-02-01"
    # a report date before the transaction's day is moved to that day
    assert entry("suspicious", "2025-12-31").report_date == "2026-01-05"
    typed = store.reports_frame()
    assert typed["report_date"].dtype.kind == "M"
    store.close()


def test_a_version_folder_is_reused_only_for_the_same_run(tmp_path: Path) -> None:
    """A registry made anew numbers its versions from 1 again: its version 1 is another model."""
    from amlscore.core.registry import _COMPLETE, download_run_id, is_download_of

    folder = tmp_path / "aml-model-set" / "1"
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text("artifact_path: model\nrun_id: 0a1b2c\nflavors: {}\n", encoding="utf-8")
    assert not is_download_of(folder, "0a1b2c")  # incomplete download
    (folder / _COMPLETE).write_text("2026-11-23T00:00:00Z\n", encoding="utf-8")
    assert download_run_id(folder) == "0a1b2c"
    assert is_download_of(folder, "0a1b2c") and is_download_of(folder, None)
    assert not is_download_of(folder, "ffeedd")  # same version number, another run: download again


def test_a_failed_download_keeps_the_previous_folder_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    """The reports and the service download through one loader: into a staging folder, then renamed into place."""
    from amlscore.core.registry import _COMPLETE, RegistryLoader, RegistryUnavailable

    class Loader(RegistryLoader):
        run = "run-one"
        fail = False

        def _fetch(self, version: str, dst: Path) -> None:
            dst.mkdir(parents=True)
            (dst / "MLmodel").write_text(f"run_id: {self.run}\n", encoding="utf-8")
            if self.fail:
                raise OSError("connection reset")

    loader = Loader("sqlite:///nowhere.db", "aml-model-set", tmp_path)
    folder = loader.download("1", "run-one")
    assert (folder / _COMPLETE).is_file() and loader.download("1", "run-one") == folder  # reused
    Loader.run, Loader.fail = "run-two", True  # the registry made anew: version 1 is another run, and fails
    with pytest.raises(RegistryUnavailable, match="cannot download models:/aml-model-set/1 .*connection reset"):
        loader.download("1", "run-two")
    assert "run_id: run-one" in (folder / "MLmodel").read_text(encoding="utf-8")
    assert sorted(p.name for p in folder.parent.iterdir()) == ["1"]  # no staging folder left behind
    Loader.fail = False
    assert "run_id: run-two" in (loader.download("1", "run-two") / "MLmodel").read_text(encoding="utf-8")


def test_stall_reporter_names_where_the_event_loop_stalled(caplog) -> None:
    """A loop held until the watchdog reports it is reported once, with the stack that held it, then how
    long it lasted. The loop is held until the report arrives (not for a fixed time), so a loaded machine
    cannot make the watchdog miss it; other stalls a loaded machine causes may be reported beside it."""
    import asyncio
    import logging
    import time

    from amlscore.serving.stalls import StallReporter

    reporter = StallReporter(threshold_ms=40, tick_ms=5)

    def messages() -> list[str]:
        return [r.getMessage() for r in caplog.records]

    def held_at() -> int | None:
        """Where the report naming the held loop is in the log."""
        return next((i for i, m in enumerate(messages())
                     if m.startswith("event loop stalled") and "hold_the_loop_for_a_while" in m), None)

    def hold_the_loop_for_a_while() -> None:
        deadline = time.monotonic() + 120
        while held_at() is None:
            assert time.monotonic() < deadline, "the watchdog never reported the held loop"
            time.sleep(0.01)  # holds the loop, not the GIL: the watchdog thread runs

    def ends_after(i: int) -> list[str]:
        return [m for m in messages()[i + 1:] if m.startswith("event loop stall over")]

    async def main() -> None:
        reporter.ensure_started()
        await asyncio.sleep(0.05)
        hold_the_loop_for_a_while()
        while not ends_after(held_at()):
            await asyncio.sleep(0.01)  # beating again: the watchdog sees the stall end

    with caplog.at_level(logging.WARNING, logger="amlscore.serving.stalls"):
        asyncio.run(asyncio.wait_for(main(), timeout=240))
    reporter.stop()
    held = [m for m in messages() if m.startswith("event loop stalled") and "hold_the_loop_for_a_while" in m]
    assert len(held) == 1, messages()  # once per stall, not once per watchdog tick
    lasted = float(ends_after(held_at())[0].split(": ")[1].split(" ")[0])
    assert lasted >= 40, messages()  # at least the threshold: the report came after it


def test_the_engine_fills_the_rating_window_from_the_recent_events_only(tmp_path: Path) -> None:
    """The behaviour log an engine builds at start from the store's recent events (not its whole history) holds
    exactly the rows a scan of every event keeps: those within the window of the latest transaction."""
    from amlscore.features.events import timestamp_ns
    from amlscore.serving.ratings import BehaviourLog
    from amlscore.serving.scoring import ScoringEngine
    from serving_fakes import FakeLoader
    from amlscore.synth import SynthConfig, generate_bank, write_bank

    data = tmp_path / "data"
    write_bank(generate_bank(SynthConfig(customers=200, days=120, seed=5)), data)
    settings = Settings.from_env({"AML_DATA_DIR": str(data), "AML_STATE_DIR": str(tmp_path / "state"),
                                  "AML_WARM_UP_DAYS": "all", "AML_AUDIT_SYNC": "normal"})
    engine = ScoringEngine(settings, loader=FakeLoader())
    try:
        store = engine.state.store
        every = [(rec, store.get_features(rec["txn_id"])) for _, rec in store.events_after(0)]
        stamps = [timestamp_ns(rec["timestamp"]) for rec, _ in every]
        limit = max(stamps) - engine.behaviour.keep_ns
        assert min(stamps) < limit  # 120 days of history, a 92-day window: the cut matters
        expected = BehaviourLog(engine.rules_config)
        for (rec, vec), t in zip(every, stamps):
            if t >= limit:
                expected.add(rec["customer_id"], t, rec.get("counterparty_country"), vec)

        def rows(log: BehaviourLog) -> dict[str, list[tuple[int, str | None, list[float]]]]:
            return {c: [(t, cp, v.tolist()) for t, cp, v in log.recent.rows_of(c)] for c in log.recent.customers()
                    if log.recent.rows_of(c)}

        assert len(expected) > 0 and rows(engine.behaviour) == rows(expected)
    finally:
        engine.close()
