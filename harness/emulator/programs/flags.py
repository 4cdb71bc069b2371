"""``--name=value`` command-line flags as TensorFlow Lite's tools parse them (``tflite::Flags``).

Values must be attached with ``=``; booleans accept ``true``/``false``/``1``/``0``. Unknown flags are
reported by name ("Unconsumed cmdline flags") so a typo never goes unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Flag", "FlagError", "parse_flags"]


class FlagError(ValueError):
    """A flag that is unknown or whose value does not parse."""


def _to_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(text)


@dataclass(frozen=True)
class Flag:
    name: str
    kind: Callable[[str], Any]  # int, float, str or bool
    default: Any
    help: str = ""

    def parse(self, text: str) -> Any:
        convert = _to_bool if self.kind is bool else self.kind
        try:
            return convert(text)
        except ValueError:
            raise FlagError(f"Failed to parse flag '{self.name}' against argument '{text}'") from None


def parse_flags(args: list[str], flags: list[Flag]) -> tuple[dict[str, Any], set[str]]:
    """Values for every flag (defaults filled in) and the names given explicitly."""
    table = {flag.name: flag for flag in flags}
    values = {flag.name: flag.default for flag in flags}
    given: set[str] = set()
    unknown: list[str] = []
    for arg in args:
        name, sep, text = arg.lstrip("-").partition("=")
        flag = table.get(name)
        if not arg.startswith("-") or flag is None or (not sep and flag.kind is not bool):
            unknown.append(arg)
            continue
        values[name] = flag.parse(text) if sep else True
        given.add(name)
    if unknown:
        raise FlagError("Unconsumed cmdline flags: " + " ".join(unknown))
    return values, given
