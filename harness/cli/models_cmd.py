"""``jointdnn models …`` and ``jointdnn export``: inspect the zoo's models and write bundles."""

from __future__ import annotations

import typer

__all__ = ["register"]

models_app = typer.Typer(help="Inspect models: cut points and per-segment sizes.", no_args_is_help=True)


@models_app.command("list")
def list_models() -> None:
    """List the models of the zoo."""
    from models.zoo import MODEL_NAMES

    for name in MODEL_NAMES:
        typer.echo(name)


def register(app: typer.Typer) -> None:
    """Attach the models group to the main app."""
    app.add_typer(models_app, name="models")
