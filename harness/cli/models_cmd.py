"""``jointdnn models …`` and ``jointdnn export``: inspect the zoo's models and write bundles."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

models_app = typer.Typer(help="Inspect models: cut points and per-segment sizes.", no_args_is_help=True)

ModelArg = Annotated[str, typer.Argument(help="zoo model name (see `jointdnn models list`) or a .keras file")]
CutOpt = Annotated[
    list[str] | None,
    typer.Option("--cut", help="a layer to cut after (repeatable); it must be a cut point"),
]

_CSV_COLUMNS = (
    "segment",
    "first_layer",
    "last_layer",
    "output_shape",
    "dtype",
    "out_bytes",
    "params",
    "macs",
)


def _human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@models_app.command("list")
def list_models() -> None:
    """List the models of the zoo."""
    from models.zoo import MODEL_NAMES

    for name in MODEL_NAMES:
        typer.echo(name)


@models_app.command("inspect")
def inspect_model(
    model: ModelArg,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="also write the table to this CSV file")
    ] = None,
    cut: CutOpt = None,
) -> None:
    """Print the model's cut points and, per segment, its layers, output tensor, params and MACs."""
    from rich.console import Console
    from rich.table import Table

    from models.graph import analyze
    from models.zoo import load_model

    graph = analyze(load_model(model))
    for layer in cut or []:
        graph.check_cut(layer)
    rows = [
        (
            s.index,
            s.first_layer,
            s.last_layer,
            "x".join(str(d) for d in s.output_shape),
            s.dtype,
            s.out_bytes,
            s.params,
            s.macs,
        )
        for s in graph.segments
    ]
    table = Table(
        title=f"{graph.model_name}: {graph.num_segments} segments, {len(graph.cut_layers)} cut points"
    )
    for column in ("#", "first layer", "last layer (cut)", "output", "dtype", "out", "params", "MACs"):
        table.add_column(column, justify="right" if column in ("#", "out", "params", "MACs") else "left")
    for index, first, last, shape, dtype, out_bytes, params, macs in rows:
        table.add_row(
            str(index),
            first,
            last,
            shape,
            dtype,
            _human_bytes(out_bytes),
            f"{params:,}",
            f"{macs / 1e6:,.1f}M",
        )
    console = Console()
    if not console.is_terminal:
        console.width = 200  # piped output: do not truncate layer names
    console.print(table)
    if csv_path is not None:
        from models.errors import UsageError

        try:
            with csv_path.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(_CSV_COLUMNS)
                writer.writerows(rows)
        except OSError as exc:
            raise UsageError(f"cannot write {csv_path}: {exc.strerror or exc}") from None
        typer.echo(f"wrote {csv_path}")


def export_command(
    model: ModelArg,
    quant: Annotated[str, typer.Option("--quant", "-q", help="fp32, fp16 or int8")] = "fp32",
    out: Annotated[
        Path | None, typer.Option("--out", help="bundle directory [default: bundles/MODEL-QUANT]")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="artifact cache [default: $JOINTDNN_CACHE_DIR or user cache]"),
    ] = None,
    cut: CutOpt = None,
    whole: Annotated[bool, typer.Option(help="also export the whole model (whole.tflite)")] = True,
    smartdeal: Annotated[
        Path | None,
        typer.Option(
            "--smartdeal",
            help="MODEL is a trained SmartDeal .keras: also write its compact artifact to FILE "
            "(a bare file name goes next to the bundle)",
            metavar="FILE",
        ),
    ] = None,
) -> None:
    """Export MODEL's chain of TFLite segments (plus manifest.json) as a bundle."""
    from rich.console import Console
    from rich.progress import Progress

    from models.export import STATS, export_bundle

    stem = Path(model).stem if model.endswith((".keras", ".h5")) or "/" in model else model
    out_dir = out or Path("bundles") / f"{stem}-{quant}"
    if smartdeal is not None:
        _export_smartdeal(
            model, quant, out_dir, smartdeal, cache_dir=cache_dir, cut=cut, whole=whole, stem=stem
        )
        return
    before = (STATS.conversions, STATS.cache_hits)
    with Progress(transient=True, disable=not sys.stderr.isatty(), console=Console(stderr=True)) as bar:
        task = bar.add_task(f"exporting {stem} ({quant})", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        manifest = export_bundle(
            model,
            quant,
            out_dir,
            cache_dir=cache_dir,
            include_whole=whole,
            cuts=cut,
            model_name=stem,
            progress=progress,
        )
    converted = STATS.conversions - before[0]
    hits = STATS.cache_hits - before[1]
    total_bytes = sum((out_dir / s.file).stat().st_size for s in manifest.segments)
    typer.echo(
        f"wrote {out_dir}: {manifest.num_segments} segments ({_human_bytes(total_bytes)}), "
        f"{converted} converted, {hits} from cache"
    )


def _export_smartdeal(
    model: str,
    quant: str,
    out_dir: Path,
    artifact: Path,
    *,
    cache_dir: Path | None,
    cut: list[str] | None,
    whole: bool,
    stem: str,
) -> None:
    """``jointdnn export SD.keras --smartdeal FILE``: folded fp32 bundle + compact artifact + size report."""
    from models.errors import UsageError

    if quant != "fp32":
        raise UsageError(
            f"--smartdeal needs --quant fp32 (the {quant} converter rewrites the kernels, so the device could "
            "not rebuild the segment files exactly)"
        )
    import models.smartdeal_layer  # noqa: F401  (registers the layer so the .keras file loads)
    from models.smartdeal_export import export_smartdeal
    from models.zoo import load_model

    sd_model = load_model(model)
    target = out_dir / artifact if artifact.parent == Path(".") else artifact
    manifest, report = export_smartdeal(
        sd_model, out_dir, target, cuts=cut, cache_dir=cache_dir, include_whole=whole, model_name=stem
    )
    typer.echo(f"wrote {out_dir} ({manifest.num_segments} segments) and {target}")
    typer.echo(
        f"mobile half: dense segment files {_human_bytes(report.dense_tflite_bytes)} -> artifact "
        f"{_human_bytes(report.artifact_bytes)} (skeletons {_human_bytes(report.skeleton_bytes)} + SD payload "
        f"{_human_bytes(report.sd_payload_bytes)} replacing {_human_bytes(report.kernel_fp32_bytes)} of fp32 "
        f"kernels), {report.ratio:.2f}x smaller; {report.layers} SD layers"
        + (f"; left dense: {', '.join(report.layers_left_dense)}" if report.layers_left_dense else "")
    )


def register(app: typer.Typer) -> None:
    """Attach the models group and the export command to the main app."""
    app.add_typer(models_app, name="models")
    app.command("export")(export_command)
