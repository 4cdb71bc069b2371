"""``--name=value`` command-line flags as TensorFlow Lite's tools parse them (``tflite::Flags``).

Values must be attached with ``=``; booleans accept ``true``/``false``/``1``/``0``. Unknown flags are
reported by name ("Unconsumed cmdline flags") so a typo never goes unnoticed. :func:`usage` renders the
flag table that ``--help`` prints (``tflite::Flags::Usage``: ``--name=default``, type, optional, help).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Flag", "FlagError", "parse_flags", "usage"]


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
            raise FlagError(
                f"Failed to parse flag '{self.name}' against argv '--{self.name}={text}'"
            ) from None

    @property
    def type_name(self) -> str:
        """The C++ type ``--help`` shows (``int32``, ``float``, ``bool``, ``string``)."""
        return {int: "int32", float: "float", bool: "bool"}.get(self.kind, "string")  # type: ignore[call-overload]

    @property
    def default_for_display(self) -> str:
        """The default as ``std::ostream`` prints it (``false``, ``0.5``, ``150``)."""
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if isinstance(self.default, float):
            return f"{self.default:.6g}"
        return str(self.default)


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


def usage(cmdline: str, flags: list[Flag]) -> str:
    """The text of ``tflite::Flags::Usage``: a ``usage:`` line, then one tab-separated row per flag."""
    names = [f"--{flag.name}={flag.default_for_display}" for flag in flags]
    width = max((len(name) for name in names), default=0)
    rows = "".join(
        f"\t{name:<{width}}\t{flag.type_name}\toptional\t{flag.help}\n"
        for name, flag in zip(names, flags, strict=True)
    )
    return f"usage: {cmdline} <flags>\nFlags:\n{rows}"
