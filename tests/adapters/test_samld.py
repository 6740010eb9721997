"""SAML-D: UK accounts are the customers, foreign sides external with their country; bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from amlscore.adapters import import_data
from amlscore.adapters.currency import CNY_PER_UNIT
from amlscore.adapters.errors import SourceFormatError
from amlscore.contract.load import load_dataset
from adapter_sources import SAMLD_HEADER

ROWS = [
    "10:35:19,2022-10-07,8724731955,2769355426,1459.15,UK pounds,UK pounds,UK,UK,Cash Deposit,0,Normal_Cash_Deposits",
    "10:35:20,2022-10-07,1491989064,8401255335,6019.64,UK pounds,Dirham,UK,UAE,Cross-border,0,Normal_Fan_Out",
    "10:35:20,2022-10-07,287305149,4404767002,14328.44,UK pounds,UK pounds,UK,UK,Cheque,1,Structuring",
    "10:36:20,2022-10-08,287305149,4404767002,100.00,UK pounds,UK pounds,UK,UK,Debit card,1,Stacked Bipartite",
    "11:00:00,2022-10-08,5550001,287305149,300.00,Euro,UK pounds,Spain,UK,Cross-border,1,Layered_Fan_In",
]


def test_saml_d_meets_the_contract(write_text, tmp_path: Path) -> None:
    src = write_text("s.csv", "\n".join([SAMLD_HEADER, *ROWS]) + "\n")
    import_data("saml-d", src, tmp_path / "o", out_format="csv")
    data = load_dataset(tmp_path / "o")
    tx = data.transactions.set_index(data.transactions["txn_id"].astype(str))
    assert "SD3.i" not in tx.index  # the UAE receiver is outside the bank
    assert tx.loc["SD3.o", "counterparty_country"] == "AE" and pd.isna(tx.loc["SD3.o", "counterparty_id"])
    assert tx.loc["SD6.i", "counterparty_country"] == "ES" and "SD6.o" not in tx.index
    assert tx.loc["SD6.i", "amount"] == pytest.approx(300.0 * CNY_PER_UNIT["EUR"])
    assert str(tx.loc["SD2.i", "txn_type"]) == "cash_deposit" and str(tx.loc["SD2.o", "txn_type"]) == "other"
    assert str(tx.loc["SD5.o", "channel"]) == "pos" and tx.loc["SD5.o", "terminal_id"] == "T-S4404767002"
    assert tx.loc["SD2.o", "timestamp"] == pd.Timestamp("2022-10-07T02:35:19Z")
    truth = pd.read_csv(tmp_path / "o" / "ground_truth.csv").set_index("txn_id")
    assert truth["typology"].to_dict() == {"SD4.i": "structuring", "SD4.o": "structuring",
                                           "SD5.i": "stacked_bipartite", "SD5.o": "stacked_bipartite",
                                           "SD6.i": "layered_fan_in"}


@pytest.mark.parametrize(("bad", "words"), [
    (ROWS[0].replace("UK,UK,Cash", "UK,Narnia,Cash"), "column 'Receiver_bank_location': unknown bank location"),
    (ROWS[0].replace("Cash Deposit", "Barter"), "column 'Payment_type': unknown payment type"),
    (ROWS[0].replace("UK pounds,UK pounds", "Pounds,UK pounds"), "column 'Payment_currency': unknown currency"),
    (ROWS[0].replace("2022-10-07", "07/10/2022"), "column 'Date and Time': unparsable time"),
    (ROWS[0].replace("1459.15", "0"), "column 'Amount': amount not positive"),
])
def test_bad_saml_d_row_names_line_and_column(write_text, tmp_path: Path, bad: str, words: str) -> None:
    src = write_text("s.csv", "\n".join([SAMLD_HEADER, ROWS[1], bad]) + "\n")
    with pytest.raises(SourceFormatError, match=f"s.csv, line 3, {words}"):
        import_data("saml-d", src, tmp_path / "o")
    assert not (tmp_path / "o").exists()
