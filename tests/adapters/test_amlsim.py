"""AMLSim: the shared sample run, the bank-export layout (both column spellings), labels, bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from amlscore.adapters import import_data
from amlscore.adapters.errors import SourceFormatError
from amlscore.contract.load import load_dataset
from adapter_sources import AMLSIM_RUN, shared


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("as") / "run"
    import_data("amlsim", shared(AMLSIM_RUN), out, seed=1)
    return out


def test_sample_run_meets_the_contract_and_labels_transfers_between_fraud_accounts(sample_run: Path) -> None:
    data = load_dataset(sample_run)
    nodes = pd.read_csv(AMLSIM_RUN / "nodes.csv")
    src = pd.read_csv(AMLSIM_RUN / "transactions.csv")
    fraud = set(nodes.loc[nodes["isFraud"] == 1, "nodeid"])
    between = src["sourceNodeId"].isin(fraud) & src["targetNodeId"].isin(fraud)
    truth = pd.read_csv(sample_run / "ground_truth.csv")
    assert len(data.transactions) == 2 * len(src)
    assert len(truth) == 2 * int(between.sum())
    lines = {int(t[2:].split(".")[0]) for t in truth["txn_id"]}
    assert lines == set((src.index[between] + 2).tolist())
    assert set(truth["typology"]) == {"unknown"}


def test_steps_are_days_at_noon_from_the_start_date(sample_run: Path, tmp_path: Path) -> None:
    tx = pd.read_parquet(sample_run / "transactions.parquet").set_index("txn_id")
    first = pd.read_csv(AMLSIM_RUN / "transactions.csv").iloc[0]
    expected = pd.Timestamp("2017-01-01") + pd.Timedelta(days=int(first["time"]), hours=12 - 8)
    assert tx.loc["AS2.o", "timestamp"] == expected.tz_localize("UTC")
    import_data("amlsim", AMLSIM_RUN, tmp_path / "h", start=dt.date(2024, 3, 1), step="hour")
    hours = pd.read_parquet(tmp_path / "h" / "transactions.parquet").set_index("txn_id")
    assert hours.loc["AS2.o", "timestamp"] == (pd.Timestamp("2024-03-01") + pd.Timedelta(hours=int(first["time"]) - 8)
                                              ).tz_localize("UTC")


def test_reports_follow_the_policy_shares(sample_run: Path) -> None:
    truth = pd.read_csv(sample_run / "ground_truth.csv")
    per_customer = truth.groupby("customer_id")["reported"].first()
    assert 0.45 < per_customer.mean() < 0.75  # ReportPolicy.report_share = 0.6 of ~1,800 customers
    reports = pd.read_parquet(sample_run / "reports.parquet")
    suspicious = reports[reports["label"] == "suspicious"]
    assert set(suspicious["customer_id"]) == set(per_customer.index[per_customer])
    assert (reports["label"] == "not_suspicious").any() and reports["txn_id"].isna().any()


EXPORT_ACCOUNTS = "acct_id,dsply_nm,type,prior_sar_count,initial_deposit\n1,a,I,false,10\n2,b,I,true,10\n3,c,I,true,10\n"
EXPORT_TX = ("tran_id,orig_acct,bene_acct,tx_type,base_amt,tran_timestamp,is_sar,alert_id\n"
             "10,1,2,TRANSFER,100.5,2017-01-02T10:00:00Z,false,-1\n"
             "11,2,3,TRANSFER,90.0,2017-01-03T11:30:00Z,true,7\n"
             "12,3,1,CASH-OUT,50.0,2017-01-04T09:00:00Z,false,-1\n")
EXPORT_ALERTS = "alert_id,alert_type,is_sar,tran_id,orig_acct,bene_acct,tx_type,base_amt,tran_timestamp\n7,fan_in,true,11,2,3,TRANSFER,90.0,2017-01-03T11:30:00Z\n"


def test_bank_export_takes_the_transaction_label_and_the_alert_type(write_text, tmp_path: Path) -> None:
    write_text("run/accounts.csv", EXPORT_ACCOUNTS)
    write_text("run/transactions.csv", EXPORT_TX)
    write_text("run/alert_transactions.csv", EXPORT_ALERTS)
    import_data("amlsim", tmp_path / "run", tmp_path / "o")
    data = load_dataset(tmp_path / "o")
    truth = pd.read_csv(tmp_path / "o" / "ground_truth.csv").set_index("txn_id")
    assert sorted(truth.index) == ["AS3.i", "AS3.o"]
    assert truth.loc["AS3.o", "typology"] == "fan_in" and truth.loc["AS3.o", "scenario_id"] == "alert-7"
    tx = data.transactions.set_index(data.transactions["txn_id"].astype(str))
    assert str(tx.loc["AS4.o", "txn_type"]) == "cash_withdrawal" and str(tx.loc["AS4.o", "channel"]) == "counter"
    assert tx.loc["AS3.o", "timestamp"] == pd.Timestamp("2017-01-03T03:30:00Z")  # 11:30 bank-local


def test_older_upper_case_export_without_transaction_labels_uses_sar_accounts(write_text, tmp_path: Path) -> None:
    write_text("run/accounts.csv", "ACCOUNT_ID,CUSTOMER_ID,IS_SAR\n1,c1,false\n2,c2,true\n3,c3,true\n")
    write_text("run/tx.csv", "TX_ID,SENDER_ACCOUNT_ID,RECEIVER_ACCOUNT_ID,TX_TYPE,TX_AMOUNT,TIMESTAMP\n"
                             "1,1,2,TRANSFER,5.0,3\n2,2,3,TRANSFER,6.0,4\n")
    import_data("amlsim", tmp_path / "run", tmp_path / "o")
    load_dataset(tmp_path / "o")
    truth = pd.read_csv(tmp_path / "o" / "ground_truth.csv")
    assert sorted(truth["txn_id"]) == ["AS3.i", "AS3.o"]


@pytest.mark.parametrize(("nodes", "tx", "words"), [
    ("nodeid,isFraud,init_balance,fraudStep\n0,0,1.0,-1\n1,1,1.0,3\n", "sourceNodeId,targetNodeId,value,time\n0,5,1.0,1\n",
     "line 2, column 'targetNodeId': unknown account"),
    ("nodeid,isFraud,init_balance,fraudStep\n0,0,1.0,-1\n1,1,1.0,3\n", "sourceNodeId,targetNodeId,value,time\n0,1,1.0,1.5\n",
     "line 2, column 'time': not a simulation step"),
    ("nodeid,isFraud,init_balance,fraudStep\n0,0,1.0,-1\n1,1,1.0,3\n", "sourceNodeId,targetNodeId,value,time\n0,1,0,1\n",
     "line 2, column 'value': amount not positive"),
    ("nodeid,fraud,init_balance,fraudStep\n0,0,1.0,-1\n", "sourceNodeId,targetNodeId,value,time\n0,0,1.0,1\n",
     "line 1: wrong header"),
])
def test_bad_sample_run_is_refused_and_nothing_written(write_text, tmp_path: Path, nodes: str, tx: str,
                                                       words: str) -> None:
    write_text("run/nodes.csv", nodes)
    write_text("run/transactions.csv", tx)
    with pytest.raises(SourceFormatError, match=words):
        import_data("amlsim", tmp_path / "run", tmp_path / "o")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_export_with_unknown_tx_type_or_time_is_refused(write_text, tmp_path: Path) -> None:
    write_text("run/accounts.csv", EXPORT_ACCOUNTS)
    write_text("run/transactions.csv", EXPORT_TX.replace("CASH-OUT", "BARTER"))
    with pytest.raises(SourceFormatError, match="line 4, column 'tx_type': unknown tx_type; expected one of TRANSFER"):
        import_data("amlsim", tmp_path / "run", tmp_path / "o")
    write_text("run/transactions.csv", EXPORT_TX.replace("2017-01-04T09:00:00Z", "4 Jan 2017"))
    with pytest.raises(SourceFormatError, match="line 4, column 'tran_timestamp': unparsable time"):
        import_data("amlsim", tmp_path / "run", tmp_path / "o")
