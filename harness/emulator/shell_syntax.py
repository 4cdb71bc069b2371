"""Tokenizer and parser of the emulated device's ``sh``: the command lines adb clients and users type.

Supported: words with ``'single'``, ``"double"`` and backslash quoting (what ``shlex.quote`` and
adbutils produce); ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``$?``, ``$#``, ``$@``, ``$0``..``$9``
(expanded when the command runs, see :func:`expand`); redirections ``> >> < 2> 2>> 2>&1 >&2`` (any
``N>``, ``N>&M``); pipelines ``|`` and ``!``; lists with ``;``, ``&&``, ``||`` and newlines;
``NAME=value`` assignments; ``#`` comments. Everything else is a clear syntax error (status 2):
control flow (``if``, ``for``, ``while`` ...), ``( )`` and ``{ }``, background ``&``, here-documents,
``$(...)`` and backquotes.

Why not :mod:`shlex` (``punctuation_chars=True``, ``whitespace_split=True``): it splits these lines
into the right words, but drops what the shell needs afterwards: a quoted ``';'`` or ``'a|b'`` comes
back as the same token as the operator, ``'$HOME'`` the same as ``"$HOME"`` (posix mode strips the
quotes; non-posix mode keeps them but has no backslash escapes and splits ``a"b c"d``), ``echo 2>f``
the same as ``echo 2 >f``, and ``a#b`` is cut at the ``#``. Two regular expressions do the whole job.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Command", "CommandList", "Pipeline", "Redirect", "ShellSyntaxError", "expand", "parse"]


class ShellSyntaxError(ValueError):
    """The command line cannot be parsed (sh reports it and exits with status 2)."""


@dataclass
class Redirect:
    fd: int  # the redirected descriptor: 0 stdin, 1 stdout, 2 stderr
    op: str  # "<", ">", ">>", ">&" or "<&" (duplicate the descriptor named by target)
    target: str  # raw word


@dataclass
class Command:
    """A simple command; words are raw (quotes still in), :func:`expand` turns them into arguments."""

    assignments: list[tuple[str, str]] = field(default_factory=list)  # (name, raw value)
    words: list[str] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.assignments or self.words or self.redirects)


@dataclass
class Pipeline:
    commands: list[Command] = field(default_factory=list)
    negate: bool = False


@dataclass
class CommandList:
    """Pipelines joined left to right: each runs after ``;`` always, after ``&&`` / ``||`` on status."""

    items: list[tuple[str, Pipeline]] = field(default_factory=list)  # (";" | "&&" | "||", pipeline)


_TOKEN = re.compile(
    r"""[ \t]*(?:
        (?P<comment>\#[^\n]*)
      | (?P<heredoc><<)
      | (?P<fd>\d*)(?P<redir>>>|>&|<&|>|<)
      | (?P<op>&&|\|\||[|;&()\n])
      | (?P<word>(?:[^ \t\n'"\\|;&<>()`]|\\.|'[^']*'|"(?:[^"\\]|\\.)*")+)
      | (?P<end>\Z)
    )""",
    re.VERBOSE | re.DOTALL,
)
_ASSIGNMENT = re.compile(r"([A-Za-z_]\w*)=(.*)", re.DOTALL)
_RESERVED = {"if", "then", "elif", "else", "fi", "for", "while", "until", "do", "done", "case", "esac"}
_RESERVED |= {"function", "{", "}", "select"}
_UNSUPPORTED = {
    "`": " (no command substitution)",
    "&": " (no background jobs)",
    "(": " (no subshells or $(...))",
    ")": " (no subshells or $(...))",
}


def _tokens(src: str) -> list[tuple[str, str, int]]:
    """(kind, text, fd) for every token: kinds "word", "redir" (text is the operator) and "op"."""
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while True:
        match = _TOKEN.match(src, pos)
        if match is None:
            rest = src[pos:].lstrip(" \t")
            what = (
                "unterminated quoted string"
                if rest[:1] in ("'", '"')
                else f"{rest[:1]!r} unexpected{_UNSUPPORTED.get(rest[:1], '')}"
            )
            raise ShellSyntaxError(f"syntax error: {what}")
        if match.group("end") is not None:
            return tokens
        pos = match.end()
        if match.group("heredoc"):
            raise ShellSyntaxError("here-documents (<<) are not supported; use printf '...' | cmd")
        if match.group("redir"):
            op = match.group("redir")
            fd = match.group("fd")
            tokens.append(("redir", op, int(fd) if fd else (0 if op.startswith("<") else 1)))
        elif match.group("op"):
            tokens.append(("op", match.group("op"), -1))
        elif match.group("word"):
            tokens.append(("word", match.group("word"), -1))


def parse(src: str) -> CommandList:
    """Parse a command line into a :class:`CommandList`; raises :class:`ShellSyntaxError`."""
    result = CommandList()
    connector = ";"
    pipeline, command = Pipeline(), Command()
    redirect: tuple[str, int] | None = None  # a redirection waiting for its target
    for kind, text, fd in _tokens(src):
        if redirect is not None:
            if kind != "word":
                raise ShellSyntaxError(f"syntax error: redirection {redirect[0]} without a target")
            command.redirects.append(Redirect(redirect[1], redirect[0], text))
            redirect = None
        elif kind == "redir":
            redirect = (text, fd)
        elif kind == "word":
            if not command.words and text in _RESERVED:
                raise ShellSyntaxError(f"syntax error: {text!r} (control flow is not supported)")
            if text == "!" and command.empty() and not pipeline.commands:
                pipeline.negate = not pipeline.negate
            elif not command.words and (assignment := _ASSIGNMENT.fullmatch(text)):
                command.assignments.append((assignment.group(1), assignment.group(2)))
            else:
                command.words.append(text)
        elif text == "|" and not command.empty():
            pipeline.commands.append(command)
            command = Command()
        elif text in (";", "\n", "&&", "||") and not command.empty():
            pipeline.commands.append(command)
            result.items.append((connector, pipeline))
            connector = ";" if text in (";", "\n") else text
            pipeline, command = Pipeline(), Command()
        elif text == "\n" and not pipeline.commands and not pipeline.negate:
            continue  # a blank line, or a line break after && / ||
        else:
            raise ShellSyntaxError(f"syntax error: {text!r} unexpected{_UNSUPPORTED.get(text, '')}")
    if redirect is not None:
        raise ShellSyntaxError(f"syntax error: redirection {redirect[0]} without a target")
    if not command.empty():
        pipeline.commands.append(command)
        result.items.append((connector, pipeline))
    elif pipeline.commands or pipeline.negate or connector != ";":
        raise ShellSyntaxError("syntax error: unexpected end of file")
    return result


# --- expansion ---------------------------------------------------------------------------------------
_PIECE = re.compile(
    r"""'(?P<single>[^']*)'|"(?P<double>(?:[^"\\]|\\.)*)"|\\(?P<escaped>.)|(?P<plain>[^'"\\]+)""",
    re.DOTALL,
)
_VARIABLE = r"\$(?:\{(\w+|[?#@*$])(?::-([^}]*))?\}|([A-Za-z_]\w*|[?#@*$0-9]))"
_UNQUOTED = re.compile(_VARIABLE)
_DOUBLE = re.compile(r"""\\([$`"\\\n])|""" + _VARIABLE)  # escapes inside "..." come first
_GLOB_CHARS = re.compile(r"[*?[]")


def expand(raw: str, lookup: Callable[[str], str]) -> tuple[str, str | None, bool]:
    """Remove the quotes of one raw word and expand its variables (not inside ``'single'`` quotes).

    Returns ``(text, glob, quoted)``: ``glob`` is an fnmatch pattern when an unquoted ``* ? [`` appears
    (quoted ones are escaped in it), else None; ``quoted`` says whether any part was quoted (an empty
    unquoted word is then no argument at all, as in sh).
    """

    def substitute(match: re.Match[str]) -> str:
        if match.re is _DOUBLE and match.group(1) is not None:
            return "" if match.group(1) == "\n" else match.group(1)
        groups = match.groups()[-3:]
        found = lookup(groups[0] or groups[2])
        return found if found or groups[1] is None else groups[1]

    text: list[str] = []
    pattern: list[str] = []
    globbed = quoted = False
    for piece in _PIECE.finditer(raw):
        kind = piece.lastgroup
        value = piece.group(kind or "plain")
        if kind == "plain":
            expanded = _UNQUOTED.sub(substitute, value)
            text.append(expanded)
            pattern.append(expanded)
            globbed = globbed or bool(_GLOB_CHARS.search(value))
            continue
        literal = _DOUBLE.sub(substitute, value) if kind == "double" else value
        if kind == "escaped" and value == "\n":
            literal = ""  # a line continuation
        quoted = True
        text.append(literal)
        pattern.append(_GLOB_CHARS.sub(lambda m: f"[{m.group(0)}]", literal))
    return "".join(text), "".join(pattern) if globbed else None, quoted
