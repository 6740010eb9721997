"""World variants: validated data, the default world unchanged, each shift doing what it says."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from amlscore.cli import app
from amlscore.contract.load import dataset_from_frames
from amlscore.synth.bank import SyntheticBank, generate_bank
from amlscore.synth.config import DEFAULT_TYPOLOGIES, SynthConfig
from amlscore.synth.variant import (
    DEFAULT_VARIANT,
    NormalShift,
    TypologyShift,
    VariantError,
    WorldVariant,
    load_variant,
    named_variants,
    scale_amounts,
)

BASE = {"customers": 600, "days": 120, "seed": 11}


def _digest(bank: SyntheticBank) -> str:
    h = hashlib.sha256()
    for frame in (bank.customers, bank.transactions, bank.reports, bank.ground_truth):
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def default_bank() -> SyntheticBank:
    return generate_bank(SynthConfig(**BASE))


def _bank(variant: WorldVariant) -> SyntheticBank:
    return generate_bank(SynthConfig(**BASE, variant=variant))


def test_named_variants_load_and_default_is_no_shift() -> None:
    names = named_variants()
    assert {"default", "shifted_normal", "shifted_typologies", "hard"} <= set(names)
    assert names["default"].is_default and load_variant("default") is DEFAULT_VARIANT
    assert not names["hard"].is_default
    assert names["hard"].normal == names["shifted_normal"].normal
    assert names["hard"].typologies == names["shifted_typologies"].typologies


def test_default_variant_writes_the_default_world(default_bank: SyntheticBank) -> None:
    again = _bank(named_variants()["default"])
    assert _digest(again) == _digest(default_bank)
    assert set(default_bank.ground_truth["typology"]) == set(DEFAULT_TYPOLOGIES)


def test_a_variant_is_deterministic_per_seed() -> None:
    hard = named_variants()["hard"]
    assert _digest(_bank(hard)) == _digest(_bank(hard))
    other = generate_bank(SynthConfig(**{**BASE, "seed": 12}, variant=hard))
    assert _digest(other) != _digest(_bank(hard))


def test_unseen_typology_only_when_a_variant_enables_it(default_bank: SyntheticBank) -> None:
    assert "slow_layering" not in set(default_bank.ground_truth["typology"])
    bank = _bank(WorldVariant(name="t", typologies={"slow_layering": TypologyShift(enabled=True)}))
    rows = bank.ground_truth[bank.ground_truth["typology"] == "slow_layering"]
    assert rows["scenario_id"].nunique() >= 3
    assert "slow_layering" in bank.summary()["per_typology"]
    # a hop holds the money for days: consecutive laundering transfers of a scenario are days apart
    tx = bank.transactions.set_index("txn_id").loc[rows["txn_id"]]
    gaps = tx.groupby(rows.set_index("txn_id")["scenario_id"])["timestamp"].agg(lambda t: (t.max() - t.min()).days)
    assert (gaps >= 6).all()
    dataset_from_frames(bank.customers, bank.transactions, bank.reports)  # still meets the contract


def test_typology_shifts_move_amounts_speed_and_channels(default_bank: SyntheticBank) -> None:
    shift = TypologyShift(amount_scale=0.5, speed_scale=3.0, channels={"counter": 1.0})
    bank = _bank(WorldVariant(name="t", typologies={"rapid_pass_through": shift}))

    def rows(b: SyntheticBank) -> pd.DataFrame:
        gt = b.ground_truth[b.ground_truth["typology"] == "rapid_pass_through"]
        return b.transactions[b.transactions["txn_id"].isin(gt["txn_id"])]

    before, after = rows(default_bank), rows(bank)
    assert after["amount"].median() < 0.7 * before["amount"].median()
    span = lambda f: (f["timestamp"].max() - f["timestamp"].min()).total_seconds()  # noqa: E731
    assert span(after) > 1.5 * span(before) or after["timestamp"].max() >= bank.transactions["timestamp"].max()
    transfers = after[after["txn_type"] == "transfer"]
    assert (transfers["channel"].astype(str) == "counter").mean() > 0.9
    assert before["channel"].astype(str).isin(["online_banking", "mobile_banking"]).mean() > 0.5
    dataset_from_frames(bank.customers, bank.transactions, bank.reports)


def test_normal_shifts_change_legitimate_behaviour(default_bank: SyntheticBank) -> None:
    normal = NormalShift(amount_scale=2.0, activity_scale=1.5, cash_heavy_share=0.05, travel_abroad_share=0.3,
                         time_shift_share=0.5, time_shift_hours=6)
    bank = _bank(WorldVariant(name="t", normal=normal))

    def legit(b: SyntheticBank) -> pd.DataFrame:
        return b.transactions[~b.transactions["txn_id"].isin(b.ground_truth["txn_id"])]

    before, after = legit(default_bank), legit(bank)
    assert len(after) > 1.3 * len(before)
    assert after["amount"].median() > 1.6 * before["amount"].median()
    abroad = lambda f: (f["ip_country"].astype(str).replace("<NA>", "CN").fillna("CN") != "CN").mean()  # noqa: E731
    assert abroad(after) > abroad(before)
    dataset_from_frames(bank.customers, bank.transactions, bank.reports)


def test_cash_heavy_people_bring_large_cash_to_the_counter(default_bank: SyntheticBank) -> None:
    bank = _bank(WorldVariant(name="t", normal=NormalShift(cash_heavy_share=0.1)))

    def big_cash_of_people(b: SyntheticBank) -> int:
        t = b.transactions[~b.transactions["txn_id"].isin(b.ground_truth["txn_id"])]
        people = set(b.customers.loc[b.customers["customer_type"] == "individual", "customer_id"])
        cash = t["txn_type"].isin(["cash_deposit", "cash_withdrawal"]) & t["amount"].between(10_000, 49_900)
        return int((cash & t["customer_id"].isin(people)).sum())

    assert big_cash_of_people(bank) > 2 * big_cash_of_people(default_bank) + 50


def test_scale_amounts_keeps_the_typed_unit() -> None:
    fen = np.array([100_000, 12_345, 5_000, 7], dtype=np.int64)  # 1,000 CNY; 123.45; 50; 0.07
    out = scale_amounts(fen, 1.37)
    assert out[0] % 100_000 == 0 and out[2] % 1_000 == 0
    assert out[1] == round(12_345 * 1.37) and out[3] == round(7 * 1.37)
    assert (scale_amounts(fen, 1.0) == fen).all()


@pytest.mark.parametrize(("raw", "words"), [
    ({"normal": {"amount_scale": -1}}, ["'normal.amount_scale'", "greater than 0.05", "-1"]),
    ({"normal": {"amount_scael": 2}}, ["'normal.amount_scael'", "extra inputs"]),
    ({"typologies": {"smurfing": {}}}, ["'typologies'", "unknown typology 'smurfing'", "structuring"]),
    ({"typologies": {"fan_in": {"channels": {"pos": 1}}}}, ["'typologies.fan_in.channels.pos", "online_banking"]),
])
def test_variant_errors_name_the_key_the_rule_and_the_value(tmp_path: Path, raw: dict, words: list[str]) -> None:
    import yaml

    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(VariantError) as err:
        load_variant(path)
    for w in words:
        assert w.lower() in str(err.value).lower(), str(err.value)


def test_generate_command_takes_a_variant(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["generate", "--out", str(tmp_path / "x"), "--variant", "nosuch", "--customers", "300",
                              "--days", "60"])
    assert bad.exit_code != 0
    assert "nosuch" in str(bad.exception or bad.output)
    ok = runner.invoke(app, ["generate", "--out", str(tmp_path / "b"), "--variant", "shifted_typologies",
                             "--customers", "600", "--days", "90", "--seed", "2"])
    assert ok.exit_code == 0, ok.output
    gt = pd.read_csv(tmp_path / "b" / "ground_truth.csv")
    assert "slow_layering" in set(gt["typology"])
