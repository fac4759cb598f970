"""Shared by the round benchmarks (bench.round and its parts, bench.scenarios): running and
measuring a process (wall time, peak RSS), `wg-endpointd once` in the lab, median/min/max/n
summaries, the run's description and result files under build/, and the runner that puts
parts together into build/bench-round.json.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from tests.lab import Lab, Link, missing_requirements

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")
OUT = ROOT / "build" / "bench-round.json"
PY = sys.executable
CLI = [PY, "-m", "wg_endpointd"]
VERIFIED_RE = re.compile(r"verified in ([0-9.]+) s")
DNS_ORDER = ("v6a", "v6b", "v4b", "v4a")  # resolver order for (a)-(c); only the last is alive
DEAD = ("v6a", "v6b", "v4b")


def dns_records(links: dict[str, Link]) -> list[str]:
    """Addresses for Lab.set_dns so that the resolver returns them in DNS_ORDER.

    dnsmasq answers several --address records of one family in the reverse of the order
    given (checked with getent in this lab); glibc then puts IPv6 before IPv4.
    """
    return [links[n].peer_addr for n in reversed(DNS_ORDER)]


def cli_env() -> dict[str, str]:
    """The CLI's environment: the source tree on PYTHONPATH, nothing else changed."""
    return dict(os.environ, PYTHONPATH=SRC)


# ---- measuring a process ------------------------------------------------------------------


TIME = shutil.which("time", path="/usr/bin:/bin")  # GNU time, for a clean peak RSS


@dataclass
class Run:
    argv: list[str]
    rc: int
    wall_s: float
    maxrss_kb: int  # peak RSS in KiB (see run_measured)
    stdout: str
    stderr: str


def run_measured(argv: Sequence[str], env: dict[str, str] | None = None,
                 timeout: float = 60.0, rss: bool = False) -> Run:
    """Run argv; wall time from just before the fork to its exit.

    With rss, the peak RSS comes from GNU time wrapping argv (`time -f %M`): rusage of a
    child forked by this (big) Python process would count this process's pages too, since
    Linux carries the pre-exec high-water mark across exec. Without GNU time, or without
    rss, maxrss_kb is wait4's figure: an upper bound that includes those pages.
    `ip netns exec NS cmd` execs cmd in place, so no extra process sits in between.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        full = list(argv)
        if rss and TIME:
            full = [TIME, "-f", "%M", "-o", rss_file.name, *full]
        box: dict[str, Any] = {}
        start = time.perf_counter()
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env)

        def reap() -> None:
            _, status, usage = os.wait4(proc.pid, 0)
            box["end"] = time.perf_counter()
            box["status"], box["usage"] = status, usage

        waiter = threading.Thread(target=reap, daemon=True)
        waiter.start()
        try:
            waiter.join(timeout)
        finally:
            if waiter.is_alive():  # too slow, or we were interrupted: kill it
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                waiter.join(10)  # the waiter reaps it
                proc.returncode = -9
        if "status" not in box:
            raise TimeoutError(f"{' '.join(argv[-6:])} took longer than {timeout:g} s")
        proc.returncode = os.waitstatus_to_exitcode(box["status"])
        maxrss = box["usage"].ru_maxrss
        if rss and TIME:
            text = rss_file.read().strip().splitlines()
            maxrss = int(text[-1]) if text and text[-1].isdigit() else -1
        out.seek(0)
        err.seek(0)
        return Run(list(argv), proc.returncode, box["end"] - start, maxrss,
                   out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def begin_run(**extra: object) -> dict[str, Any]:
    """Make SIGTERM and SIGHUP unwind (so every `finally` cleans up) and return the run's
    description: when, where, and the load at the start."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    return {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(),
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(), **extra}


def write_json(path: Path, data: object) -> None:
    """Write a result file atomically (a reader never sees half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def stats(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None, "values": []}
    return {"n": len(values), "median": statistics.median(values), "min": min(values),
            "max": max(values), "values": list(values)}


def fmt_s(summary: dict[str, Any], unit: str = "s", scale: float = 1.0, digits: int = 3) -> str:
    if not summary["n"]:
        return "(no data)"
    med, lo, hi = (summary[k] * scale for k in ("median", "min", "max"))
    return f"median {med:.{digits}f} {unit} (min {lo:.{digits}f}, max {hi:.{digits}f}, n={summary['n']})"


def cli_once(lab: Lab, confdir: str, timeout: float = 60.0) -> Run:
    return run_measured(["ip", "netns", "exec", lab.router_ns, *CLI, "once",
                         "--config-dir", confdir], env=cli_env(), timeout=timeout, rss=True)


def tail(text: str, lines: int = 15) -> list[str]:
    return text.strip().splitlines()[-lines:]


# ---- running parts into build/bench-round.json -----------------------------------------------


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def section(title: str, fn: Callable[[], dict[str, Any]],
            report: Callable[[dict[str, Any]], list[str]]) -> tuple[dict[str, Any], list[str]]:
    print(f"== {title}", flush=True)
    t = time.perf_counter()
    try:
        res = fn()
        lines = report(res)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # report and go on with the other measurements
        res = {"error": f"{type(exc).__name__}: {exc}"}
        lines = [f"{title}: FAILED: {res['error']}"]
    res["took_s"] = time.perf_counter() - t
    return res, lines


# A part: (title, benchmark, report); the report adds its summary to the result and
# returns the lines printed at the end.
Part = tuple[str, Callable[[], dict[str, Any]], Callable[[dict[str, Any]], list[str]]]


def run_parts(table: dict[str, Part], argv: list[str] | None = None) -> int:
    """Run the parts of `table` named in argv (all when none), in table order; print a
    report and write build/bench-round.json."""
    parts = set(sys.argv[1:] if argv is None else argv) or set(table)
    unknown = parts - set(table)
    if unknown:
        print(f"bench: unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(table)}",
              file=sys.stderr)
        return 2
    problems = missing_requirements()
    if problems:
        print("bench: lab unavailable: " + "; ".join(problems), file=sys.stderr)
        return 2
    started = time.time()
    meta = begin_run(kernel=platform.release())
    results: dict[str, Any] = {"meta": meta}
    out: list[str] = []
    meta["interrupted"] = True  # until the end is reached
    try:
        for key in table:
            if key in parts:
                title, fn, report = table[key]
                results[key], lines = section(title, fn, report)
                out += lines
        meta["interrupted"] = False
    except KeyboardInterrupt:
        print("bench: interrupted; everything created was removed", file=sys.stderr)
        return 130
    finally:
        meta["loadavg_end"] = os.getloadavg()
        meta["took_s"] = time.time() - started
        write_json(OUT, results)
    print()
    print(f"wg-endpointd round benchmark  {meta['started']}  host {meta['host']}, "
          f"{meta['cpus']} CPUs, Python {meta['python']}, load "
          f"{meta['loadavg_start'][0]:.2f} -> {meta['loadavg_end'][0]:.2f}, "
          f"took {meta['took_s']:.0f} s")
    print("\n".join(out))
    left = [f"{k}: {x}" for k in table
            for x in results.get(k, {}).get("leftovers", [])]
    print(f"cleanup: {'nothing left behind' if not left else 'LEFTOVERS: ' + '; '.join(left)}")
    print(f"wrote {OUT.relative_to(ROOT)}")
    failed = [k for k in table if "error" in results.get(k, {})]
    return 1 if failed or left else 0
