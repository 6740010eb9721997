"""The model set opened lazily, the registry resolution remembered, and the scores and explanations kept
in the case store (amlscore.reports.sources, amlscore.reports.model_cache): same reports, fewer seconds, never stale."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from amlscore.reports import build_case, write_case_report
from amlscore.reports.case_facts import explanation_facts
from amlscore.reports.case_types import ModelInfo
from amlscore.reports.model_cache import (
    cached_explanation,
    cached_scores,
    explain_path,
    explanation_numbers,
    model_key,
    model_scores,
    prepare_model,
)
from amlscore.core.registry import _COMPLETE, RESOLVED_SUFFIX
from amlscore.reports.sources import (
    LazyModelSet,
    SourceError,
    load_model_dir,
    load_registered_model,
)

GENERATED = re.compile(r"(Generated|生成时间) [^<]*? UTC")


def _lazy(folder: Path) -> ModelInfo:
    return load_model_dir(folder)


def _eager(folder: Path) -> ModelInfo:
    from amlscore.models.model_set import ModelSet

    ms = ModelSet.load(folder)
    return ModelInfo(model_set=ms, name=ms.metadata.get("model_name") or folder.name, version=ms.metadata.get("model_version"))


def _alert_txns(store, model: ModelInfo, n: int = 3) -> list[str]:
    from amlscore.reports.alerts import list_alerts

    alerts = list_alerts(store, model=model, limit=None)
    assert len(alerts) >= 1
    picks = np.linspace(0, len(alerts) - 1, min(n, len(alerts))).round().astype(int)
    return alerts["txn_id"].iloc[picks].astype(str).tolist()


@pytest.fixture()
def model_copy(tmp_path, model_dir) -> Path:
    """The saved model set, copied (each test keeps its own caches)."""
    dst = tmp_path / "model"
    shutil.copytree(model_dir, dst)
    return dst / "artifacts" / "model_set"


@pytest.fixture()
def fresh_store(tmp_path, bank_dir, store):
    """The session's case store copied, so that model caches written by one test do not reach another."""
    from amlscore.reports.store import CaseStore

    root = tmp_path / "store"
    shutil.copytree(store.root, root, ignore=shutil.ignore_patterns("scores-*", "explain-*"))
    return CaseStore.open(bank_dir, root)


def test_lazy_model_set_reads_the_manifest_and_loads_the_estimators_on_first_use(model_copy):
    from amlscore.models.model_set import ModelSet

    lazy = LazyModelSet(model_copy)
    real = ModelSet.load(model_copy)
    assert not lazy.is_loaded
    assert lazy.alert_threshold == real.alert_threshold
    assert lazy.feature_names == real.feature_names
    assert lazy.metadata == real.metadata
    assert lazy.rules_config.hash == real.rules_config.hash
    assert not lazy.is_loaded  # all of the above without the estimators
    x = np.zeros((1, len(lazy.feature_names)))
    assert lazy.explain_vector(x, top_k=5).to_dict() == real.explain_vector(x, top_k=5).to_dict()
    assert lazy.is_loaded
    # the folder of a download works too, and an altered file is refused
    assert LazyModelSet(model_copy.parent.parent).content_hash == lazy.content_hash
    (model_copy / "lgbm.txt").write_text("altered", encoding="utf-8")
    with pytest.raises(SourceError, match="altered"):
        LazyModelSet(model_copy)


def test_reports_from_the_kept_answers_equal_reports_from_the_model(tmp_path, bank_dir, fresh_store, model_copy):
    eager = _eager(model_copy)
    txns = _alert_txns(fresh_store, eager)
    lazy = _lazy(model_copy)
    done = prepare_model(fresh_store, lazy)
    assert done["alerts"] >= len(txns) and done["explained"] == done["alerts"]
    assert explain_path(fresh_store, lazy).is_file()
    lazy = _lazy(model_copy)  # a new process: nothing loaded
    for lang in ("en", "zh"):
        for txn in txns:
            a, b = tmp_path / f"a_{txn}_{lang}.html", tmp_path / f"b_{txn}_{lang}.html"
            fa = write_case_report(a, bank_dir, txn=txn, model=eager, store=fresh_store, lang=lang)
            fb = write_case_report(b, bank_dir, txn=txn, model=lazy, store=fresh_store, lang=lang)
            assert fa.score == fb.score and fa.rating == fb.rating and fa.versions.extra == fb.versions.extra
            assert fa.transactions.equals(fb.transactions)
            ha, hb = (GENERATED.sub("", p.read_text(encoding="utf-8")) for p in (a, b))
            assert ha == hb
    assert not lazy.model_set.is_loaded  # every answer came from the store


def test_a_missing_explanation_is_computed_once_and_kept(fresh_store, model_copy):
    lazy = _lazy(model_copy)
    scores = model_scores(fresh_store, lazy)  # scores only, no explanations
    txn = str(scores.loc[scores["suspicion_score"].idxmax(), "txn_id"])
    assert not explain_path(fresh_store, lazy).exists()
    build_case(fresh_store.data, txn=txn, model=lazy, store=fresh_store)
    assert lazy.model_set.is_loaded and explain_path(fresh_store, lazy).is_file()
    again = _lazy(model_copy)
    facts = build_case(fresh_store.data, txn=txn, model=again, store=fresh_store)
    assert not again.model_set.is_loaded and facts.score.attributions


def test_the_kept_explanation_is_all_a_report_reads(fresh_store, model_copy):
    from amlscore.features.catalogue import FEATURE_NAMES

    ms = LazyModelSet(model_copy)
    feats = fresh_store.table("features").head(50)
    for i in (0, 17, 42):
        x = feats[list(FEATURE_NAMES)].iloc[[i]].to_numpy(dtype=float)
        values = dict(zip(FEATURE_NAMES, x[0].tolist()))
        for lang in ("en", "zh"):
            full = ms.explain_vector(x, top_k=10, lang=lang).to_dict()
            kept = json.loads(json.dumps(explanation_numbers(ms.explain_vector(x, top_k=10, lang="en").to_dict())))
            assert explanation_facts(full, values, lang) == explanation_facts(kept, values, lang)


def test_kept_answers_belong_to_one_model_content(tmp_path, fresh_store, model_copy):
    lazy = ModelInfo(model_set=LazyModelSet(model_copy), name="aml-model-set", version="7")
    prepare_model(fresh_store, lazy)
    customer = str(fresh_store.table("rules", ["customer_id"])["customer_id"].iat[0])
    ids = fresh_store.features(customer, columns=["txn_id"])["txn_id"]
    assert cached_scores(fresh_store, lazy, customer, ids) is not None
    # the same name and version with another content (a registry trained again): another key, nothing found
    other = tmp_path / "other" / "model_set"
    shutil.copytree(model_copy, other)
    manifest = json.loads((other / "model_set.json").read_text(encoding="utf-8"))
    manifest["thresholds"]["alert_threshold"] = float(manifest["thresholds"]["alert_threshold"]) + 1.0
    (other / "model_set.json").write_text(json.dumps(manifest), encoding="utf-8")
    second = ModelInfo(model_set=LazyModelSet(other), name=lazy.name, version=lazy.version)
    assert model_key(second) != model_key(lazy) and model_key(second).startswith(f"{lazy.name}-v{lazy.version}-")
    assert cached_scores(fresh_store, second, customer, ids) is None
    x = np.zeros((1, len(second.model_set.feature_names)))
    assert cached_explanation(fresh_store, second, x, 10) is None
    # a model set handed in by a caller (no content hash) is always asked
    plain = _eager(model_copy)
    assert cached_scores(fresh_store, plain, customer, ids) is None
    # a transaction the batch scores do not hold: no partial answer
    assert cached_scores(fresh_store, lazy, customer, list(ids) + ["NOT-A-TXN"]) is None


# -- the registry: resolution remembered while the SQLite file is unchanged ---------------------
@pytest.fixture()
def registry(tmp_path, model_dir, monkeypatch):
    """A stand-in SQLite registry file, a download cache holding version 1, and MLflow replaced by counters."""
    import amlscore.core.registry

    db = tmp_path / "mlflow.db"
    db.write_bytes(b"registry v1")
    cache = tmp_path / "state" / "models"
    shutil.copytree(model_dir, cache / "aml-model-set" / "1")
    (cache / "aml-model-set" / "1" / _COMPLETE).write_text("done\n", encoding="utf-8")
    calls = {"resolve": 0, "download": []}
    answer = {"version": "1", "run_id": "run-one"}

    def resolve(self, alias=None, version=None):  # noqa: ANN001, ANN202
        calls["resolve"] += 1
        return answer["version"], answer["run_id"]

    def fetch(self, version, dst):  # noqa: ANN001, ANN202 - MLflow's download into a new folder
        calls["download"].append(version)
        shutil.copytree(model_dir, dst)
        (dst / "MLmodel").write_text(f"run_id: {answer['run_id']}\n", encoding="utf-8")

    monkeypatch.setattr(amlscore.core.registry.RegistryLoader, "resolve", resolve)
    monkeypatch.setattr(amlscore.core.registry.RegistryLoader, "_fetch", fetch)
    return {"uri": f"sqlite:///{db}", "db": db, "cache": cache, "calls": calls, "answer": answer}


def test_the_resolution_is_remembered_until_the_registry_changes(registry):
    uri, cache, calls = registry["uri"], registry["cache"], registry["calls"]
    m = load_registered_model(alias="champion", tracking_uri=uri, cache_dir=cache)
    assert (m.version, m.run_id, m.alias) == ("1", "run-one", "champion") and calls["resolve"] == 1
    assert m.model_set.metadata["model_version"] == "1" and not m.model_set.is_loaded
    load_registered_model(alias="champion", tracking_uri=uri, cache_dir=cache)
    load_registered_model(version="1", tracking_uri=uri, cache_dir=cache)  # learnt with the alias
    assert calls["resolve"] == 1 and not calls["download"]
    assert (cache / f"aml-model-set{RESOLVED_SUFFIX}").is_file()
    # a write to the registry (training, promotion): asked again
    registry["db"].write_bytes(b"registry v1, promoted")
    os.utime(registry["db"], ns=(1, 1))
    load_registered_model(alias="champion", tracking_uri=uri, cache_dir=cache)
    assert calls["resolve"] == 2


def test_a_download_of_another_registry_under_the_same_version_is_replaced(registry):
    uri, cache, calls = registry["uri"], registry["cache"], registry["calls"]
    registry["answer"]["run_id"] = "run-two"  # the registry was deleted and trained again: version 1 is another run
    m = load_registered_model(alias="champion", tracking_uri=uri, cache_dir=cache)
    assert calls["download"] == ["1"] and m.run_id == "run-two"
    assert "run_id: run-two" in (cache / "aml-model-set" / "1" / "MLmodel").read_text(encoding="utf-8")
    load_registered_model(alias="champion", tracking_uri=uri, cache_dir=cache)
    assert calls["download"] == ["1"]


def test_without_a_registry_file_a_downloaded_version_is_used_and_an_alias_is_refused(registry, tmp_path):
    cache = registry["cache"]
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    m = load_registered_model(version="1", tracking_uri=missing, cache_dir=cache)
    assert m.version == "1" and m.run_id == "run-one" and registry["calls"]["resolve"] == 0
    with pytest.raises(SourceError, match="no MLflow store"):
        load_registered_model(alias="champion", tracking_uri=missing, cache_dir=cache)
    assert not (tmp_path / "none.db").exists()


def test_case_store_is_rebuilt_when_the_feature_code_or_configuration_changed(fresh_store, bank_dir):
    """Feature rows and rule scores are kept in the store: new code or configuration makes them stale."""
    import json

    from amlscore.reports.store import CaseStore, features_code_hash

    meta_path = fresh_store.root / "store.json"
    assert fresh_store.meta["features_code_hash"] == features_code_hash()
    same = CaseStore.open(bank_dir, fresh_store.root)
    assert same.meta["built_at"] == fresh_store.meta["built_at"]  # current: reused as it is
    for key in ("features_code_hash", "feature_params_hash", "rules_config_hash"):
        stale = dict(fresh_store.meta, **{key: "0" * 64, "built_at": "stale"})
        meta_path.write_text(json.dumps(stale), encoding="utf-8")
        reopened = CaseStore.open(bank_dir, fresh_store.root)
        assert reopened.meta["built_at"] != "stale", key
        assert reopened.meta[key] == fresh_store.meta[key]


def test_the_caches_are_keyed_by_the_code_of_the_amlscore_packages():
    """The store's rows and the kept answers are derived by amlscore.features and amlscore.models: their code names them."""
    import hashlib

    from amlscore.reports.files import package_code_hash
    from amlscore.reports.model_cache import scoring_code_hash
    from amlscore.reports.store import features_code_hash

    nothing = hashlib.sha256().hexdigest()
    assert features_code_hash() == package_code_hash("amlscore.features") != nothing
    assert package_code_hash("amlscore.models") != nothing and scoring_code_hash() != package_code_hash("amlscore.models")
