"""storage.staged_folder: a result appears at its target whole, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from amlscore.storage.staged import staged_folder


def _write(folder: Path, text: str) -> None:
    folder.mkdir()
    (folder / "part-0").write_text(text)


def test_a_completed_block_replaces_the_target_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _write(target, "old")
    (target / "stale").write_text("from the earlier result")
    with staged_folder(target) as (result, scratch):
        scratch.mkdir()
        (scratch / "input").write_text("scratch")
        _write(result, "new")
    assert sorted(p.name for p in target.iterdir()) == ["part-0"]
    assert (target / "part-0").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_block_keeps_the_earlier_target_and_removes_what_it_wrote(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _write(target, "old")
    with pytest.raises(RuntimeError, match="engine failed"):
        with staged_folder(target) as (result, scratch):
            _write(result, "half")
            scratch.mkdir()
            raise RuntimeError("engine failed")
    assert (target / "part-0").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_leftovers_of_an_earlier_failed_run_are_cleared_first_and_a_file_target_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    target.write_text("a file where the folder goes")
    _write(tmp_path / "out.parquet.partial", "leftover")
    (tmp_path / "out.parquet.staging").mkdir()
    with staged_folder(target) as (result, scratch):
        assert not result.exists() and not scratch.exists()
        _write(result, "new")
    assert target.is_dir() and (target / "part-0").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]
