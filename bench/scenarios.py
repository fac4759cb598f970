"""Scenario benchmark: the wall time of `wg-endpointd once` for each lab scenario of
tests/e2e/test_once.py, plus a peer that answers no ICMP at all (tests/e2e/scenarios.py).

Run as root from the repository root (or `make bench`):

    PYTHONPATH=src:. .venv/bin/python -m bench.scenarios [--reps N] [SCENARIO ...]

Each scenario gets a lab of its own. In the same lab a second pair with a live session on
a link of its own is the baseline: a healthy no-op `once` round (interpreter start, config,
resolution, liveness). Scenario and baseline runs alternate so that drift in machine load
hits both alike; the router is put back into the scenario's starting state before every
run. Prints a table (median, min, max, n; ratio of medians against the baseline) and writes
build/bench-scenarios.json.

Everything runs inside namespaces the lab creates, on documentation addresses only; the Lab
context manager removes them, its processes and sockets, even on failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import VERIFIED_RE, begin_run, cli_once, fmt_s, stats, write_json
from tests.e2e import scenarios
from tests.lab import Lab, missing_requirements

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench-scenarios.json"
REPS = 7
TARGETS_S = {"icmp_udp_dropped": 1.0, "no_icmp": 1.0, "no_icmp_session": 1.0, "ipv6_dead": 0.5}


def _one(lab: Lab, staged: scenarios.Staged) -> dict[str, Any]:
    staged.rearm()
    run = cli_once(lab, staged.confdir)
    final = lab.wg_dump(staged.pairs[0])[2]
    found = VERIFIED_RE.search(run.stderr)
    return {"wall_s": run.wall_s, "rc": run.rc, "endpoint": final,
            "verified_in_s": float(found.group(1)) if found else None,
            "ok": run.rc == staged.rc and final == staged.expect,
            "maxrss_kb": run.maxrss_kb, "stderr": run.stderr.strip().splitlines()[-12:]}


def bench_scenario(key: str, reps: int) -> dict[str, Any]:
    with Lab() as lab:
        tmp = Path(tempfile.mkdtemp(prefix="scen-", dir=lab.tmpdir))
        staged = scenarios.SCENARIOS[key](lab, tmp, scenarios.BASE_RECORDS)
        base = scenarios.healthy_baseline(lab, tmp)
        runs: list[dict[str, Any]] = []
        baseline: list[dict[str, Any]] = []
        for _ in range(reps):  # alternating; bounded by reps
            runs.append(_one(lab, staged))
            baseline.append(_one(lab, base))
        leftovers_before_close = lab.leftovers()
    wall = stats([r["wall_s"] for r in runs])
    bwall = stats([r["wall_s"] for r in baseline])
    return {
        "scenario": staged.name, "runs": runs, "baseline": baseline,
        "wall_s": wall, "baseline_wall_s": bwall,
        "ratio": wall["median"] / bwall["median"] if bwall["n"] and wall["n"] else None,
        "ok": sum(r["ok"] for r in runs), "baseline_ok": sum(r["ok"] for r in baseline),
        "target_s": TARGETS_S.get(key),
        "leftovers": lab.leftovers(), "open_leftovers": leftovers_before_close,
        "close_errors": lab.close_errors,
    }


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"{'scenario':34s} {'median':>7s} {'min':>7s} {'max':>7s} {'n':>3s} "
             f"{'ok':>5s} {'base med':>8s} {'ratio':>6s}  target"]
    for res in results.values():
        if "error" in res:
            lines.append(f"{res.get('scenario', '?'):34s} FAILED: {res['error']}")
            continue
        w, b = res["wall_s"], res["baseline_wall_s"]
        target = res["target_s"]
        mark = "" if target is None else (
            f"<= {target:g} s {'met' if w['median'] <= target else 'NOT MET'}")
        lines.append(f"{res['scenario']:34s} {w['median']:7.3f} {w['min']:7.3f} "
                     f"{w['max']:7.3f} {w['n']:3d} {res['ok']:>2d}/{w['n']:<2d} "
                     f"{b['median']:8.3f} {res['ratio']:5.2f}x  {mark}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.scenarios", description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=REPS, help=f"runs each (default {REPS})")
    parser.add_argument("only", nargs="*", choices=[[], *scenarios.SCENARIOS], default=[],
                        metavar="SCENARIO", help=", ".join(scenarios.SCENARIOS))
    args = parser.parse_args(argv)
    if args.reps < 1 or args.reps > 100:
        parser.error("--reps must be 1..100")
    problems = missing_requirements()
    if problems:
        print("bench: lab unavailable: " + "; ".join(problems), file=sys.stderr)
        return 2
    meta = begin_run(reps=args.reps)
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    try:
        for key in args.only or list(scenarios.SCENARIOS):
            print(f"== {key}", flush=True)
            try:
                results[key] = bench_scenario(key, args.reps)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # report and go on with the other scenarios
                results[key] = {"scenario": key, "error": f"{type(exc).__name__}: {exc}"}
            res = results[key]
            if "wall_s" in res:
                print(f"  {fmt_s(res['wall_s'])}; baseline {fmt_s(res['baseline_wall_s'])}; "
                      f"ok {res['ok']}/{res['wall_s']['n']}", flush=True)
    except KeyboardInterrupt:
        print("bench: interrupted; everything created was removed", file=sys.stderr)
        return 130
    finally:
        meta["loadavg_end"] = os.getloadavg()
        meta["took_s"] = time.monotonic() - started
        write_json(OUT, {"meta": meta, "scenarios": results})
    print(f"\n`wg-endpointd once` per scenario  {meta['started']}  {meta['cpus']} CPUs, "
          f"Python {meta['python']}, load {meta['loadavg_start'][0]:.2f} -> "
          f"{meta['loadavg_end'][0]:.2f}; seconds, ratio = median / baseline median")
    print("\n".join(table(results)))
    left = [f"{k}: {x}" for k, r in results.items() for x in r.get("leftovers", [])]
    print(f"cleanup: {'nothing left behind' if not left else 'LEFTOVERS: ' + '; '.join(left)}")
    print(f"wrote {OUT.relative_to(ROOT)}")
    bad = [k for k, r in results.items()
           if "error" in r or r["ok"] != r["wall_s"]["n"] or r["baseline_ok"] != r["wall_s"]["n"]]
    return 1 if bad or left else 0


if __name__ == "__main__":
    sys.exit(main())
