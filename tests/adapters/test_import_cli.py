"""``amlscore import``: the summary on success; on bad input a message for people, exit 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from adapter_sources import AMLWORLD_HEADER

ROOT = Path(__file__).resolve().parents[2]
GOOD = "2022/09/01 00:09,014433,801CA7940,004523,8119D8750,51.43,US Dollar,51.43,US Dollar,Credit Card,1"


def _amlscore(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "import sys; from amlscore.cli import main; sys.argv[0] = 'amlscore'; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=ROOT, check=False)


def test_import_writes_the_folder_and_says_what(write_text, tmp_path: Path) -> None:
    src = write_text("t.csv", AMLWORLD_HEADER + "\n" + GOOD + "\n")
    done = _amlscore("import", "amlworld", src, "--out", tmp_path / "o", "--seed", "3", "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert "Read 1 source rows; wrote 2 customers, 2 transactions (2 laundering)" in done.stdout
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        ".amlscore-dataset.json", "customers.csv", "ground_truth.csv", "reports.csv", "transactions.csv"]


def test_bad_input_exits_2_with_file_line_and_column(write_text, tmp_path: Path) -> None:
    src = write_text("t.csv", AMLWORLD_HEADER + "\n" + GOOD.replace("2022/09/01 00:09", "yesterday") + "\n")
    done = _amlscore("import", "amlworld", src, "--out", tmp_path / "o")
    assert done.returncode == 2
    assert f"{src}, line 2, column 'Timestamp': unparsable time; expected YYYY/MM/DD HH:MM, got 'yesterday'" in \
        " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr and not (tmp_path / "o").exists()


def test_options_of_another_format_are_refused(tmp_path: Path) -> None:
    done = _amlscore("import", "saml-d", tmp_path / "x.csv", "--out", tmp_path / "o", "--bank", "7")
    assert done.returncode == 2 and "--bank is for the amlworld format only" in done.stderr
    done = _amlscore("import", "swift", tmp_path / "x.csv", "--out", tmp_path / "o")
    assert done.returncode == 2 and "FORMAT must be one of amlworld, amlsim, saml-d" in done.stderr
