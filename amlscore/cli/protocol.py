"""``amlscore evaluate --protocol FILE``: the generalisation protocol from one command.

Wires the two applications the protocol needs and that never import each other: the synthetic
bank (:mod:`amlscore.synth`) writes each bank of the grid into a cache folder, and
:mod:`amlscore.training.protocol` trains and judges every cell, logging each one to MLflow
(:mod:`amlscore.training.tracking`: a parent run for the grid, a child run per cell) and writing
``cells.csv``, ``summary.csv``, ``summary.md`` and ``targets.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from amlscore.training.protocol import BankSpec, CellResult, ProtocolGrid

BANK_MARKER = "protocol_bank.json"


def bank_maker(cache: Path) -> Callable[["BankSpec"], Path]:
    """A :data:`amlscore.training.protocol.BankMaker` that generates each bank once into ``cache``.

    A bank is reused when its folder's marker names the same customers, days, seed and variant
    definition (a changed variant file gives a new bank).
    """
    def make(spec: "BankSpec") -> Path:
        from amlscore.synth.bank import generate_bank, write_bank  # noqa: PLC0415
        from amlscore.synth.config import SynthConfig  # noqa: PLC0415
        from amlscore.synth.variant import load_variant  # noqa: PLC0415

        variant = load_variant(spec.variant)
        identity = {"customers": spec.customers, "days": spec.days, "seed": spec.seed,
                    "variant": variant.model_dump(mode="json")}
        folder = cache / spec.key
        marker = folder / BANK_MARKER
        if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == identity:
            return folder
        bank = generate_bank(SynthConfig(customers=spec.customers, days=spec.days, seed=spec.seed, variant=variant))
        write_bank(bank, folder)
        marker.write_text(json.dumps(identity, sort_keys=True), encoding="utf-8")
        return folder

    return make


def check_grid_names(grid: "ProtocolGrid", protocol: Path) -> None:
    """Fail before any work when a variant or a left-out typology of the grid is unknown."""
    from amlscore.contract.errors import AmlError  # noqa: PLC0415
    from amlscore.synth.catalogue import ALL_TYPOLOGIES  # noqa: PLC0415
    from amlscore.synth.variant import load_variant  # noqa: PLC0415

    for name in grid.variants:
        load_variant(name, what=f"The 'variants' key in {protocol.name}: each")
    unknown = [t for t in grid.leave_out if t not in ALL_TYPOLOGIES]
    if unknown:
        raise AmlError(f"The 'leave_out' key in {protocol.name} must name typologies among {', '.join(ALL_TYPOLOGIES)}. "
                       f"Got {unknown[0]!r} instead.")


def run_protocol_command(protocol: Path, out: Path, cache: Path, *, mlflow: bool = True,
                         experiment: str | None = None, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run a protocol file end to end; returns the paths written and the targets."""
    from amlscore.training import protocol as proto  # noqa: PLC0415

    grid: ProtocolGrid = proto.load_grid(protocol)
    check_grid_names(grid, protocol)
    cells = grid.cells()
    say(f"protocol {grid.name}: {len(grid.banks())} banks, {len(cells)} cells")
    parent = None
    on_cell = None
    if mlflow:
        from amlscore.training import tracking  # noqa: PLC0415

        parent = tracking.start_protocol_run(grid.name, {"protocol_file": str(protocol), "cells": len(cells),
                                                         **{k: json.dumps(v) for k, v in grid.model_dump().items()}},
                                             experiment=experiment)

        def on_cell(result: "CellResult") -> None:
            tracking.log_protocol_cell(parent, result.cell.name, result.cell.params(),
                                       {**result.metrics, **{f"typology_recall_1pct_{k}": v
                                                             for k, v in result.per_typology.items()},
                                        "seconds": result.seconds},
                                       tags={"worst_typology": result.diagnostics["worst_typology"]})

    results = proto.run_protocol(grid, bank_maker(cache), on_cell=on_cell, progress=say)
    paths = proto.write_summary(results, grid, out)
    if mlflow and parent is not None:
        from amlscore.training import tracking  # noqa: PLC0415

        frame = proto.cells_frame(results)
        tracking.finish_protocol_run(parent, {"pr_auc_mean": float(frame["pr_auc"].mean()),
                                              "pr_auc_worst": float(frame["pr_auc"].min()),
                                              "recall_at_1pct_mean": float(frame["recall_at_1pct"].mean()),
                                              "recall_at_1pct_worst": float(frame["recall_at_1pct"].min())},
                                     list(paths.values()))
    return {"paths": {k: str(v) for k, v in paths.items()}, "targets": proto.targets(results, grid),
            "parent_run_id": parent, "cells": len(results)}
