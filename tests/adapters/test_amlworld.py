"""AMLworld: the shared HI-Small sample, the patterns file, --bank, conversion tables, bad input."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amlscore.adapters import import_data
from amlscore.adapters.amlworld import PAYMENT_FORMATS, read_patterns
from amlscore.adapters.currency import AMLWORLD_CURRENCIES, CNY_PER_UNIT
from amlscore.adapters.errors import SourceFormatError
from amlscore.contract.load import load_dataset
from adapter_sources import AMLWORLD_HEADER, AMLWORLD_PATTERNS, AMLWORLD_SAMPLE, shared


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))[1:]


@pytest.fixture(scope="module")
def sample_all(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("aw") / "all"
    import_data("amlworld", shared(AMLWORLD_SAMPLE), out, patterns=shared(AMLWORLD_PATTERNS), seed=3,
                block_bytes=16_000)
    return out


def test_sample_all_banks_meets_the_contract_with_two_rows_per_payment(sample_all: Path) -> None:
    data = load_dataset(sample_all)
    src = _rows(AMLWORLD_SAMPLE)
    tx = data.transactions
    assert len(tx) == 2 * len(src)
    assert (tx["direction"].astype(str) == "out").sum() == len(src)
    truth = pd.read_csv(sample_all / "ground_truth.csv")
    assert len(truth) == 2 * sum(r[10] == "1" for r in src)
    assert set(truth["txn_id"]) <= set(tx["txn_id"].astype(str))
    assert list(truth.columns) == ["txn_id", "customer_id", "typology", "scenario_id", "reported"]


def test_each_row_converts_at_the_fixed_rate_and_keeps_its_original(sample_all: Path) -> None:
    tx = pd.read_parquet(sample_all / "transactions.parquet").set_index("txn_id")
    for line, row in enumerate(_rows(AMLWORLD_SAMPLE), start=2):
        out, inn = tx.loc[f"AW{line}.o"], tx.loc[f"AW{line}.i"]
        rate_paid = CNY_PER_UNIT[AMLWORLD_CURRENCIES[row[8]]]
        assert out["amount"] == pytest.approx(float(row[7]) * rate_paid)
        assert (out["original_amount"], out["original_currency"]) == (float(row[7]), row[8])
        assert (inn["original_amount"], inn["original_currency"]) == (float(row[5]), row[6])
        channel, type_out, type_in = PAYMENT_FORMATS[row[9]]
        assert (out["channel"], out["txn_type"], inn["txn_type"]) == (channel, type_out, type_in)
        assert out["counterparty_account"] == inn["customer_id"] and inn["counterparty_id"] == out["customer_id"]
        assert out["timestamp"] == inn["timestamp"]


def test_times_are_bank_local_and_banks_compare_as_numbers(sample_all: Path) -> None:
    tx = pd.read_parquet(sample_all / "transactions.parquet").set_index("txn_id")
    first = _rows(AMLWORLD_SAMPLE)[0]  # 2022/09/01 00:09 from bank 014433
    assert tx.loc["AW2.o", "timestamp"] == pd.Timestamp("2022-08-31T16:09:00Z")
    assert tx.loc["AW2.o", "customer_id"] == f"{int(first[1])}-{first[2]}"


def test_card_payees_are_corporate_and_pos_rows_name_a_terminal(sample_all: Path) -> None:
    tx = pd.read_parquet(sample_all / "transactions.parquet")
    customers = pd.read_parquet(sample_all / "customers.parquet").set_index("customer_id")
    pos = tx[tx["channel"] == "pos"]
    assert pos["terminal_id"].notna().all() and tx.loc[tx["channel"] != "pos", "terminal_id"].isna().all()
    merchants = pos.loc[pos["direction"] == "in", "customer_id"].unique()
    assert (customers.loc[merchants, "customer_type"] == "corporate").all()
    assert customers["occupation_or_industry"].eq("other").all() and customers["is_pep"].isna().all()


def test_one_bank_keeps_its_own_side_and_names_the_other_by_account(tmp_path: Path) -> None:
    out = tmp_path / "b70"
    import_data("amlworld", shared(AMLWORLD_SAMPLE), out, bank="0070")
    data = load_dataset(out)
    src = _rows(AMLWORLD_SAMPLE)
    n_out, n_in = sum(int(r[1]) == 70 for r in src), sum(int(r[3]) == 70 for r in src)
    tx = data.transactions
    assert ((tx["direction"].astype(str) == "out").sum(), (tx["direction"].astype(str) == "in").sum()) == (n_out, n_in)
    assert tx["customer_id"].astype(str).str.startswith("70-").all()
    external = ~tx["counterparty_account"].astype(str).str.startswith("70-")
    assert tx.loc[external, "counterparty_id"].isna().all()
    assert tx.loc[~external, "counterparty_id"].notna().all()


def test_unknown_bank_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(SourceFormatError, match="no payment from or to bank 99999999"):
        import_data("amlworld", shared(AMLWORLD_SAMPLE), tmp_path / "x", bank="99999999")
    assert list(tmp_path.iterdir()) == []


def test_patterns_file_is_parsed_into_attempts_and_typologies() -> None:
    patterns = read_patterns(shared(AMLWORLD_PATTERNS))
    assert patterns.attempts == 8
    assert len(patterns.by_row) == 74
    assert {t for t, _ in patterns.by_row.values()} == {
        "bipartite", "stack", "scatter_gather", "fan_out", "gather_scatter", "cycle", "fan_in", "random"}


def test_laundering_rows_found_in_the_patterns_get_their_typology(write_text, tmp_path: Path) -> None:
    pattern_rows = [line for line in shared(AMLWORLD_PATTERNS).read_text().splitlines() if line[:2] == "20"]
    stack = [r for r in pattern_rows if r.startswith("2022/09/02 11:44")]
    src = write_text("t.csv", "\n".join([AMLWORLD_HEADER, *stack,
                                         "2022/09/02 11:45,011,800000001,012,800000002,10.0,Euro,10.0,Euro,ACH,1"]) + "\n")
    import_data("amlworld", src, tmp_path / "o", patterns=AMLWORLD_PATTERNS)
    truth = pd.read_csv(tmp_path / "o" / "ground_truth.csv").set_index("txn_id")
    assert truth.loc["AW2.o", "typology"] == "stack" and truth.loc["AW2.o", "scenario_id"] == "AW000002"
    assert truth.loc["AW3.o", "typology"] == "unknown" and pd.isna(truth.loc["AW3.o", "scenario_id"])


def test_same_seed_same_files_and_blocks_do_not_matter(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    import_data("amlworld", shared(AMLWORLD_SAMPLE), a, seed=5, out_format="csv", block_bytes=8_000)
    import_data("amlworld", AMLWORLD_SAMPLE, b, seed=5, out_format="csv")
    import_data("amlworld", AMLWORLD_SAMPLE, c, seed=6, out_format="csv")
    for name in ("customers.csv", "reports.csv", "ground_truth.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    ta, tb = (pd.read_csv(p / "transactions.csv").sort_values("txn_id").reset_index(drop=True) for p in (a, b))
    pd.testing.assert_frame_equal(ta, tb)
    assert (a / "reports.csv").read_bytes() != (c / "reports.csv").read_bytes()


GOOD = "2022/09/01 00:09,014433,801CA7940,004523,8119D8750,51.43,US Dollar,51.43,US Dollar,Credit Card,0"


@pytest.mark.parametrize(("row", "line", "column", "words"), [
    ("2022/09/01 00:10,1,A,2,B,5.0,Dollar,5.0,US Dollar,ACH,0", 3, "Receiving Currency", "unknown currency"),
    ("2022/09/01 00:10,1,A,2,B,5.0,Euro,5.0,Euro,Paypal,0", 3, "Payment Format", "unknown payment format"),
    ("2022-09-01 00:10,1,A,2,B,5.0,Euro,5.0,Euro,ACH,0", 3, "Timestamp", "unparsable time"),
    ("2022/09/01 00:10,1,A,2,B,five,Euro,5.0,Euro,ACH,0", 3, "Amount Received", "not a number"),
    ("2022/09/01 00:10,1,A,2,B,-5.0,Euro,5.0,Euro,ACH,0", 3, "Amount Received", "negative amount"),
    ("2022/09/01 00:10,1,A,2,B,5.0,Euro,5.0,Euro,ACH,yes", 3, "Is Laundering", "unknown label"),
])
def test_bad_value_names_file_line_column_and_writes_nothing(write_text, tmp_path: Path, row: str, line: int,
                                                             column: str, words: str) -> None:
    src = write_text("src/bad.csv", "\n".join([AMLWORLD_HEADER, GOOD, row]) + "\n")
    with pytest.raises(SourceFormatError) as info:
        import_data("amlworld", src, tmp_path / "out")
    message = str(info.value)
    assert f"{src}, line {line}, column '{column}'" in message and words in message and "expected" in message
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src"]  # no staging folder left behind


def test_a_row_with_missing_fields_is_named_by_its_line(write_text, tmp_path: Path) -> None:
    src = write_text("short.csv", "\n".join([AMLWORLD_HEADER, GOOD, GOOD, GOOD.rsplit(",", 1)[0], GOOD]) + "\n")
    with pytest.raises(SourceFormatError, match="short.csv, line 4: wrong number of fields; expected 11 fields, "
                                                "got '10 fields'"):
        import_data("amlworld", src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_wrong_header_is_refused(write_text, tmp_path: Path) -> None:
    src = write_text("bad.csv", AMLWORLD_HEADER.replace("Amount Paid", "Paid") + "\n" + GOOD + "\n")
    with pytest.raises(SourceFormatError, match=r"line 1: wrong header \(column 8 differs\); expected Timestamp"):
        import_data("amlworld", src, tmp_path / "out")


def test_zero_amounts_are_left_out_and_counted(write_text, tmp_path: Path) -> None:
    src = write_text("z.csv", "\n".join([AMLWORLD_HEADER, GOOD,
                                         "2022/09/01 00:10,1,A,2,B,0.0,Euro,0.0,Euro,ACH,0"]) + "\n")
    s = import_data("amlworld", src, tmp_path / "o")
    assert (s.source_rows, s.skipped_rows, s.transactions) == (2, 1, 2)
    assert "1 payments of amount 0" in s.notes[0]


def test_a_failed_import_leaves_an_earlier_data_set_as_it_was(write_text, tmp_path: Path) -> None:
    good = write_text("g.csv", AMLWORLD_HEADER + "\n" + GOOD + "\n")
    bad = write_text("b.csv", AMLWORLD_HEADER + "\n" + GOOD.replace("US Dollar", "Dollar") + "\n")
    import_data("amlworld", good, tmp_path / "o")
    before = {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir()}
    with pytest.raises(SourceFormatError):
        import_data("amlworld", bad, tmp_path / "o")
    assert {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir()} == before
    assert np.array_equal(sorted(p.name for p in tmp_path.iterdir()), ["b.csv", "g.csv", "o"])


@pytest.mark.parametrize(("text", "words"), [
    (f"{GOOD}\n", "line 1: a row outside a laundering attempt"),
    ("BEGIN LAUNDERING ATTEMPT - CYCLE\n" + GOOD + "\n", "the last laundering attempt (CYCLE) has no END line"),
    ("BEGIN LAUNDERING ATTEMPT - CYCLE\nBEGIN LAUNDERING ATTEMPT - STACK\n", "line 2: a laundering attempt begins"),
    ("BEGIN LAUNDERING ATTEMPT - CYCLE\n2022/09/01 00:09,1,A\nEND LAUNDERING ATTEMPT - CYCLE\n",
     "line 2: 3 fields; expected 11 fields"),
])
def test_malformed_patterns_file_is_refused_before_anything_is_written(write_text, tmp_path: Path, text: str,
                                                                      words: str) -> None:
    src = write_text("t.csv", AMLWORLD_HEADER + "\n" + GOOD + "\n")
    patterns = write_text("p.txt", text)
    with pytest.raises(SourceFormatError, match=re.escape(words)):
        import_data("amlworld", src, tmp_path / "o", patterns=patterns)
    assert not (tmp_path / "o").exists()
