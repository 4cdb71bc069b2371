"""Lexer and parser of the emulated device's ``sh``: POSIX shell syntax, the subset adb users type.

Supported: words with ``'single'``, ``"double"`` and backslash quoting; ``$VAR``, ``${VAR}``,
``${VAR:-default}``, ``$?``, ``$#``, ``$@``, ``$1``.., ``$(command)``, backquotes and integer
``$((arithmetic))``; redirections
``> >> < 2> 2>> 2>&1 >&2``; pipelines ``|`` and ``!``; lists with ``;``, ``&``, ``&&``, ``||`` and
newlines; ``{ ...; }`` and ``( ... )``; ``if/elif/else/fi``, ``while``/``until``, ``for x in ...``;
``NAME=value`` assignments; ``#`` comments. Not supported (a clear syntax error): functions, ``case``,
here-documents.

The parser produces a small AST (dataclasses below) that :mod:`harness.emulator.shell` executes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AndOr",
    "Assignment",
    "Command",
    "For",
    "Group",
    "If",
    "Pipeline",
    "Redirect",
    "Sequence",
    "ShellSyntaxError",
    "Simple",
    "While",
    "Word",
    "WordPart",
    "parse",
]

KEYWORDS = {"if", "then", "elif", "else", "fi", "while", "until", "do", "done", "for", "in", "{", "}", "!"}
_OPERATORS = ("&&", "||", ";;", ">>", ">&", "<&", "|", "&", ";", "<", ">", "(", ")", "\n")


class ShellSyntaxError(ValueError):
    """The command line cannot be parsed (sh reports it and exits with status 2)."""


@dataclass(frozen=True)
class WordPart:
    """A piece of a word: literal text, a variable, a command substitution or an arithmetic expansion.

    ``kind``: "text", "var" (``value`` is the name, with an optional ``default`` for ``${X:-d}``),
    "sub" (``value`` is the command source), "arith" (``value`` is the expression inside ``$((...))``).
    ``quoted`` parts are neither split nor globbed.
    """

    kind: str
    value: str
    quoted: bool
    default: str | None = None


@dataclass
class Word:
    parts: list[WordPart] = field(default_factory=list)

    def literal(self) -> str | None:
        """The word's text if it is one unquoted literal (keywords, fd numbers), else None."""
        if len(self.parts) == 1 and self.parts[0].kind == "text" and not self.parts[0].quoted:
            return self.parts[0].value
        return None


@dataclass
class Redirect:
    fd: int  # the redirected descriptor: 0 stdin, 1 stdout, 2 stderr
    op: str  # "<", ">", ">>", ">&" (dup), "<&"
    target: Word


@dataclass
class Assignment:
    name: str
    value: Word


@dataclass
class Simple:
    assignments: list[Assignment]
    words: list[Word]
    redirects: list[Redirect]


@dataclass
class Group:
    body: Sequence
    subshell: bool
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class If:
    branches: list[tuple[Sequence, Sequence]]  # (condition, body) for if and each elif
    otherwise: Sequence | None
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class While:
    condition: Sequence
    body: Sequence
    until: bool
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class For:
    variable: str
    items: list[Word] | None  # None: "$@"
    body: Sequence
    redirects: list[Redirect] = field(default_factory=list)


Command = Simple | Group | If | While | For


@dataclass
class Pipeline:
    commands: list[Command]
    negate: bool = False


@dataclass
class AndOr:
    first: Pipeline
    rest: list[tuple[str, Pipeline]]  # ("&&" | "||", pipeline)


@dataclass
class Sequence:
    items: list[tuple[AndOr, bool]]  # (and-or list, run in background)


# --- lexer -------------------------------------------------------------------------------------------
@dataclass
class _Token:
    kind: str  # "word", "op", "redir"
    word: Word | None = None
    op: str = ""
    fd: int = -1


def _read_until_matching(src: str, i: int, open_ch: str, close_ch: str) -> int:
    """Index just after the ``close_ch`` matching the ``open_ch`` before ``i`` (quotes respected)."""
    depth = 1
    while i < len(src):
        ch = src[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "'":
            end = src.find("'", i + 1)
            if end < 0:
                break
            i = end + 1
            continue
        if ch == '"':
            i = _skip_double(src, i + 1)
            continue
        if ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ShellSyntaxError(f"missing {close_ch!r}")


def _skip_double(src: str, i: int) -> int:
    while i < len(src):
        if src[i] == "\\":
            i += 2
        elif src[i] == '"':
            return i + 1
        elif src.startswith("$(", i):
            i = _read_until_matching(src, i + 2, "(", ")")
        else:
            i += 1
    raise ShellSyntaxError('unterminated "')


def _dollar(src: str, i: int, quoted: bool) -> tuple[WordPart | None, int]:
    """Parse an expansion starting at ``src[i] == "$"``; None means a literal ``$``."""
    nxt = src[i + 1] if i + 1 < len(src) else ""
    if nxt == "(":
        if src.startswith("$((", i):
            end = src.find("))", i + 3)
            if end < 0:
                raise ShellSyntaxError("missing '))'")
            return WordPart("arith", src[i + 3 : end], quoted), end + 2
        end = _read_until_matching(src, i + 2, "(", ")")
        return WordPart("sub", src[i + 2 : end - 1], quoted), end
    if nxt == "{":
        end = src.find("}", i + 2)
        if end < 0:
            raise ShellSyntaxError("missing '}'")
        body = src[i + 2 : end]
        name, sep, default = body.partition(":-")
        if not (name.isidentifier() or name.isdigit() or name in "?#@*$"):
            raise ShellSyntaxError(f"${{{body}}}: bad substitution")
        return WordPart("var", name, quoted, default if sep else None), end + 1
    if nxt and nxt in "?#@*$!0123456789":
        return WordPart("var", nxt, quoted), i + 2
    j = i + 1
    while j < len(src) and (src[j].isalnum() or src[j] == "_"):
        j += 1
    if j == i + 1 or src[i + 1].isdigit():
        return None, i + 1
    return WordPart("var", src[i + 1 : j], quoted), j


def tokenize(src: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    word: Word | None = None
    text: list[str] = []  # pending unquoted literal characters

    def flush_text(quoted: bool = False) -> None:
        nonlocal word
        if text:
            word = word or Word()
            word.parts.append(WordPart("text", "".join(text), quoted))
            text.clear()

    def add_part(part: WordPart) -> None:
        nonlocal word
        flush_text()
        word = word or Word()
        word.parts.append(part)

    def end_word() -> None:
        nonlocal word
        flush_text()
        if word is not None:
            tokens.append(_Token("word", word=word))
            word = None

    while i < len(src):
        ch = src[i]
        if ch in " \t":
            end_word()
            i += 1
        elif ch == "#" and word is None and not text:
            while i < len(src) and src[i] != "\n":
                i += 1
        elif ch == "\\":
            if i + 1 < len(src) and src[i + 1] == "\n":
                i += 2
                continue
            add_part(WordPart("text", src[i + 1 : i + 2], True))
            i += 2
        elif ch == "'":
            end = src.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError("unterminated '")
            add_part(WordPart("text", src[i + 1 : end], True))
            i = end + 1
        elif ch == '"':
            flush_text()
            word = word or Word()
            i = _lex_double(src, i + 1, word)
        elif ch == "`":
            end = src.find("`", i + 1)
            if end < 0:
                raise ShellSyntaxError("unterminated `")
            add_part(WordPart("sub", src[i + 1 : end], False))
            i = end + 1
        elif ch == "$":
            part, i2 = _dollar(src, i, quoted=False)
            if part is None:
                text.append("$")
            else:
                add_part(part)
            i = i2
        elif ch in "|&;<>()\n":
            if src.startswith("<<", i):
                raise ShellSyntaxError("here-documents (<<) are not supported; use printf '...' | cmd")
            op = next(o for o in _OPERATORS if src.startswith(o, i))
            if op in ("<", ">", ">>", ">&", "<&"):
                fd = -1
                if word is None and text and "".join(text).isdigit():
                    fd = int("".join(text))
                    text.clear()
                else:
                    end_word()
                if fd < 0:
                    fd = 0 if op.startswith("<") else 1
                tokens.append(_Token("redir", op=op, fd=fd))
            else:
                end_word()
                tokens.append(_Token("op", op=op))
            i += len(op)
        else:
            text.append(ch)
            i += 1
    end_word()
    return tokens


def _lex_double(src: str, i: int, word: Word) -> int:
    buf: list[str] = []

    def flush() -> None:
        if buf:
            word.parts.append(WordPart("text", "".join(buf), True))
            buf.clear()

    while i < len(src):
        ch = src[i]
        if ch == '"':
            flush()
            if not word.parts:
                word.parts.append(WordPart("text", "", True))
            return i + 1
        if ch == "\\" and i + 1 < len(src) and src[i + 1] in '$`"\\\n':
            buf.append(src[i + 1])
            i += 2
        elif ch == "$":
            part, i = _dollar(src, i, quoted=True)
            if part is None:
                buf.append("$")
            else:
                flush()
                word.parts.append(part)
        elif ch == "`":
            end = src.find("`", i + 1)
            if end < 0:
                raise ShellSyntaxError("unterminated `")
            flush()
            word.parts.append(WordPart("sub", src[i + 1 : end], True))
            i = end + 1
        else:
            buf.append(ch)
            i += 1
    raise ShellSyntaxError('unterminated "')


# --- parser ------------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def peek_keyword(self) -> str | None:
        tok = self.peek()
        if tok is not None and tok.kind == "word" and tok.word is not None:
            lit = tok.word.literal()
            if lit in KEYWORDS:
                return lit
        return None

    def peek_op(self) -> str | None:
        tok = self.peek()
        return tok.op if tok is not None and tok.kind == "op" else None

    def expect_keyword(self, keyword: str) -> None:
        if self.peek_keyword() != keyword:
            got = self._describe(self.peek())
            raise ShellSyntaxError(f"syntax error: {got} unexpected (expecting {keyword!r})")
        self.pos += 1

    @staticmethod
    def _describe(tok: _Token | None) -> str:
        if tok is None:
            return "end of file"
        if tok.kind == "word" and tok.word is not None:
            return repr(tok.word.literal() or "word")
        return repr(tok.op if tok.op != "\n" else "newline")

    def skip_newlines(self) -> None:
        while self.peek_op() in ("\n", ";") and self.peek_op() == "\n":
            self.pos += 1

    def parse_sequence(self, terminators: tuple[str, ...] = ()) -> Sequence:
        items: list[tuple[AndOr, bool]] = []
        while True:
            while self.peek_op() in ("\n", ";"):
                self.pos += 1
            tok = self.peek()
            if tok is None or self.peek_keyword() in terminators or self.peek_op() == ")":
                break
            and_or = self.parse_and_or()
            background = False
            if self.peek_op() == "&":
                background = True
                self.pos += 1
            elif self.peek_op() in (";", "\n"):
                self.pos += 1
            items.append((and_or, background))
        return Sequence(items)

    def parse_and_or(self) -> AndOr:
        first = self.parse_pipeline()
        rest: list[tuple[str, Pipeline]] = []
        while self.peek_op() in ("&&", "||"):
            op = self.peek_op() or ""
            self.pos += 1
            self.skip_newlines()
            rest.append((op, self.parse_pipeline()))
        return AndOr(first, rest)

    def parse_pipeline(self) -> Pipeline:
        negate = False
        if self.peek_keyword() == "!":
            negate = True
            self.pos += 1
        commands = [self.parse_command()]
        while self.peek_op() == "|":
            self.pos += 1
            self.skip_newlines()
            commands.append(self.parse_command())
        return Pipeline(commands, negate)

    def parse_command(self) -> Command:
        keyword = self.peek_keyword()
        command: Command
        if keyword == "if":
            command = self.parse_if()
        elif keyword in ("while", "until"):
            self.pos += 1
            condition = self.parse_sequence(("do",))
            self.expect_keyword("do")
            body = self.parse_sequence(("done",))
            self.expect_keyword("done")
            command = While(condition, body, until=keyword == "until")
        elif keyword == "for":
            command = self.parse_for()
        elif keyword == "{":
            self.pos += 1
            body = self.parse_sequence(("}",))
            self.expect_keyword("}")
            command = Group(body, subshell=False)
        elif self.peek_op() == "(":
            self.pos += 1
            body = self.parse_sequence()
            if self.peek_op() != ")":
                raise ShellSyntaxError("syntax error: missing ')'")
            self.pos += 1
            command = Group(body, subshell=True)
        elif keyword in KEYWORDS:
            raise ShellSyntaxError(f"syntax error: {keyword!r} unexpected")
        else:
            return self.parse_simple()
        command.redirects.extend(self.parse_redirects())
        return command

    def parse_if(self) -> If:
        self.expect_keyword("if")
        branches: list[tuple[Sequence, Sequence]] = []
        otherwise: Sequence | None = None
        while True:
            condition = self.parse_sequence(("then",))
            self.expect_keyword("then")
            body = self.parse_sequence(("elif", "else", "fi"))
            branches.append((condition, body))
            keyword = self.peek_keyword()
            self.pos += 1
            if keyword == "elif":
                continue
            if keyword == "else":
                otherwise = self.parse_sequence(("fi",))
                self.expect_keyword("fi")
            elif keyword != "fi":
                raise ShellSyntaxError("syntax error: 'fi' missing")
            return If(branches, otherwise)

    def parse_for(self) -> For:
        self.expect_keyword("for")
        tok = self.peek()
        name = tok.word.literal() if tok is not None and tok.word is not None else None
        if not name or not name.isidentifier():
            raise ShellSyntaxError("syntax error: bad for loop variable")
        self.pos += 1
        items: list[Word] | None = None
        while self.peek_op() == "\n":
            self.pos += 1
        if self.peek_keyword() == "in":
            self.pos += 1
            items = []
            while (tok := self.peek()) is not None and tok.kind == "word" and tok.word is not None:
                if tok.word.literal() == "do":
                    break
                items.append(tok.word)
                self.pos += 1
        while self.peek_op() in (";", "\n"):
            self.pos += 1
        self.expect_keyword("do")
        body = self.parse_sequence(("done",))
        self.expect_keyword("done")
        return For(name, items, body)

    def parse_redirects(self) -> list[Redirect]:
        redirects = []
        while (tok := self.peek()) is not None and tok.kind == "redir":
            self.pos += 1
            target = self.peek()
            if target is None or target.kind != "word" or target.word is None:
                raise ShellSyntaxError(f"syntax error: redirection {tok.op} without a target")
            self.pos += 1
            redirects.append(Redirect(tok.fd, tok.op, target.word))
        return redirects

    def parse_simple(self) -> Simple:
        assignments: list[Assignment] = []
        words: list[Word] = []
        redirects: list[Redirect] = []
        while (tok := self.peek()) is not None:
            if tok.kind == "redir":
                redirects.extend(self.parse_redirects())
                continue
            if tok.kind != "word" or tok.word is None:
                break
            assignment = _as_assignment(tok.word) if not words else None
            if assignment is not None:
                assignments.append(assignment)
            else:
                words.append(tok.word)
            self.pos += 1
        if not (assignments or words or redirects):
            raise ShellSyntaxError(f"syntax error: {self._describe(self.peek())} unexpected")
        return Simple(assignments, words, redirects)


def _as_assignment(word: Word) -> Assignment | None:
    first = word.parts[0]
    if first.kind != "text" or first.quoted or "=" not in first.value:
        return None
    name, _, rest = first.value.partition("=")
    if not name.isidentifier():
        return None
    value_parts = ([WordPart("text", rest, False)] if rest else []) + word.parts[1:]
    return Assignment(name, Word(value_parts))


def parse(src: str) -> Sequence:
    """Parse a command line / script into a :class:`Sequence`; raises :class:`ShellSyntaxError`."""
    parser = _Parser(tokenize(src))
    sequence = parser.parse_sequence()
    if parser.peek() is not None:
        raise ShellSyntaxError(f"syntax error: {parser._describe(parser.peek())} unexpected")
    return sequence
