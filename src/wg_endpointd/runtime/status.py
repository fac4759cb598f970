"""`wg-endpointd status`: the daemon's view, read from the run directory."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..system.rundir import RunDir

EXIT_NOT_RUNNING = 3
SHOWN = 3  # history items shown per peer or group (--json shows them all)


def cmd_status(args: argparse.Namespace) -> int:
    rd = RunDir()
    pid = rd.daemon_running()
    try:
        data = rd.read_state()
    except FileNotFoundError:
        data = None
        problem = "no state file"
    except (OSError, ValueError) as exc:
        data = None
        problem = f"state file unreadable ({exc}); the daemon rebuilds it"
    if args.json:
        print(json.dumps({"running": pid is not None, "pid": pid,
                          "peers": data["peers"] if data else [],
                          "groups": (data.get("groups") or []) if data else []}, indent=1))
        return 0 if pid is not None else EXIT_NOT_RUNNING
    print(f"wg-endpointd: {f'running, pid {pid}' if pid else 'not running'}")
    if data is None:
        print(f"  {problem}", file=sys.stderr)
        return 0 if pid is not None else EXIT_NOT_RUNNING
    now = time.time()
    for p in data["peers"]:
        name = p.get("description") or p["public_key"][:8]
        seen = p.get("last_verified")
        ago = f"{now - seen:.0f}s ago" if isinstance(seen, (int, float)) else "never"
        print(f"  {p['interface']:<8} {name:<16} {p['phase']:<9} {p['endpoint'] or '-':<28} "
              f"verified {ago}")
        if p.get("fault") and p["phase"] in ("unknown", "down"):
            print(f"           why: {p['fault']}")
        sw = p.get("last_switch")
        if sw:
            print(f"           last switch {sw['from']} -> {sw['to']}: {sw['reason']}")
        print_history(p.get("history"), now)
    for g in data.get("groups") or []:
        print_group(g, now)
    return 0 if pid is not None else EXIT_NOT_RUNNING


def print_history(items: object, now: float, names: dict[str, str] | None = None) -> None:
    """The last SHOWN events, oldest first (state file `history`)."""
    for h in items[-SHOWN:] if isinstance(items, list) else []:
        if not isinstance(h, dict):
            continue
        ends = [(names or {}).get(x, x) if isinstance(x, str) else "-"
                for x in (h.get("from"), h.get("to"))]
        took = h.get("took")
        print(f"           {h.get('action')} {_ago(now, h.get('at'))}: {ends[0]} -> {ends[1]} "
              f"({h.get('reason')}{f', {took:.2f} s' if isinstance(took, int | float) else ''})")


def _ago(now: float, at: object) -> str:
    return f"{now - at:.0f}s ago" if isinstance(at, (int, float)) else "never"


def print_group(g: dict[str, Any], now: float) -> None:
    """A standby group: its active member, each member's health, the last failover."""
    names = {m["public_key"]: m.get("description") or m["public_key"][:8]
             for m in g.get("members", [])}
    active = g.get("active")
    print(f"  {g['interface']:<8} group {g['name']}: active {names.get(active, active)}, "
          f"allowed IPs {', '.join(g.get('allowed_ips', []))}")
    for m in g.get("members", []):
        mark = "*" if m["public_key"] == active else " "
        print(f"         {mark} {names[m['public_key']]:<16} {m.get('health', 'unknown'):<8} "
              f"handshake {_ago(now, m.get('latest_handshake'))}")
    fo = g.get("last_failover")
    if fo:
        print(f"           last failover {names.get(fo['from'], fo['from'])} -> "
              f"{names.get(fo['to'], fo['to'])} {_ago(now, fo.get('at'))}: {fo['reason']}")
    print_history(g.get("history"), now, names)
