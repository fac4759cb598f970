"""Read OpenWrt UCI config files as libuci does (openwrt/uci file.c, list.c).

Pure parsing: `parse()` turns text into an immutable `Package`; only `load()` touches
the file system. Errors raise `ConfigError` with path and line. The reader is strict
like libuci's default context (netifd's): any parse error refuses the whole file.

Behaviour taken from file.c that a simpler tokenizer gets wrong:
- a command word ends at a space or tab only, so `config\\n` or `option;` is invalid;
- an unquoted token ending in `;` with no quote or backslash in it ends the whole
  line there (uci writes the token's terminator over the `;`); after a quoted or
  escaped token the `;` separates commands;
- `option NAME` with no value does nothing; `list NAME` with no value adds '';
- values keep any byte (control characters, a CR inside a quoted CRLF value);
- a NUL byte drops the rest of its line and joins the next one (fgets + strlen).
"""

import errno
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..core.errors import ConfigError
from .uci_syntax import SKIP, SPACE, Reader

OptionValue = str | tuple[str, ...]  # a tuple for `list` options
MAX_BYTES = 1 << 20  # larger files are refused: real ones are a few KiB

_NAME = re.compile(r"[A-Za-z0-9_]+")  # section and option names
_PACKAGE = re.compile(r"[A-Za-z0-9_-]+")
_TYPE = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space
_EXT_REF = re.compile(r"@([^\[]*)\[([+-]?[0-9]+)\]")  # @type[N] or @[N]
_NUL = re.compile(r"\x00[^\n]*\n?")
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
class _Draft:  # a section while it is being parsed; lists stay mutable until the end
    type: str
    name: str | None
    line: int
    options: dict[str, str | list[str]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)


def _config(rd: Reader, drafts: list[_Draft], named: dict[str, _Draft], at: int) -> _Draft:
    """Parse `config <type> [name]` and return the section it opens."""
    type_ = rd.arg()
    if not type_:
        raise rd.error("insufficient arguments")
    if not _TYPE.fullmatch(type_):
        raise rd.error(f"invalid section type {type_!r}")
    name = rd.arg()
    if name and not _NAME.fullmatch(name):
        raise rd.error(f"invalid section name {name!r}")
    _end_command(rd)
    old = named.get(name) if name else None
    if old is not None:  # a repeated named section merges into the first one
        if old.type != type_:
            msg = f"section {name!r} has type {old.type!r} (line {old.line}), not {type_!r}"
            raise rd.error(msg, at)
        return old
    sec = _Draft(type_, name or None, at)  # a missing or '' name: anonymous
    drafts.append(sec)
    if name:
        named[name] = sec
    return sec


def _option(rd: Reader, sec: _Draft, is_list: bool, at: int) -> None:
    """Parse `option|list <name> [value]` into `sec`, with list.c's rules."""
    name = rd.arg()
    if not name:
        raise rd.error("insufficient arguments")
    if not _NAME.fullmatch(name):
        raise rd.error(f"invalid option name {name!r}")
    value = rd.arg()
    _end_command(rd)
    old = sec.options.get(name)
    if is_list:
        if isinstance(old, list):
            old.append(value)  # appending keeps the list's place
        else:
            sec.options.pop(name, None)  # a new list goes last, an option's value first
            sec.options[name] = [value] if old is None else [old, value]
    elif not value:
        return  # uci_set: an empty value changes nothing
    elif value == old:
        sec.lines[name] = at  # the same value keeps its place
        return
    else:
        sec.options.pop(name, None)  # a changed option is re-created at the end
        sec.options[name] = value
    sec.lines[name] = at


def _end_command(rd: Reader) -> None:
    if rd.arg():
        raise rd.error("too many arguments")


def _parse_line(rd: Reader, drafts: list[_Draft], named: dict[str, _Draft],
                current: _Draft | None) -> _Draft | None:
    rd.skip_space()
    while True:
        at = rd.line
        word, blank = rd.word()
        if not word or word[0] == "#":
            return current
        command = _COMMANDS.get(word)
        if command is None:
            bare = word.rstrip(SPACE)
            if bare in _COMMANDS:
                raise rd.error(f"'{bare}' without arguments")
            hint = " (a byte order mark?)" if word[0] == "\ufeff" else ""
            raise rd.error(f"invalid command {bare!r}{hint}")
        if command in ("option", "list") and current is None:
            raise rd.error(f"'{word}' before the first 'config' section")
        if not blank:
            raise rd.error(f"'{word}' without arguments")
        rd.pos += 1
        if command == "package":  # accepted, checked, otherwise ignored
            name = rd.arg()
            if not name:
                raise rd.error("insufficient arguments")
            if not _PACKAGE.fullmatch(name):
                raise rd.error(f"invalid package name {name!r}")
            _end_command(rd)
        elif command == "config":
            current = _config(rd, drafts, named, at)
        else:
            assert current is not None
            _option(rd, current, command == "list", at)


def parse(text: str, path: str = "<string>") -> Package:
    """Parse UCI text; raises ConfigError naming `path` and the line."""
    if "\x00" in text:
        text = _NUL.sub("", text)
    rd = Reader(text, path)
    drafts: list[_Draft] = []
    named: dict[str, _Draft] = {}
    current: _Draft | None = None
    while True:
        blank = text.rfind("\n", rd.nxt, SKIP.match(text, rd.nxt).end()) + 1  # type: ignore[union-attr]
        if blank > rd.nxt:  # a fast path over blank lines
            rd.line += text.count("\n", rd.nxt, blank)
            rd.nxt = blank
        if not rd.next_line():
            break
        current = _parse_line(rd, drafts, named, current)
    counts: dict[str, int] = {}
    sections = []
    for d in drafts:
        counts[d.type] = counts.get(d.type, -1) + 1
        opts = {k: tuple(v) if isinstance(v, list) else v for k, v in d.options.items()}
        sections.append(Section(d.type, d.name, counts[d.type], d.line,
                                MappingProxyType(opts), MappingProxyType(d.lines)))
    return Package(path, tuple(sections))


def read_bytes(path: str, limit: int = MAX_BYTES) -> bytes:
    """A regular file's bytes; never blocks on a FIFO or device; ConfigError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        reason = e.strerror or str(e)
        if e.errno == errno.ENOENT and os.path.islink(path):
            reason = "dangling symbolic link"
        raise ConfigError(f"cannot read: {reason}", path) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("cannot read: not a regular file", path)
        if info.st_size > limit:
            raise ConfigError(f"refused: {info.st_size} bytes, the limit is {limit}", path)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ConfigError(f"refused: more than {limit} bytes", path)
        return b"".join(chunks)
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror or e}", path) from None
    finally:
        os.close(fd)


def load(path: str) -> Package:
    """Read and parse a UCI file. Bytes that are not UTF-8 are kept (surrogateescape)."""
    return parse(read_bytes(path).decode("utf-8", "surrogateescape"), path)
