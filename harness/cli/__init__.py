"""The ``jointdnn`` command line: one typer app, one module per command group.

Command modules import their heavy dependencies (TensorFlow, LiteRT, adbutils) inside the command
functions, so ``jointdnn --help`` is fast. Every :class:`~models.errors.JointDNNError` becomes a
one-line message and a non-zero exit; no traceback reaches the user.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

import click
import typer
from rich.console import Console

from models.errors import JointDNNError

__all__ = ["app", "main"]

app = typer.Typer(
    name="jointdnn",
    help="Split a deep network between a phone and a cloud server, and prove the split by measurement.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_err = Console(stderr=True)


def _click_exception_modules() -> list[ModuleType]:
    """Where the running typer's click exceptions live: click's own, and typer's vendored copy.

    typer < 0.2x raises ``click.exceptions.*``; later versions vendor click and raise the same classes
    from their copy. typer's public ``BadParameter`` is defined in whichever module that is.
    """
    modules = [click.exceptions]
    vendored = sys.modules.get(typer.BadParameter.__module__)
    if vendored is not None and vendored is not click.exceptions:
        modules.append(vendored)
    return modules


def _classes(name: str) -> tuple[type[BaseException], ...]:
    found = [getattr(module, name, None) for module in _click_exception_modules()]
    return tuple(cls for cls in found if isinstance(cls, type) and issubclass(cls, BaseException))


def _register() -> None:
    """Attach every command module to :data:`app` (imports are cheap: no TensorFlow at module level)."""
    from harness.cli import (
        butterfly_cmd,
        emulator_cmd,
        models_cmd,
        plan_cmd,
        profile_cmd,
        run_cmd,
        serve_cmd,
        smartdeal_cmd,
    )

    # Order is the order of `jointdnn --help`: the pipeline from model to report, then the tools.
    for module in (
        models_cmd,
        serve_cmd,
        plan_cmd,
        run_cmd,
        butterfly_cmd,
        smartdeal_cmd,
        profile_cmd,
        emulator_cmd,
    ):
        module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jointdnn`` console script; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    if not app.registered_commands and not app.registered_groups:
        _register()
    exits: tuple[type[BaseException], ...] = (*_classes("Exit"), typer.Exit)
    usage_errors = _classes("ClickException")  # UsageError, BadParameter, NoSuchOption: exit 2
    aborts: tuple[type[BaseException], ...] = (*_classes("Abort"), typer.Abort, KeyboardInterrupt)
    try:
        result = app(args=argv, standalone_mode=False)
    except JointDNNError as exc:
        _err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except exits as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except usage_errors as exc:
        exc.show()  # type: ignore[attr-defined]  # typer's usual "Usage: ... Error: ..." lines
        return int(exc.exit_code)  # type: ignore[attr-defined]
    except aborts:
        _err.print("[bold red]interrupted[/]")
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
