"""``jointdnn smartdeal``: train SmartDeal variants of a model's mobile half and compare their weight bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from models.errors import UsageError

__all__ = ["parse_thresholds", "register"]


def parse_thresholds(text: str) -> list[float]:
    """``"0.1,0.2"`` -> ``[0.1, 0.2]``; raises UsageError on anything else (range is checked by the config)."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--threshold must be comma-separated numbers, got {text!r}") from None
    if not values:
        raise UsageError(f"--threshold must be comma-separated numbers, got {text!r}")
    return values


def smartdeal(
    model: Annotated[str, typer.Argument(help="zoo model name, small_resnet, or a .keras file")],
    dataset: Annotated[
        str, typer.Option("--dataset", help="'digits' or an image folder DIR/<class>/<img>")
    ] = "digits",
    cut: Annotated[
        str | None, typer.Option("--cut", help="decompose only up to this cut point (the mobile half)")
    ] = None,
    basis: Annotated[
        int | None,
        typer.Option("--basis", help="basis size b (must divide every layer's fan-in) [default: per layer]"),
    ] = None,
    threshold: Annotated[
        str, typer.Option("--threshold", help="coefficient pruning thresholds in [0, 1), one SD variant each")
    ] = "0.15,0.2,0.25",
    epochs: Annotated[
        int, typer.Option("--epochs", help="epochs of every variant after the base training")
    ] = 4,
    base_epochs: Annotated[int, typer.Option("--base-epochs", help="training epochs of the base model")] = 4,
    learning_rate: Annotated[
        float,
        typer.Option("--learning-rate", help="Adam learning rate of the variants' training (fp32 and SD)"),
    ] = 1e-3,
    int8: Annotated[
        bool, typer.Option("--int8/--no-int8", help="also convert to int8 TFLite and measure")
    ] = True,
    seed: Annotated[int, typer.Option("--seed", help="seed of weights, split and shuffling")] = 0,
    out: Annotated[Path, typer.Option("--out", help="output folder of the CSV and PNG")] = Path(
        "reports/smartdeal"
    ),
    save_models: Annotated[
        bool, typer.Option("--save-models", help="also save each trained SD model as OUT/models/<name>.keras")
    ] = False,
) -> None:
    """Train fp32 / int8 / SmartDeal variants on a data set; write OUT/<model>[-<cut>].csv and .png."""
    from rich.console import Console
    from rich.table import Table

    from models.smartdeal import SmartDealConfig

    settings = [SmartDealConfig(basis=basis, threshold=t) for t in parse_thresholds(threshold)]
    if epochs < 0 or base_epochs < 0:
        raise UsageError("--epochs and --base-epochs must be >= 0")
    console = Console(stderr=True)
    from models.smartdeal_study import run_study, write_study
    from models.study_inputs import load_study_inputs
    from models.training import TrainConfig

    base, data = load_study_inputs(model, dataset, seed)
    with console.status("smartdeal study") as status:
        rows = run_study(
            base,
            data,
            settings,
            cut=cut,
            base_training=TrainConfig(epochs=base_epochs, seed=seed),
            training=TrainConfig(epochs=epochs, seed=seed, learning_rate=learning_rate),
            int8=int8,
            progress=lambda msg: status.update(msg),
            models_dir=out / "models" if save_models else None,
        )
    stem = Path(model).stem + (f"-{cut}" if cut else "")
    csv_path, png_path = write_study(rows, out, stem=stem)
    where = f"up to {cut}" if cut else "everywhere"
    table = Table(title=f"{base.name}: SmartDeal {where} on {data.name} ({len(data.x_test)} test images)")
    for name in ("method", "b", "threshold", "density", "weight bytes", "x fp32", "x int8", "acc %", "Δ pts"):
        table.add_column(name, justify="left" if name == "method" else "right", no_wrap=True)
    for r in rows:
        sd = r.method.startswith("sd")
        table.add_row(
            r.method,
            (str(r.basis) if r.basis else "auto") if sd else "",
            f"{r.threshold:g}" if sd else "",
            f"{r.density:.3f}",
            str(r.weight_bytes),
            f"{r.ratio_vs_fp32:.2f}",
            f"{r.ratio_vs_int8:.2f}",
            f"{100 * r.accuracy:.2f}",
            f"{r.accuracy_delta_pts:+.2f}",
        )
    console_out = Console()
    if not console_out.is_terminal:
        console_out.width = 200  # piped output: do not truncate columns
    console_out.print(table)
    typer.echo(f"wrote {csv_path} and {png_path}")


def register(app: typer.Typer) -> None:
    """Attach the ``smartdeal`` command to the main app."""
    app.command("smartdeal")(smartdeal)
