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
    help="Money-laundering suspicion scoring: generate, import and validate data, build features, rate customers, "
    "train, evaluate, serve and report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_err = Console(stderr=True)

# Registration: one line per command; each module owns its command's options and help.
from amlscore.cli import generate as _generate  # noqa: E402
from amlscore.cli import features as _features  # noqa: E402
from amlscore.cli import monitor as _monitor  # noqa: E402
from amlscore.cli import compare as _compare  # noqa: E402
from amlscore.cli import demo as _demo  # noqa: E402
from amlscore.cli import deploy as _deploy  # noqa: E402
from amlscore.cli import rate as _rate  # noqa: E402
from amlscore.cli import serve as _serve  # noqa: E402
from amlscore.cli import train as _train  # noqa: E402
from amlscore.cli.report import report_app  # noqa: E402
from amlscore.cli.audit import audit_app  # noqa: E402
from amlscore.cli.customers import customers_app  # noqa: E402
from amlscore.cli.cases import cases_app  # noqa: E402
from amlscore.cli.users import users_app  # noqa: E402
from amlscore.cli import validate as _validate  # noqa: E402
from amlscore.cli import importer as _importer  # noqa: E402

app.command("generate")(_generate.generate)
app.command("validate")(_validate.validate)
app.command("import")(_importer.import_command)
app.command("features")(_features.features)
app.command("catalogue")(_features.catalogue)
app.command("rate")(_rate.rate)
app.command("train")(_train.train)
app.command("evaluate")(_train.evaluate)
app.command("promote")(_train.promote)
app.command("score")(_train.score)
app.command("feedback")(_train.feedback)
app.command("serve")(_serve.serve)
app.command("monitor")(_monitor.monitor)
app.command("backtest")(_monitor.backtest)
app.command("compare")(_compare.compare)
app.command("export-model")(_deploy.export_model)
app.add_typer(report_app, name="report")
app.add_typer(audit_app, name="audit")
app.add_typer(customers_app, name="customers")
app.add_typer(cases_app, name="cases")
app.add_typer(users_app, name="users")
app.command("demo")(_demo.demo)


def main() -> None:
    """Entry point of the console script: run the CLI and exit with its status."""
    sys.exit(run())


def run(args: list[str] | None = None) -> int:
    """Run the CLI on ``args`` (default ``sys.argv[1:]``) and return the process exit status.

    typer runs with ``standalone_mode=False`` so that :class:`AmlError` can be printed here without a
    traceback; in that mode click *returns* the code of a ``typer.Exit`` instead of exiting, so the code is
    taken from the return value. Bad input exits with the error's code (2 for usage errors), a refused
    action with the code its command raised.
    """
    try:
        result = app(args=args, standalone_mode=False)
    except typer.Exit as exc:  # raised outside click's own handling (e.g. by a callback)
        return exc.exit_code
    except typer.Abort:
        _err.print("aborted")
        return 130
    except Exception as exc:  # AmlError, and usage errors (typer's click) in non-standalone mode
        if _is_aml_error(exc):
            _err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            return exc.exit_code
        if isinstance(exc, typer.TyperException):
            _show_usage_error(exc)
            return exc.exit_code
        raise
    return result if isinstance(result, int) else 0


def _show_usage_error(exc: typer.TyperException) -> None:
    """Print a usage error as click does in standalone mode (usage line, then the message)."""
    show = getattr(exc, "show", None)
    if callable(show):
        show()
    else:
        _err.print(f"[bold red]error:[/] {exc.format_message()}", highlight=False, soft_wrap=True)


def _is_aml_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an :class:`amlscore.contract.errors.AmlError` (imported only when something failed:
    the contract package imports pandas)."""
    if "amlscore.contract.errors" not in sys.modules:  # nothing imported it, so nothing raised it
        return False
    from amlscore.contract.errors import AmlError

    return isinstance(exc, AmlError)

