"""``jointdnn butterfly``: train butterfly-unit variants of a model at a cut and tabulate their costs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from models.errors import UsageError

__all__ = ["parse_channels", "register"]


def parse_channels(text: str) -> list[int]:
    """``"2,4,8,16"`` -> ``[2, 4, 8, 16]``; raises UsageError on anything else."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--channels must be comma-separated positive integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise UsageError(f"--channels must be comma-separated positive integers, got {text!r}")
    return values


def butterfly(
    model: Annotated[str, typer.Argument(help="zoo model name, small_resnet, or a .keras file")],
    cut: Annotated[str, typer.Option("--cut", help="layer to cut after (a cut point of the base model)")],
    channels: Annotated[
        str, typer.Option("--channels", help="channel counts c' to try, e.g. 2,4,8,16")
    ] = "2,4,8,16",
    dataset: Annotated[
        str, typer.Option("--dataset", help="'digits' or an image folder DIR/<class>/<img>")
    ] = "digits",
    epochs: Annotated[int, typer.Option("--epochs", help="end-to-end training epochs of each variant")] = 2,
    base_epochs: Annotated[int, typer.Option("--base-epochs", help="training epochs of the base model")] = 4,
    stride: Annotated[int, typer.Option("--stride", help="reduction stride (1 or 2)")] = 1,
    pca: Annotated[
        bool, typer.Option("--pca/--no-pca", help="also fit the training-free PCA baseline")
    ] = True,
    latency: Annotated[
        bool, typer.Option("--latency/--no-latency", help="export and time head/tail on LiteRT")
    ] = True,
    quant: Annotated[
        str, typer.Option("--quant", help="export quantization for latency: fp32|fp16|int8")
    ] = "fp32",
    seed: Annotated[int, typer.Option("--seed", help="seed of weights, split and shuffling")] = 0,
    out: Annotated[Path, typer.Option("--out", help="output folder of the CSV and PNG")] = Path(
        "reports/butterfly"
    ),
    save_models: Annotated[
        bool, typer.Option("--save-models", help="also save each trained variant as OUT/<name>.keras")
    ] = False,
    streaming: Annotated[
        bool,
        typer.Option(
            "--streaming/--no-streaming",
            help="also learn the reduction by streaming GHA in fixed point (as on the phone), k = c'",
        ),
    ] = False,
) -> None:
    """Train butterfly variants at CUT on a data set; write OUT/<model>-<cut>.csv and .png."""
    from rich.console import Console
    from rich.table import Table

    widths = parse_channels(channels)
    if quant not in ("fp32", "fp16", "int8"):
        raise UsageError(f"--quant must be fp32, fp16 or int8, got {quant!r}")
    if stride not in (1, 2):
        raise UsageError(f"--stride must be 1 or 2, got {stride}")
    console = Console(stderr=True)
    from models.butterfly_study import run_study, write_study
    from models.study_inputs import load_study_inputs
    from models.training import TrainConfig

    base, data = load_study_inputs(model, dataset, seed)
    with console.status("butterfly study") as status:
        rows = run_study(
            base,
            cut,
            widths,
            data,
            base_training=TrainConfig(epochs=base_epochs, seed=seed),
            variant_training=TrainConfig(epochs=epochs, seed=seed),
            stride=stride,
            pca=pca,
            latency_dir=out / "bundles" if latency else None,
            quant=quant,
            progress=lambda msg: status.update(msg),
            models_dir=out / "models" if save_models else None,
            streaming=streaming,
        )
    stem = f"{Path(model).stem}-{cut}"
    csv_path, png_path = write_study(rows, out, stem=stem)
    table = Table(title=f"{base.name}: butterfly at {cut} on {data.name} ({len(data.x_test)} test images)")
    for name in (
        "variant",
        "c'",
        "shape",
        "bytes",
        "zstd",
        "x fewer",
        "acc %",
        "Δ pts",
        "device ms",
        "cloud ms",
    ):
        table.add_column(name, justify="left" if name == "variant" else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            r.variant,
            str(r.channels),
            r.cut_shape,
            str(r.cut_bytes),
            str(r.cut_bytes_zstd),
            f"{r.ratio:.1f}",
            f"{100 * r.accuracy:.2f}",
            f"{r.accuracy_delta_pts:+.2f}",
            f"{r.device_ms:.3f}",
            f"{r.cloud_ms:.3f}",
        )
    Console().print(table)
    typer.echo(f"wrote {csv_path} and {png_path}")


def register(app: typer.Typer) -> None:
    """Attach the ``butterfly`` command to the main app."""
    app.command("butterfly")(butterfly)
