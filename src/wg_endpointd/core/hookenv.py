"""What a user hook gets to see, as values: its environment, the ubus event's payload,
which files of a hooks directory are hooks, and how a hook's end reads in the log. Pure.

The environment is an allow-list: PATH plus the event's facts. A private or preshared
key must never reach a hook, so a variable is dropped when its value carries anything
that looks like a WireGuard key, except PUBLIC_KEY itself and, for group events, FROM
and TO (the members' public keys). A private key looks like a public one, so the names
alone are no protection.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Mapping

EVENT_VARS = ("ACTION", "INTERFACE", "PUBLIC_KEY", "DESCRIPTION", "FROM", "TO", "REASON",
              "GROUP")
GROUP_ACTIONS = ("failover", "failback")
LINUX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OPENWRT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # what /sbin/hotplug-call sets anyway

_B64_KEY = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")
_HEX_KEY = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")  # UAPI form
# NetworkManager's dispatcher (nm-dispatcher.c check_filename) skips these names.
_BAD_SUFFIXES = ("~", ".rpmsave", ".rpmorig", ".rpmnew", ".swp")


def _has_key(value: str) -> bool:
    return _B64_KEY.search(value) is not None or _HEX_KEY.search(value) is not None


def hook_environment(event: Mapping[str, str], path: str) -> tuple[dict[str, str], list[str]]:
    """Return (environment, names dropped) for one event.

    Only EVENT_VARS pass, plus PATH. A value with a NUL (no process can take it) or
    with something that looks like a key where none belongs is dropped; the second
    item names what was dropped, never its value.
    """
    env = {"PATH": path}
    dropped = []
    group_event = event.get("ACTION") in GROUP_ACTIONS or bool(event.get("GROUP"))
    for name, value in event.items():
        if name not in EVENT_VARS:
            dropped.append(name)
            continue
        value = str(value)
        exact_key_ok = name == "PUBLIC_KEY" or (group_event and name in ("FROM", "TO"))
        if "\0" in value or (_has_key(value) and not (
                exact_key_ok and _B64_KEY.fullmatch(value))):
            dropped.append(name)
            continue
        env[name] = value
    return env, sorted(dropped)


def ubus_payload(env: Mapping[str, str]) -> str:
    """The JSON message of `ubus send wg-endpointd`: the event's facts, lowercase keys,
    `action` first (as netifd's `network.interface` event starts with it)."""
    facts = {name.lower(): env[name] for name in EVENT_VARS if name in env}
    return json.dumps(facts, separators=(",", ":"))


def is_hook_name(name: str) -> bool:
    """True for a file name a hooks directory runs: not hidden, not a backup or a
    package manager's leftover (`x~`, `x.rpmnew`, `x.dpkg-old`...)."""
    if not name or name.startswith(".") or name.endswith(_BAD_SUFFIXES):
        return False
    at = name.rfind(".dpkg-")
    return at < 0 or "." in name[at + 1:]


def describe_end(returncode: int) -> str:
    """'exit status 3' or 'killed by SIGTERM', from a Popen return code."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"
