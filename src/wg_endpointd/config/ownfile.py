"""The daemon's own UCI file (/etc/config/wg-endpointd): its globals as `Settings`, each
value through the one options table, and a line for every section or option it does not
know."""

from __future__ import annotations

from ..core.errors import ConfigError
from ..core.options import GLOBALS, SECTIONS, Option, Settings, convert, suggest
from ..core.validate import is_ifname
from . import uci


def option_value(sec: uci.Section, option: Option, path: str) -> object:
    """An option of the daemon's own file, converted; ConfigError names file:line."""
    try:
        return convert(option, sec.get(option.name) or "")
    except ValueError as exc:
        raise ConfigError(f"{sec.ref}.{option.name}: {exc}", path,
                          sec.line_of(option.name)) from None


def _ifnames(sec: uci.Section, option: str, path: str) -> tuple[str, ...]:
    """Interface names, each once, from a list (items may hold several names)."""
    names = tuple(dict.fromkeys(n for item in sec.get_list(option) for n in item.split()))
    for name in names:
        if not is_ifname(name):
            raise ConfigError(f"{sec.ref}.{option}: invalid interface name {name!r}",
                              path, sec.line_of(option))
    return names


def read_settings(own: uci.Package | None) -> Settings:
    """The globals of /etc/config/wg-endpointd (defaults when the file or section is absent)."""
    found = [] if own is None else own.by_type("globals")
    if own is None or not found:
        return Settings()
    sec, values = found[0], dict[str, object]()
    for option in GLOBALS:
        if option.name not in sec.options:
            continue
        if option.kind == "names":
            values[option.field] = _ifnames(sec, option.name, own.path)
        else:
            values[option.field] = option_value(sec, option, own.path)
    return Settings(**values)  # type: ignore[arg-type]


def own_warnings(own: uci.Package) -> list[str]:
    """Unknown section types and options, and extra globals sections, one line each."""
    out = []
    for sec in own.sections:
        where = f"{own.path}:{sec.line}: {sec.ref}"
        if sec.type not in SECTIONS:
            out.append(f"{where}: unknown section type {sec.type!r}, ignored"
                       f"{suggest(sec.type, list(SECTIONS))}")
            continue
        if sec.type == "globals" and sec is not own.by_type("globals")[0]:
            out.append(f"{where}: only the first globals section is read, this one is ignored")
        known = [o.name for o in SECTIONS[sec.type]]
        for name in sec.options:
            if name not in known:
                out.append(f"{own.path}:{sec.line_of(name)}: {sec.ref}: unknown option "
                           f"{name!r}, ignored{suggest(name, known)}")
    return out
