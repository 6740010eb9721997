"""``amlscore evaluate --protocol FILE``: the generalisation protocol from one command.

Wires the applications the protocol needs and that never import each other: the synthetic bank
(:mod:`amlscore.synth`) writes each bank of the grid into a cache folder, the adapters
(:mod:`amlscore.adapters`) convert each external set at each seed into it, and
:mod:`amlscore.training.protocol` trains and judges every cell, logging each one to MLflow
(:mod:`amlscore.training.tracking`: a parent run for the grid, a child run per cell) and writing
``cells.csv``, ``summary.csv``, ``summary.md`` and ``targets.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from amlscore.training.protocol import BankSpec, CellResult, ExternalSet, ProtocolGrid

BANK_MARKER = "protocol_bank.json"
EXTERNAL_MARKER = "protocol_external.json"
#: The cache folder's subfolder of the converted external sets (apart from the generated banks).
EXTERNAL_FOLDER = "external"


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


def source_identity(path: Path) -> dict[str, Any]:
    """What identifies a source on disk: each file's name, size and modification time (a folder's
    files directly inside it), so a replaced or edited source is converted again."""
    files = sorted(f for f in path.iterdir() if f.is_file()) if path.is_dir() else [path]
    return {"path_kind": "folder" if path.is_dir() else "file",
            "files": [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]}


def adapters_digest() -> str:
    """sha256 of the adapters' source: a changed adapter converts the cached sets again."""
    import amlscore.adapters as adapters  # noqa: PLC0415

    digest = hashlib.sha256()
    for f in sorted(Path(adapters.__file__).parent.glob("*.py")):
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


def external_maker(cache: Path, say: Callable[[str], None] = lambda _line: None
                   ) -> Callable[["ExternalSet", int], Path]:
    """A :data:`amlscore.training.protocol.ExternalMaker` that converts each external set at each seed
    once into ``cache/external/<name>_s<seed>`` with :func:`amlscore.adapters.import_data`.

    A converted set is reused when its marker names the same format, source files (name, size,
    modification time), patterns file, bank, seed, report policy and adapter code.
    """
    def make(entry: "ExternalSet", seed: int) -> Path:
        from amlscore.adapters import ReportPolicy, import_data  # noqa: PLC0415

        policy = ReportPolicy() if entry.report_share is None else ReportPolicy(report_share=entry.report_share)
        identity = {"format": entry.format, "source": source_identity(Path(entry.path)),
                    "patterns": source_identity(Path(entry.patterns)) if entry.patterns else None,
                    "bank": entry.bank, "seed": seed, "policy": dataclasses.asdict(policy), "adapters": adapters_digest()}
        folder = cache / EXTERNAL_FOLDER / f"{entry.name}_s{seed}"
        marker = folder / EXTERNAL_MARKER
        if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == identity:
            say(f"external set {entry.name}, seed {seed}: reusing {folder}")
            return folder
        marker.unlink(missing_ok=True)  # a conversion that fails half-way leaves no marker that vouches for it
        say(f"external set {entry.name}, seed {seed}: converting {entry.path} ({entry.format})")
        import_data(entry.format, entry.path, folder, seed=seed, bank=entry.bank, patterns=entry.patterns,
                    policy=policy)
        marker.write_text(json.dumps(identity, sort_keys=True), encoding="utf-8")
        return folder

    return make


def check_grid_names(grid: "ProtocolGrid", protocol: Path) -> None:
    """Fail before any work when a variant, a left-out typology or an external set's file is unknown.

    With synthetic banks, every left-out typology must be one of the generator's (each synthetic bank
    gets a cell per typology); the external sets' typologies are checked once they are converted
    (:func:`check_external_typologies`).
    """
    from amlscore.adapters.labels import UNKNOWN_TYPOLOGY  # noqa: PLC0415
    from amlscore.contract.errors import AmlError  # noqa: PLC0415
    from amlscore.synth.catalogue import ALL_TYPOLOGIES  # noqa: PLC0415
    from amlscore.synth.variant import load_variant  # noqa: PLC0415

    for name in grid.variants if grid.sizes else ():
        load_variant(name, what=f"The 'variants' key in {protocol.name}: each")
    if UNKNOWN_TYPOLOGY in grid.leave_out:
        raise AmlError(f"The 'leave_out' key in {protocol.name} may not name {UNKNOWN_TYPOLOGY!r}: it is what the "
                       "adapters call laundering whose source names no typology, not a typology. "
                       f"Got {grid.leave_out!r} instead.")
    unknown = [t for t in grid.leave_out if t not in ALL_TYPOLOGIES]
    if unknown and grid.sizes:
        raise AmlError(f"The 'leave_out' key in {protocol.name} must name typologies among {', '.join(ALL_TYPOLOGIES)} "
                       f"(the grid has synthetic banks). Got {unknown[0]!r} instead.")
    for entry in grid.external:
        for key in ("path", "patterns"):
            value = getattr(entry, key)
            if value is not None and not Path(value).exists():
                raise AmlError(f"The 'external' key in {protocol.name}: entry {entry.name!r} names {key} {value} "
                               "(relative paths are read from the protocol file's folder), which does not exist.")


def check_external_typologies(grid: "ProtocolGrid", protocol: Path, typologies: dict[str, set[str]]) -> None:
    """In a grid of external sets only, fail when a left-out typology is in no set's ground truth
    (``typologies``: each set's name to the typologies of its converted ground truth)."""
    from amlscore.contract.errors import AmlError  # noqa: PLC0415

    if grid.sizes:
        return
    held = set().union(*typologies.values()) if typologies else set()
    missing = [t for t in grid.leave_out if t not in held]
    if missing:
        found = "; ".join(f"{name}: {', '.join(sorted(t)) or 'none'}" for name, t in sorted(typologies.items()))
        raise AmlError(f"The 'leave_out' key in {protocol.name} must name typologies the external sets' ground truth "
                       f"holds ({found}). Got {missing[0]!r} instead.")


def run_protocol_command(protocol: Path, out: Path, cache: Path, *, mlflow: bool = True,
                         experiment: str | None = None, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run a protocol file end to end; returns the paths written and the targets."""
    from amlscore.training import protocol as proto  # noqa: PLC0415

    grid: ProtocolGrid = proto.load_grid(protocol)
    check_grid_names(grid, protocol)
    make_external = external_maker(cache, say)
    cells = grid.cells()
    typologies: dict[str, set[str]] = {}
    for entry, seed in grid.external_banks():  # converted before any training: their typologies decide the cells
        held = proto.ground_truth_typologies(make_external(entry, seed))
        typologies[entry.name] = typologies.get(entry.name, set()) | held
        cells += grid.cells_of(proto.BankSpec(0, 0, seed, "", entry.name), held)
    check_external_typologies(grid, protocol, typologies)
    say(f"protocol {grid.name}: {len(grid.banks())} synthetic banks, {len(grid.external)} external sets at "
        f"{len(grid.seeds) if grid.external else 0} seeds, {len(cells)} cells")
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

    results = proto.run_protocol(grid, bank_maker(cache), make_external=make_external, on_cell=on_cell, progress=say)
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
