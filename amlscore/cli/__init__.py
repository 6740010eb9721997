"""The ``amlscore`` command: one entry point, one subcommand per stage.

Each stage's command lives in its own module under :mod:`amlscore.cli` and is registered
here, so this file only shows what the tool can do. Errors caused by bad input
(:class:`amlscore.contract.errors.AmlError`) are printed for people, without a traceback, with exit 2.

Start-up stays cheap: the command modules import typer and rich only, and each command imports
what it needs (pandas, the model code, MLflow, ...) when it runs, so ``amlscore --help`` or
``amlscore report case`` never pay for the libraries of the other stages
(``tests/reports/test_startup.py`` keeps it so).
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

app = typer.Typer(
    name="amlscore",
    help="Money-laundering suspicion scoring: generate and validate data, build features, rate customers, "
    "train, evaluate, serve and report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_err = Console(stderr=True)

# Registration: one line per command; each module owns its command's options and help.
from amlscore.cli import generate as _generate  # noqa: E402
from amlscore.cli import features as _features  # noqa: E402
from amlscore.cli import demo as _demo  # noqa: E402
from amlscore.cli import rate as _rate  # noqa: E402
from amlscore.cli import serve as _serve  # noqa: E402
from amlscore.cli import train as _train  # noqa: E402
from amlscore.cli.report import report_app  # noqa: E402
from amlscore.cli import validate as _validate  # noqa: E402

app.command("generate")(_generate.generate)
app.command("validate")(_validate.validate)
app.command("features")(_features.features)
app.command("catalogue")(_features.catalogue)
app.command("rate")(_rate.rate)
app.command("train")(_train.train)
app.command("evaluate")(_train.evaluate)
app.command("promote")(_train.promote)
app.command("score")(_train.score)
app.command("feedback")(_train.feedback)
app.command("serve")(_serve.serve)
app.add_typer(report_app, name="report")
app.command("demo")(_demo.demo)


def main() -> None:
    """Run the CLI, turning :class:`AmlError` into a readable message and a non-zero exit."""
    try:
        app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # AmlError, and click usage errors in non-standalone mode
        import click

        if _is_aml_error(exc):
            _err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


def _is_aml_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an :class:`amlscore.contract.errors.AmlError` (imported only when something failed:
    the contract package imports pandas)."""
    if "amlscore.contract.errors" not in sys.modules:  # nothing imported it, so nothing raised it
        return False
    from amlscore.contract.errors import AmlError

    return isinstance(exc, AmlError)

