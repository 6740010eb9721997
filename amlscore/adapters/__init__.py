"""Adapters: public AML data sets in, contract folders out (``amlscore import``).

One module per format reads the source in blocks into :class:`~amlscore.adapters.transfers.Transfers`;
:class:`~amlscore.adapters.output.ContractWriter` streams the contract rows to a staging folder,
turns the labels into the reports a bank would hold (:mod:`amlscore.adapters.labels`) and puts
the folder in place only when everything succeeded. The mapping tables are in the modules and in
docs/adapters.md.

    from amlscore.adapters import import_data
    import_data("amlworld", "HI-Small_Trans.csv", "data/amlworld", bank="all", seed=7)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from amlscore.adapters.labels import ReportPolicy
from amlscore.adapters.output import ContractWriter, ImportSummary
from amlscore.contract.errors import AmlError

__all__ = ["FORMATS", "ImportSummary", "ReportPolicy", "import_data"]

#: Format name -> txn_id prefix.
FORMATS: dict[str, str] = {"amlworld": "AW", "amlsim": "AS", "saml-d": "SD"}


def import_data(fmt: str, src: str | Path, out: str | Path, *, seed: int = 42, bank: str = "all",
                patterns: str | Path | None = None, start: dt.date | None = None, step: str = "day",
                out_format: str = "parquet", policy: ReportPolicy | None = None,
                block_bytes: int | None = None) -> ImportSummary:
    """Convert a public data set into a contract folder with ``ground_truth.csv``.

    Parameters
    ----------
    fmt : {"amlworld", "amlsim", "saml-d"}
    src : path
        AMLworld: the ``*_Trans.csv`` file. AMLSim: the run's folder. SAML-D: the CSV file.
    out : path
        Target folder (absent, empty, or a data set written before).
    seed : int
        Seed of the report policy (the same seed gives identical files).
    bank : str
        AMLworld: the bank whose accounts are the customers, or ``all``.
    patterns : path, optional
        AMLworld: ``*_Patterns.txt`` for typology names.
    start : date, optional
        AMLSim: the date of step 0 (default: AMLSim's own base date, 2017-01-01).
    step : {"day", "hour"}
        AMLSim: what one simulation step is.
    out_format : {"parquet", "csv"}
    policy : ReportPolicy, optional
    block_bytes : int, optional
        Size of the blocks the source is read in (tests use small blocks).

    Raises
    ------
    AmlError
        Unknown format or option; :class:`~amlscore.adapters.errors.SourceFormatError` for a
        source that breaks its format (nothing is written then).
    """
    if fmt not in FORMATS:
        raise AmlError(f"FORMAT must be one of {', '.join(FORMATS)}. Got {fmt!r} instead.")
    if patterns is not None and fmt != "amlworld":
        raise AmlError(f"--patterns is for the amlworld format only. Got it with {fmt!r}.")
    if bank != "all" and fmt != "amlworld":
        raise AmlError(f"--bank is for the amlworld format only (the {fmt} data sets have one bank). Got {bank!r}.")
    src = Path(src)
    with ContractWriter(Path(out), fmt=out_format, prefix=FORMATS[fmt], seed=seed,
                        policy=policy or ReportPolicy()) as writer:
        if fmt == "amlworld":
            from amlscore.adapters import amlworld

            amlworld.convert(src, writer, bank=bank, patterns=Path(patterns) if patterns else None,
                             block_bytes=block_bytes)
        elif fmt == "amlsim":
            from amlscore.adapters import amlsim

            amlsim.convert(src, writer, start=start, step=step)
        else:
            from amlscore.adapters import samld

            samld.convert(src, writer, block_bytes=block_bytes)
        return writer.finish()
