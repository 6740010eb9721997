"""What every command's options share: the error for a bad value, and dates given on the command line.

Commands import the contract package (and with it pandas) only when they run; so does this module.
"""

from __future__ import annotations

import datetime as dt


def aml_error(message: str) -> Exception:
    """An :class:`amlscore.contract.errors.AmlError` (printed for people by :func:`amlscore.cli.main`, exit 2)."""
    from amlscore.contract.errors import AmlError  # noqa: PLC0415 - the contract package imports pandas

    return AmlError(message)


def parse_date(value: str | None, option: str) -> dt.date | None:
    """``value`` of ``option`` as a date (None stays None); an error naming the option when it is not one."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise aml_error(f"{option} must be a date YYYY-MM-DD. Got {value!r} instead.") from None


ENGINES = ("local", "spark")
ENGINE_HELP = "local: this process; spark: PySpark (docs/spark.md), the same values."
MASTER_HELP = ("Spark master with --engine spark: local[*] (default), local[N], spark://host:7077, yarn, k8s://...; "
               "without it SPARK_REMOTE (Spark Connect, sc://host:15002) is used when set.")


def check_engine(engine: str, master: str | None) -> None:
    """``--engine`` is local or spark; ``--master`` only goes with spark."""
    if engine not in ENGINES:
        raise aml_error(f"--engine must be one of {', '.join(ENGINES)}. Got {engine!r} instead.")
    if master is not None and engine != "spark":
        raise aml_error("--master goes with --engine spark.")
