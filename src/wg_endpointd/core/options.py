"""The options of /etc/config/wg-endpointd: one table with names, kinds, defaults,
bounds and help. The settings parser, the init script's check (`config --check`)
and the README all follow it. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRUE_WORDS = ("1", "on", "true", "yes", "enabled")  # /lib/functions.sh get_bool,
FALSE_WORDS = ("0", "off", "false", "no", "disabled")  # case-sensitive
FAMILIES = ("auto", "ipv6", "ipv4")
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_SECONDS = 86400.0
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")  # ASCII decimals, no sign or exponent

Value = bool | float | str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Settings:
    """Daemon-wide settings (`config globals`): every default lives here."""

    enabled: bool = True
    log_level: str = "info"
    family: str = "auto"
    probe_timeout: float = 1.0
    verify_timeout: float = 2.0
    check_interval: float = 10.0
    dead_after: float = 30.0
    failback_hold: float = 300.0
    resolve_interval: float = 300.0
    backoff_max: float = 300.0
    host_routes: bool = True
    metrics_file: str | None = None  # None: the platform's default (runtime/metrics.py)
    hook_timeout: float = 30.0
    interfaces: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Option:
    name: str  # the UCI option
    kind: str  # bool, seconds, choice, names (a list), text, path (absolute, or empty)
    help: str
    choices: tuple[str, ...] = ()
    attr: str = ""  # the Settings field when it differs from `name`

    @property
    def field(self) -> str:
        return self.attr or self.name


GLOBALS = (
    Option("enabled", "bool", "1 runs the daemon, 0 keeps it stopped."),
    Option("log_level", "choice", "Log detail.", LOG_LEVELS),
    Option("family", "choice", "Preferred address family.", FAMILIES),
    Option("probe_timeout", "seconds", "Wait for ICMP echo replies (ICMP only ranks)."),
    Option("verify_timeout", "seconds",
           "Time WireGuard gets to show a handshake or received bytes after a switch."),
    Option("check_interval", "seconds", "Liveness check period for each peer."),
    Option("dead_after", "seconds", "A peer with no sign of life this long is moved."),
    Option("failback_hold", "seconds",
           "A preferred candidate must stay healthy this long before failing back to it."),
    Option("resolve_interval", "seconds", "Re-resolve endpoint host names this often."),
    Option("backoff_max", "seconds", "Longest wait between retries while nothing works."),
    Option("host_routes", "bool", "Add host routes for new endpoints of full tunnels."),
    Option("metrics_file", "path",
           "Prometheus metrics file, rewritten every check interval; none (or empty): none."),
    Option("hook_timeout", "seconds", "Time a user hook may run before it is stopped."),
    Option("interface", "names", "WireGuard interfaces to manage; none means all.",
           attr="interfaces"),
    Option("trigger", "names", "Interfaces whose hotplug events wake the daemon; none: all.",
           attr="triggers"),
)

PEER = (
    Option("interface", "text", "The peer's WireGuard interface (required)."),
    Option("public_key", "text", "The peer's public key (required)."),
    Option("managed", "bool", "0 leaves this peer alone."),
    Option("candidate", "names", "Extra candidates: host, host:port or [ipv6]:port."),
    Option("family", "choice", "Preferred family for this peer.", FAMILIES),
    Option("probe_address", "text", "Tunnel address for liveness datagrams."),
    Option("probe_timeout", "seconds", "As in globals, for this peer."),
    Option("verify_timeout", "seconds", "As in globals, for this peer."),
)

GROUP = (
    Option("interface", "text", "The WireGuard interface of the group's peers (required)."),
    Option("peer", "names", "Public keys of the members, preferred first (two or more)."),
    Option("allowed_ips", "names",
           "The allowed IPs that move to the active member; default: those all share."),
    Option("failback_hold", "seconds",
           "The preferred member must handshake this long before it gets them back."),
)

SECTIONS = {"globals": GLOBALS, "peer": PEER, "group": GROUP}


def parse_bool(text: str) -> bool | None:
    """netifd's reading of a boolean; None for any other word (netifd: the default)."""
    return True if text in TRUE_WORDS else False if text in FALSE_WORDS else None


def convert(option: Option, text: str) -> Value:
    """The value of `text` for `option`; raise ValueError with the reason."""
    if option.kind == "bool":
        value = parse_bool(text)
        if value is None:
            raise ValueError(f"{text!r} is not a boolean ({'|'.join(TRUE_WORDS)} or "
                             f"{'|'.join(FALSE_WORDS)})")
        return value
    if option.kind == "seconds":
        if not _SECONDS.fullmatch(text) or not 0 < float(text) <= MAX_SECONDS:
            raise ValueError(f"{text!r} is not a number of seconds above 0 and at most "
                             f"{MAX_SECONDS:g}")
        return float(text)
    if option.kind == "path":  # UCI cannot hold an empty value: "none" says it there
        if text in ("", "none"):
            return ""
        if not text.startswith("/") or text.endswith("/") or any(c in text for c in "\0\n"):
            raise ValueError(f"{text!r} is not an absolute file path (or none)")
    if option.kind == "choice" and text not in option.choices:
        raise ValueError(f"{text!r} is not one of {', '.join(option.choices)}")
    return text


def suggest(name: str, known: list[str] | tuple[str, ...]) -> str:
    """' (did you mean X?)' for the closest known name, or ''."""
    import difflib  # only when something is wrong

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_options(section_type: str, names: list[str]) -> list[tuple[str, str]]:
    """(name, hint) for each option that a section of this type does not know."""
    known = [o.name for o in SECTIONS.get(section_type, ())]
    return [(n, suggest(n, known)) for n in names if n not in known]
