"""The daemon's settings on a Linux host (/etc/wg-endpointd/wg-endpointd.toml), read into
the same `uci.Package` the UCI file gives, so that one options table (core/options.py)
and the same readers (ownfile, overrides, groupconf) check both, with file:line.

`[globals]` is one table; `[[peer]]` and `[[group]]` are arrays of tables, counted from 0
(`@peer[0]`, as anonymous UCI sections). Booleans are TOML booleans, times are numbers,
lists are arrays of strings (a single string is taken as a list of one); any other TOML
type for a known option is a one-line error with its line. tomllib gives no lines for
values, so `_scan` finds the line of each table header and key in the text. Pure, except
`load()`.
"""

from __future__ import annotations

import re
import tomllib
from types import MappingProxyType
from typing import Any

from ..core.errors import ConfigError
from ..core.options import SECTIONS, Option
from . import uci

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r"\"(?:[^\"\\]|\\.)*\"|'[^']*'"
_KEY = rf"(?:{_BARE}|{_QUOTED})(?:[ \t]*\.[ \t]*(?:{_BARE}|{_QUOTED}))*"
_HEADER = re.compile(rf"[ \t]*(\[\[?)[ \t]*({_KEY})[ \t]*\]")
_KEY_LINE = re.compile(rf"[ \t]*({_KEY})[ \t]*=")
_POSITION = re.compile(r"^(.*) \(at (?:line (\d+), column (\d+)|end of document)\)$", re.S)
_NAMED = ("globals",)  # plain tables that get a section name (`globals.option` in messages)

Path = tuple[str, ...]


def _key_path(text: str) -> Path:
    """The parts of a (dotted, quoted) TOML key, as tomllib reads them."""
    node: Any = tomllib.loads(f"{text} = 0")
    parts = []
    while isinstance(node, dict):
        (name, node), = node.items()
        parts.append(name)
    return tuple(parts)


def _skip_value(line: str, i: int, state: dict[str, Any]) -> None:
    """Walk `line` from `i`, keeping track of open arrays or inline tables (`depth`) and of
    a multi-line string (`mls`, its delimiter) that goes on past the line."""
    while i < len(line):
        mls = state["mls"]
        if mls:
            if mls == '"""' and line[i] == "\\":
                i += 2
                continue
            if line.startswith(mls, i):
                i += 3
                while i < len(line) and line[i] == mls[0]:
                    i += 1  # up to two quotes of the content may come before the end
                state["mls"] = ""
                continue
            i += 1
            continue
        ch = line[i]
        if ch == "#":
            return
        if line.startswith('"""', i) or line.startswith("'''", i):
            state["mls"] = line[i:i + 3]
            i += 3
            continue
        if ch in "\"'":
            i += 1
            while i < len(line) and line[i] != ch:
                i += 2 if ch == '"' and line[i] == "\\" else 1
        elif ch in "[{":
            state["depth"] += 1
        elif ch in "]}":
            state["depth"] -= 1
        i += 1


def _scan(text: str) -> tuple[list[tuple[int, str, Path]], dict[tuple[int, str], int]]:
    """Headers as (line, `[` or `[[`, key path) in order, and the line of each key by
    (index of the header above it, or -1, first part of the key)."""
    headers: list[tuple[int, str, Path]] = []
    keys: dict[tuple[int, str], int] = {}
    state: dict[str, Any] = {"depth": 0, "mls": ""}
    for no, line in enumerate(text.split("\n"), 1):
        start = 0
        if not state["mls"] and state["depth"] <= 0:
            head = _HEADER.match(line)
            key = None if head else _KEY_LINE.match(line)
            if head:
                headers.append((no, head[1], _key_path(head[2])))
                continue
            if key:
                keys.setdefault((len(headers) - 1, _key_path(key[1])[0]), no)
                start = key.end()
        _skip_value(line, start, state)
    return headers, keys


def _key_lines(headers: list[tuple[int, str, Path]], keys: dict[tuple[int, str], int],
               at: int, kind: str) -> dict[str, int]:
    """The line of each key of the table under header `at`, and of its sub-tables
    (`[peer.x]` right below it gives the line of key `x`)."""
    out = {k: n for (h, k), n in keys.items() if h == at}
    for n, _, sub in headers[at + 1:]:
        if len(sub) < 2 or sub[0] != kind:
            break
        out.setdefault(sub[1], n)
    return out


def _type(value: object) -> str:
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a number"),
                       (str, "a string"), (list, "an array"), (dict, "a table")):
        if isinstance(value, kind):
            return name
    return "a date or time"


def _text(option: Option | None, value: object) -> uci.OptionValue:
    """The option text UCI would hold for `value`; ValueError names what was expected."""
    if option is None:  # unknown: ownfile reports it, whatever its type
        if isinstance(value, list):
            return tuple(str(v) for v in value)
        return "" if isinstance(value, dict) else str(value)
    if option.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {_type(value)}")
        return "1" if value else "0"
    if option.kind == "seconds":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number of seconds, got {_type(value)}")
        return repr(value)
    if option.kind == "names":
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected an array of strings, got {_type(value)}"
                             + (" with other items" if isinstance(value, list) else ""))
        return tuple(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_type(value)}")
    return value


def _section(kind: str, index: int, named: bool, table: dict[str, Any], line: int,
             key_lines: dict[str, int], path: str) -> uci.Section:
    known = {o.name: o for o in SECTIONS.get(kind, ())}
    name = kind if named else None
    ref = name or f"@{kind}[{index}]"
    options: dict[str, uci.OptionValue] = {}
    lines: dict[str, int] = {}
    for key, value in table.items():
        lines[key] = key_lines.get(key, line)
        try:
            options[key] = _text(known.get(key) if kind in SECTIONS else None, value)
        except ValueError as exc:
            raise ConfigError(f"{ref}.{key}: {exc}", path, lines[key]) from None
    return uci.Section(kind, name, index, line, MappingProxyType(options),
                       MappingProxyType(lines))


def parse(text: str, path: str = "<string>") -> uci.Package:
    """TOML text as the sections of the UCI file; raise ConfigError with file:line for a
    TOML error, a key outside any table or a wrong type for a known option."""
    text = text.removeprefix("\ufeff")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # Python 3.14 also has exc.lineno; 3.11 has not
        m = _POSITION.match(str(exc))
        if m is None:
            raise ConfigError(str(exc), path) from None
        line = int(m[2]) if m[2] else text.count("\n") + 1
        where = f" (column {m[3]})" if m[3] else " (at the end)"
        raise ConfigError(f"{m[1]}{where}", path, line) from None
    headers, keys = _scan(text)
    sections: list[uci.Section] = []
    for kind, value in doc.items():
        top = keys.get((-1, kind))
        if isinstance(value, dict):
            tables, array = [value], False
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables, array = value, True
        else:
            hint = " (settings go under [globals])" if kind in {o.name for o in
                                                                SECTIONS["globals"]} else ""
            raise ConfigError(f"{kind!r} is outside any table{hint}", path, top)
        marks = [i for i, (_, brackets, p) in enumerate(headers)
                 if p == (kind,) and brackets == ("[[" if array else "[")]
        for index, table in enumerate(tables):
            at = marks[index] if index < len(marks) else None
            line = headers[at][0] if at is not None else (top or 1)
            key_lines = {} if at is None else _key_lines(headers, keys, at, kind)
            sections.append(_section(kind, index, kind in _NAMED and not array, table,
                                     line, key_lines, path))
    sections.sort(key=lambda s: s.line)
    return uci.Package(path, tuple(sections))


def load(path: str) -> uci.Package:
    """Read and parse the settings file; ConfigError when it cannot be read or parsed."""
    data = uci.read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("not UTF-8 text (TOML files are UTF-8)", path,
                          data[:exc.start].count(b"\n") + 1) from None
    return parse(text, path)
