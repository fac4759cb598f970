"""Read OpenWrt UCI config files with the same grammar as libuci (file.c).

Pure parsing: `parse()` turns text into an immutable `Package`; only `load()` touches
the file system. Every problem in the input raises `ConfigError` with path and line.
"""

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .errors import ConfigError

OptionValue = str | tuple[str, ...]  # a tuple for `list` options

_NAME = re.compile(r"[A-Za-z0-9_]+")  # section and option names
_PACKAGE = re.compile(r"[A-Za-z0-9_-]+")
_TYPE = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space
_BAD_VALUE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # control chars but TAB, LF, CR
_EXT_REF = re.compile(r"@([^\[]*)\[([+-]?[0-9]+)\]")  # @type[N] or @[N]
_BLANK = " \t\r\v\f"  # whitespace inside a line; LF ends a command
_COMMANDS = {w: w for w in ("package", "config", "option", "list")}
_COMMANDS |= {w[0]: w for w in _COMMANDS}  # one-letter forms: p, c, o, l


@dataclass(frozen=True, slots=True)
class Section:
    """One `config` section; `options` is in the order uci would export it."""

    type: str
    name: str | None  # None for anonymous sections
    index: int  # position among sections of the same type
    line: int  # line of the `config` statement
    options: Mapping[str, OptionValue]
    option_lines: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def anonymous(self) -> bool:
        return self.name is None

    @property
    def ref(self) -> str:
        return self.name if self.name is not None else f"@{self.type}[{self.index}]"

    def get(self, option: str, default: str | None = None) -> str | None:
        value = self.options.get(option, default)
        return " ".join(value) if isinstance(value, tuple) else value  # like config_get

    def get_list(self, option: str) -> tuple[str, ...]:
        value = self.options.get(option, ())
        return (value,) if isinstance(value, str) else value

    def line_of(self, option: str) -> int:
        return self.option_lines.get(option, self.line)


@dataclass(frozen=True, slots=True)
class Package:
    """A parsed UCI file: its sections in file order."""

    path: str
    sections: tuple[Section, ...]

    def by_type(self, type: str) -> list[Section]:
        return [s for s in self.sections if s.type == type]

    def find(self, ref: str) -> Section | None:
        """Look up `name`, `@type[N]` or `@[N]`; a negative N counts from the end."""
        m = _EXT_REF.fullmatch(ref)
        if m is None:
            return next((s for s in self.sections if s.name == ref), None)
        pool = self.by_type(m[1]) if m[1] else list(self.sections)
        index = int(m[2])
        return pool[index] if -len(pool) <= index < len(pool) else None


@dataclass(slots=True)
class _Draft:  # a section while it is being parsed
    type: str
    name: str | None
    line: int
    options: dict[str, OptionValue] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)


class _Lexer:
    """Cursor over the text; positions index into it, lines are 1-based."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 0
        self.start = 0  # where the last token began
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(self, pos: int | None = None) -> int:
        return bisect_right(self._line_starts, self.pos if pos is None else pos)

    def error(self, message: str, pos: int | None = None) -> ConfigError:
        return ConfigError(message, self.path, self.line(pos))

    def skip_blanks(self) -> bool:
        """Skip whitespace within the line; False at the end of the text."""
        while self.pos < len(self.text) and self.text[self.pos] in _BLANK:
            self.pos += 1
        return self.pos < len(self.text)

    def skip_comment(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end

    def word(self) -> str:
        """The raw command word: uci splits it off at whitespace, no quoting."""
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _BLANK + "\n":
            self.pos += 1
        return self.text[start : self.pos]

    def token(self) -> str | None:
        """The next argument, or None if the command ends here."""
        self.skip_blanks()
        self.start = self.pos
        text, out, quoted = self.text, list[str](), False
        while self.pos < len(text):
            c = text[self.pos]
            if c in "'\"":
                out.append(self._quoted(c))
                quoted = True
            elif c == "\\":
                nxt = text[self.pos + 1 : self.pos + 2]
                self.pos += 2
                if nxt and nxt != "\n":
                    out.append(nxt)
                elif not out and not quoted:  # backslash-newline only joins lines
                    self.start = self.pos  # so errors name the line where the text is
            elif c == "#":
                self.skip_comment()
                break
            elif c in _BLANK or c in "\n;":
                break
            else:
                out.append(c)
                self.pos += 1
        return "".join(out) if out or quoted else None

    def _quoted(self, quote: str) -> str:
        """A '...' (fully literal) or "..." (backslash keeps the next char) string."""
        text, start, out = self.text, self.pos, list[str]()
        self.pos += 1
        while self.pos < len(text):
            c = text[self.pos]
            if c == quote:
                self.pos += 1
                return "".join(out)
            if c == "\\" and quote == '"':
                nxt = text[self.pos + 1 : self.pos + 2]
                if nxt != "\n":  # backslash-newline joins lines
                    out.append(nxt)
                self.pos += 2
                continue
            out.append(c)
            self.pos += 1
        raise self.error(f"unterminated {quote} quote", start)

    def required(self) -> str:
        tok = self.token()
        if tok is None:
            raise self.error("insufficient arguments")
        return tok

    def end_command(self) -> None:
        if self.token() is not None:
            raise self.error("too many arguments", self.start)
        if self.text.startswith(";", self.pos):
            self.pos += 1


def _config(lx: _Lexer, drafts: list[_Draft], named: dict[str, _Draft], at: int) -> _Draft:
    """Parse `config <type> [name]` and return the section it opens."""
    type_ = lx.required()
    if not _TYPE.fullmatch(type_):
        raise lx.error(f"invalid section type {type_!r}", lx.start)
    name = lx.token()
    if name and not _NAME.fullmatch(name):
        raise lx.error(f"invalid section name {name!r}", lx.start)
    old = named.get(name) if name else None
    if old is not None:  # a repeated named section merges into the first one
        if old.type != type_:
            msg = f"section {name!r} has type {old.type!r} (line {old.line}), not {type_!r}"
            raise lx.error(msg, at)
        return old
    sec = _Draft(type_, name or None, lx.line(at))  # a missing or '' name: anonymous
    drafts.append(sec)
    if name:
        named[name] = sec
    return sec


def _option(lx: _Lexer, sec: _Draft, is_list: bool, at: int) -> None:
    """Parse `option|list <name> <value>` into `sec`, with uci's overwrite rules."""
    name = lx.required()
    if not _NAME.fullmatch(name):
        raise lx.error(f"invalid option name {name!r}", lx.start)
    value = lx.token()
    if value is None:
        raise lx.error("insufficient arguments")
    if _BAD_VALUE.search(value):
        raise lx.error("invalid control character in value", lx.start)
    if not is_list and not value:
        return  # uci ignores `option x ''`
    old = sec.options.get(name)
    appending = is_list and isinstance(old, tuple)
    new: OptionValue = value
    if is_list:  # an `option` turns into a list with its value first
        items = old if isinstance(old, tuple) else () if old is None else (old,)
        new = (*items, value)
    if new != old and not appending:
        sec.options.pop(name, None)  # uci re-creates a changed option at the end
    sec.options[name] = new  # appending to a list keeps its place
    sec.lines[name] = lx.line(at)


def parse(text: str, path: str = "<string>") -> Package:
    """Parse UCI text; raises ConfigError naming `path` and the line."""
    lx = _Lexer(text.replace("\r\n", "\n"), path)
    drafts: list[_Draft] = []
    named: dict[str, _Draft] = {}
    current: _Draft | None = None
    while lx.skip_blanks():
        if lx.text[lx.pos] in "#\n":  # comment or end of line
            lx.skip_comment()
            lx.pos += 1
            continue
        at = lx.pos
        word = lx.word()
        command = _COMMANDS.get(word)
        if command is None:
            raise lx.error(f"invalid command {word!r}", at)
        if command == "package":  # accepted, checked, otherwise ignored
            name = lx.required()
            if not _PACKAGE.fullmatch(name):
                raise lx.error(f"invalid package name {name!r}", lx.start)
        elif command == "config":
            current = _config(lx, drafts, named, at)
        elif current is None:
            raise lx.error(f"'{word}' before the first 'config' section", at)
        else:
            _option(lx, current, command == "list", at)
        lx.end_command()
    counts: dict[str, int] = {}
    sections = []
    for d in drafts:
        counts[d.type] = counts.get(d.type, -1) + 1
        options, lines = MappingProxyType(d.options), MappingProxyType(d.lines)
        sections.append(Section(d.type, d.name, counts[d.type], d.line, options, lines))
    return Package(path, tuple(sections))


def load(path: str) -> Package:
    """Read and parse a UCI file (UTF-8); a missing or unreadable file is a ConfigError."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror or e}", path) from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError("not valid UTF-8", path, data.count(b"\n", 0, e.start) + 1) from e
    return parse(text, path)
