"""Paths of the shared public samples and the headers of the formats, for the adapter tests."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Real public samples (/work/shared/external; in CI <repo>/../shared/external).
EXTERNAL = Path(__file__).resolve().parents[2].parent / "shared" / "external"
AMLWORLD_SAMPLE = EXTERNAL / "amlworld-sample" / "hi_small_sample.csv"
AMLWORLD_PATTERNS = EXTERNAL / "amlworld-sample" / "hi_small_patterns_sample.txt"
AMLSIM_RUN = EXTERNAL / "amlsim-20K_fanin200cycle200"

AMLWORLD_HEADER = ("Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,"
                   "Payment Currency,Payment Format,Is Laundering")
SAMLD_HEADER = ("Time,Date,Sender_account,Receiver_account,Amount,Payment_currency,Received_currency,"
                "Sender_bank_location,Receiver_bank_location,Payment_type,Is_laundering,Laundering_type")


def shared(path: Path) -> Path:
    """A shared sample, or skip the test saying where it was looked for."""
    if not path.exists():
        pytest.skip(f"shared public sample not found at {path} (the project's shared/ folder beside the repository)")
    return path
