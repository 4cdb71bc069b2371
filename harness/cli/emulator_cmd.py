"""``jointdnn emulator start``: run an emulated Android device that adb connects to (a test device)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer

__all__ = ["register"]

emulator_app = typer.Typer(
    help="An emulated Android test device that the real adb server connects to (loopback, no auth).",
    no_args_is_help=True,
)


@emulator_app.command("start")
def start(
    port: int = typer.Option(0, "--port", "-p", help="TCP port (0: a free one; never 5555-5585)."),
    profile: str = typer.Option("generic-phone", "--profile", help="Device profile name or YAML path."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless told)."),
    root: Path | None = typer.Option(None, "--root", help="Keep the device image in this folder."),
    register: bool = typer.Option(True, "--register/--no-register", help="Run `adb connect` to it."),
    as_emulator: bool = typer.Option(
        False,
        "--as-emulator",
        help="Listen on the emulator port range (5555-5585) so adb lists it as emulator-NNNN, like an AVD.",
    ),
) -> None:
    """Start the device, `adb connect` to it, and serve until Ctrl-C or SIGTERM (then `adb disconnect`)."""
    from harness.emulator import EmulatedDevice

    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())  # a terminated device cleans up too
    try:
        with EmulatedDevice(
            profile, host=host, port=port, root_dir=root, register=register, as_emulator=as_emulator
        ) as device:
            typer.echo(f"emulated {device.spec.name} ({device.spec.model}) listening on {device.serial}")
            if as_emulator:
                typer.echo(
                    f"listed by the adb server's emulator scan: adb -s {device.serial} shell (or adb -e)"
                )
            elif register:
                typer.echo(f"registered with the adb server: adb -s {device.serial} shell")
            else:
                typer.echo(f"connect with: adb connect {device.serial}")
            typer.echo("this is a test device (no authentication); press Ctrl-C to stop")
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                typer.echo("stopping: adb disconnect and closing connections")
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
    """Attach the emulator group to the main app."""
    app.add_typer(emulator_app, name="emulator")
