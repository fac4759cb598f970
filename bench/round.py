"""Round benchmark: `wg-endpointd once` in the test lab against the widely copied
sequential-ping cron approach, a 100-peer round, and the CLI's start-up cost.

Run as root from the repository root (or `make bench`):

    PYTHONPATH=src:. .venv/bin/python -m bench.round

Machines are shared and noisy, so every figure is a median over repetitions, shown with its
min/max, and set against a baseline measured in the same run. Prints a report and writes
build/bench-round.json.

Measurements:
  a. one peer, DNS gives [v6a, v6b, v4b, v4a], only v4a alive (the others drop everything),
     router stuck on v6a without a session: wall time of `wg-endpointd once` (it returns
     after WireGuard verified the new endpoint) and the engine's own "verified in X s";
  b. the same lab and state fixed the cron way: resolve, `ping -c 3 -W 1` each address in
     resolver order, `wg set` the first that answers, send a packet, wait for a handshake;
  c. 100 peers of 4 candidates each (one router interface, 100 peer-side interfaces):
     round wall time, peers verified, peak RSS; CLI start-up and import cost;
  d. the same 100 peers, but each name resolves to 4 addresses of its own (400 distinct
     probe addresses), both IPv6 ones dead, both IPv4 ones alive.

`python -m bench.round distinct` (or single, many, startup) runs only those parts. Each part
is a module of its own, runnable alone the same way: single = bench.cron_compare,
many = bench.many_peers, distinct = bench.many_distinct, startup = bench.startup; the
shared measuring, summary and result-file code is in bench.common.

Everything runs inside namespaces the lab creates, on documentation addresses only. Every
loop is bounded in count and time, and everything created is removed in `finally`.
"""

from __future__ import annotations

import sys

from bench import cron_compare, many_distinct, many_peers, startup

# The helpers that lived here before the split, for code that imports them from bench.round.
from bench.common import (
    CLI,
    DEAD,
    DNS_ORDER,
    OUT,
    PY,
    ROOT,
    SRC,
    TIME,
    VERIFIED_RE,
    Part,
    Run,
    begin_run,
    cli_env,
    cli_once,
    dns_records,
    fmt_s,
    run_measured,
    run_parts,
    section,
    stats,
    tail,
    write_json,
)
from bench.many_lab import ManyPeers
from bench.many_peers import MANY, OUTCOME_RE, outcome_lines, peer_dump
from bench.startup import ImportNode, package_cost, parse_importtime

__all__ = [
    "CLI", "DEAD", "DNS_ORDER", "OUT", "PY", "ROOT", "SRC", "TIME", "VERIFIED_RE", "Part",
    "Run", "begin_run", "cli_env", "cli_once", "dns_records", "fmt_s", "run_measured",
    "run_parts", "section", "stats", "tail", "write_json", "ManyPeers", "MANY", "OUTCOME_RE",
    "outcome_lines", "peer_dump", "ImportNode", "package_cost", "parse_importtime", "PARTS",
    "main"
]

PARTS: dict[str, Part] = {
    "single": cron_compare.PART,
    "many": many_peers.PART,
    "distinct": many_distinct.PART,
    "startup": startup.PART,
}


def main(argv: list[str] | None = None) -> int:
    return run_parts(PARTS, argv)


if __name__ == "__main__":
    sys.exit(main())
