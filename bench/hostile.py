"""No peer holds up another (issue 18), in the lab with default settings: a peer whose name
resolves to 50 dead addresses sits on its own interface beside a healthy peer; the healthy
peer's IPv6 then dies. Measured: the healthy peer's failover (to WireGuard showing a
handshake on IPv4 and the state file saying `fallback`), announced by an event and
silent, with the bad peer and, as the baseline in the same run, without it; and
`once` on the bad peer alone.

    PYTHONPATH=src:. .venv/bin/python -m bench.hostile [--reps 5]

Writes build/bench-hostile.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e import helpers as h
from tests.e2e.test_no_peer_holds_another import phase, stage
from tests.lab import Lab


def failover(with_bad: bool, event: bool) -> float:
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        links, good, _bad, confdir = stage(lab, Path(tmp), with_bad)
        run_dir = Path(tmp) / "run"
        with h.daemon(lab, confdir, run_dir, Path(tmp) / "daemon.log"):
            h.wait_for(lambda: phase(run_dir, good.router_if) == "healthy", 15, "healthy")
            # the bad peer's first round (about 8 s) is under way at a random moment
            time.sleep(random.uniform(0.5, 6.0) if event else random.uniform(2, 13))
            lab.block(links["v6a"], "all")
            start = time.monotonic()
            if event:
                h.hotplug(lab, run_dir, ACTION="ifdown", INTERFACE="wan6")
            target = links["v4a"].endpoint(good.peer_port)
            h.wait_for(lambda: h.endpoint(lab, good) == target
                       and lab.wg_dump(good)[4] != "0"
                       and phase(run_dir, good.router_if) == "fallback", 60, "failover",
                       step=0.01)
            return time.monotonic() - start


def once_bad() -> float:
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        _links, _good, bad, confdir = stage(lab, Path(tmp))
        assert bad is not None
        start = time.monotonic()
        h.run_cli(lab, "once", "--config-dir", confdir, "--interface", bad.router_if,
                  timeout=120)
        return time.monotonic() - start


def summary(times: list[float]) -> dict[str, object]:
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "max_s": round(max(times), 3), "n": len(times), "runs_s": [round(t, 3) for t in times]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    results: dict[str, dict[str, object]] = {}
    for event in (True, False):
        for with_bad in (False, True):
            name = (f"{'event' if event else 'silent'}, "
                    f"{'50-address peer beside it' if with_bad else 'alone (baseline)'}")
            times = [failover(with_bad, event) for _ in range(args.reps)]
            results[name] = summary(times)
            r = results[name]
            print(f"{name}: {r['median_s']} s (min {r['min_s']}, max {r['max_s']}, n={r['n']})")
    results["once on the 50-address peer"] = summary([once_bad() for _ in range(3)])
    r = results["once on the 50-address peer"]
    print(f"once on the 50-address peer: {r['median_s']} s (min {r['min_s']}, "
          f"max {r['max_s']}, n={r['n']})")
    for kind in ("event", "silent"):
        base = results[f"{kind}, alone (baseline)"]["median_s"]
        bad = results[f"{kind}, 50-address peer beside it"]["median_s"]
        assert isinstance(base, float) and isinstance(bad, float)
        print(f"{kind}: the 50-address peer adds {bad - base:+.2f} s to the median")
    Path("build").mkdir(exist_ok=True)
    Path("build/bench-hostile.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
