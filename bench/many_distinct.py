"""Round benchmark, part (d): the 100 peers of bench.many_peers, but each name resolves to 4
addresses of its own (400 distinct probe addresses), both IPv6 ones dead, both IPv4 ones
alive.

Run as root from the repository root; part "distinct" of `python -m bench.round`:

    PYTHONPATH=src:. .venv/bin/python -m bench.many_distinct

Writes build/bench-round.json (with this part only).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from bench.common import Part, run_parts
from bench.many_lab import ManyPeers
from bench.many_peers import MANY, MANY_BASE_PORT, _many_runs, closed, finished, report_many
from tests.lab import Lab

REPS_DISTINCT = 5
TARGET_DISTINCT_S = 1.0


def distinct_addresses(i: int) -> dict[str, str]:
    """Peer i's own four addresses (i < 100): two IPv6, two IPv4."""
    return {"v6a": f"2001:db8:1::{i + 2:x}", "v6b": f"2001:db8:2::{i + 2:x}",
            "v4a": f"192.0.2.{i + 2}", "v4b": f"198.51.100.{i + 2}"}


def bench_many_distinct() -> dict[str, Any]:
    """(d): 100 peers, each name resolving to 4 addresses of its own (400 probe
    addresses); both IPv6 addresses of every peer drop everything, both IPv4 ones work."""
    result: dict[str, Any] = {"peers": MANY, "addresses": 4 * MANY, "runs": [],
                              "target_s": TARGET_DISTINCT_S, "title": (
                                  f"(d) {MANY} peers x 4 addresses of their own "
                                  f"({4 * MANY} probe addresses), both IPv6 dead")}
    with Lab() as lab:
        many = ManyPeers(lab, MANY, MANY_BASE_PORT)
        try:
            links = {"v6a": lab.add_link("v6a", 6, "2001:db8:1::1", "2001:db8:1::2", 64),
                     "v4a": lab.add_link("v4a", 4, "192.0.2.1", "192.0.2.2", 24),
                     "v6b": lab.add_link("v6b", 6, "2001:db8:2::1", "2001:db8:2::2", 64),
                     "v4b": lab.add_link("v4b", 4, "198.51.100.1", "198.51.100.2", 25)}
            t = time.perf_counter()
            many.start()
            own = [distinct_addresses(i) for i in range(MANY)]
            for family in (4, 6):  # the addresses beyond each link's first one
                lab.peer(["ip", f"-{family}", "-batch", "-"], input="".join(
                    f"addr add {a[n]}/{links[n].prefixlen} dev {links[n].peer_if}"
                    f"{' nodad' if family == 6 else ''}\n"
                    for a in own[1:] for n in links if links[n].family == family))
            many.answer_from([[(f"{links[n].router_addr}/32", links[n].peer_if, a[n])
                               for n in ("v4a", "v4b")] for a in own])
            result["setup_s"] = time.perf_counter() - t
            lab.set_dns({f"peer{i}.wg.test": [own[i][n] for n in ("v4b", "v4a", "v6b", "v6a")]
                         for i in range(MANY)})
            for n in ("v6a", "v6b"):
                lab.block(links[n], "all")
            confdir = many.uci(Path(lab.tmpdir))
            print(f"  set up {MANY} peers x 4 addresses in {result['setup_s']:.1f} s",
                  flush=True)

            def ep(i: int, n: str) -> str:
                addr = own[i][n]
                return f"[{addr}]:{many.port(i)}" if ":" in addr else f"{addr}:{many.port(i)}"

            result["runs"] = _many_runs(lab, many, confdir, [ep(i, "v6a") for i in range(MANY)],
                                        lambda i: [ep(i, "v4a"), ep(i, "v4b")], REPS_DISTINCT)
        finally:
            closed(result, many)
    return finished(result, lab, many)


PART: Part = (f"(d) {MANY} peers x 4 own addresses", bench_many_distinct, report_many)


def main(argv: list[str] | None = None) -> int:
    return run_parts({"distinct": PART}, argv)


if __name__ == "__main__":
    sys.exit(main())
