"""The catalogue is documented, and the document in the repository is the one it generates."""

from __future__ import annotations

from pathlib import Path

from amlscore.features.catalogue import CATALOGUE
from amlscore.features.docs import render_catalogue_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "features.md"


def test_docs_features_md_is_generated_from_the_catalogue():
    assert DOC.read_text(encoding="utf-8") == render_catalogue_markdown(), (
        "docs/features.md is stale: run `amlscore catalogue --out docs/features.md`"
    )


def test_every_feature_has_meaning_formula_and_entity():
    for spec in CATALOGUE:
        assert spec.meaning.strip() and spec.formula.strip(), spec.name
        assert f"`{spec.name}`" in DOC.read_text(encoding="utf-8")
