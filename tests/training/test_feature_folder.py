"""Training on features computed elsewhere (``amlscore train --features FOLDER``): the folder is checked
against the data, the feature parameters and the reports before a single row is used."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from amlscore.contract import load_dataset
from amlscore.features.feature_folder import FeatureFolderError, folder_manifest, read_feature_folder, write_manifest
from amlscore.features.offline import build_features
from amlscore.features.params import load_feature_params


@pytest.fixture(scope="module")
def dataset(bank_dir):
    return load_dataset(bank_dir)


@pytest.fixture(scope="module")
def local(dataset):
    return build_features(dataset)


@pytest.fixture()
def folder(tmp_path, dataset, local):
    """A feature folder as the Spark engine leaves it: part files in no particular order, and the manifest."""
    out = tmp_path / "features"
    out.mkdir()
    shuffled = local.sample(frac=1.0, random_state=0)
    half = len(shuffled) // 2
    shuffled.iloc[:half].to_parquet(out / "part-00000.parquet", index=False)
    shuffled.iloc[half:].to_parquet(out / "part-00001.parquet", index=False)
    write_manifest(out, folder_manifest(len(local), dataset, load_feature_params()))
    return out


def test_prepare_uses_the_folder_and_gets_what_it_would_compute(bank_dir, folder, local):
    from amlscore.training.train import TrainConfig, prepare

    prepared = prepare(TrainConfig(data=bank_dir, features=folder))
    pd.testing.assert_frame_equal(prepared.features, local)


@pytest.mark.parametrize("key, message", [
    ("data_fingerprint", "another data folder"),
    ("feature_params_hash", "other feature parameters"),
    ("reports_digest", "other reports"),
])
def test_a_folder_of_other_inputs_is_refused(folder, dataset, key, message):
    manifest = json.loads((folder / "_amlscore_features.json").read_text())
    manifest[key] = "0" * 16
    write_manifest(folder, manifest)
    with pytest.raises(FeatureFolderError, match=message):
        read_feature_folder(folder, dataset, load_feature_params())


def test_a_folder_missing_rows_or_the_manifest_is_refused(folder, dataset):
    (folder / "part-00001.parquet").unlink()
    with pytest.raises(FeatureFolderError, match="feature rows for"):
        read_feature_folder(folder, dataset, load_feature_params())
    (folder / "_amlscore_features.json").unlink()
    with pytest.raises(FeatureFolderError, match="no _amlscore_features.json"):
        read_feature_folder(folder, dataset, load_feature_params())
