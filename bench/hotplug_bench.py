"""Time the iface hotplug script under busybox sh.

    python bench/hotplug_bench.py [--runs 50]

For each case it reports:
  process  median wall time of `busybox sh -c '. script'` over --runs runs,
           busybox start-up included;
  sourced  mean time of one `( . script )` inside a single shell, which is
           what hotplug-call pays per script.

Cases: an ignored ACTION, the daemon not running, and the daemon running and
woken with kill (a stand-in process that ignores SIGUSR1). The procd path
depends on the router's procd.sh, jshn and ubus and is not measured here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOTPLUG = ROOT / "files" / "etc" / "hotplug.d" / "iface" / "20-wg-endpointd"
STAND_IN = "import signal,time;signal.signal(signal.SIGUSR1,lambda s,f:None);time.sleep(600)"


def _env(run_dir: Path, action: str) -> dict[str, str]:
    return {
        "ACTION": action,
        "INTERFACE": "wan",
        "DEVICE": "eth1",
        "WG_ENDPOINTD_RUN_DIR": str(run_dir),
        "WG_ENDPOINTD_PROCD_SH": str(run_dir / "no-procd.sh"),
        # the wake path logs one line: through the logger stand-in (one fork and exec,
        # as busybox's logger applet costs on a router), into a file of the run dir
        "PATH": f"{ROOT / 'tests' / 'shell'}:/usr/sbin:/usr/bin:/sbin:/bin",
        "STUB_SYSLOG": str(run_dir / "syslog"),
    }


def _process_median(busybox: str, env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([busybox, "sh", "-c", '. "$0"', str(HOTPLUG)], env=env, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sourced_mean(busybox: str, env: dict[str, str], runs: int) -> float:
    loop = 'i=0; while [ "$i" -lt "$1" ]; do ( . "$0" ); i=$((i + 1)); done'

    def timed(n: int) -> float:
        start = time.perf_counter()
        subprocess.run([busybox, "sh", "-c", loop, str(HOTPLUG), str(n)], env=env, check=True)
        return time.perf_counter() - start

    # Subtract one shell start-up: the difference is n - 1 invocations.
    return (timed(runs * 10 + 1) - timed(1)) / (runs * 10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    busybox = shutil.which("busybox")
    if busybox is None:
        print("busybox is not installed", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="hpbench") as tmp:
        run_dir = Path(tmp)
        script = run_dir / "wg-endpointd"  # argv as under procd: python3 .../wg-endpointd run
        script.write_text(STAND_IN + "\n")
        stand_in = subprocess.Popen([os.path.realpath(sys.executable), str(script), "run"])
        try:
            time.sleep(0.5)  # let it install its handler
            pid_file = run_dir / "wg-endpointd.pid"
            cases = [
                ("ignored ACTION (iflink)", "iflink", None),
                ("daemon not running", "ifup", None),
                ("daemon running, kill -USR1", "ifup", stand_in.pid),
            ]
            print(f"{'case':<30} {'process (median)':>18} {'sourced (mean)':>16}")
            for label, action, pid in cases:
                if pid is None:
                    pid_file.unlink(missing_ok=True)
                else:
                    pid_file.write_text(f"{pid}\n")
                env = _env(run_dir, action)
                proc = _process_median(busybox, env, args.runs)
                sourced = _sourced_mean(busybox, env, args.runs)
                print(f"{label:<30} {proc * 1000:>15.2f} ms {sourced * 1000:>13.3f} ms")
            if stand_in.poll() is not None:
                print("the stand-in daemon died: a signal was not handled", file=sys.stderr)
                return 1
        finally:
            stand_in.kill()
            stand_in.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
