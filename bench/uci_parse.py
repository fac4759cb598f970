"""UCI reader cost: parse time for long lists, peak memory for a file of blank lines.

    PYTHONPATH=src:. .venv/bin/python -m bench.uci_parse

Each case runs in its own process so that its peak RSS (ru_maxrss) is its own.
"""

import subprocess
import sys

CASE = """
import resource, sys, time
from wg_endpointd.config import uci
kind, n = sys.argv[1], int(sys.argv[2])
if kind == "list":
    text = "config t\\n" + "".join(f"\\tlist a 'x{i}'\\n" for i in range(n))
else:
    text = "\\n" * n
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
pkg = uci.parse(text)
took = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
items = len(pkg.sections[0].options["a"]) if kind == "list" else 0
print(f"{kind:5} {n:>9} {len(text) / 2**20:6.1f} MiB  {took:6.2f} s  "
      f"peak RSS {peak / 1024:6.1f} MiB (before parsing {before / 1024:.1f})  items {items}")
"""


def main() -> None:
    for kind, n in (("list", 40_000), ("list", 400_000), ("blank", 10_000_000)):
        subprocess.run([sys.executable, "-c", CASE, kind, str(n)], check=True, timeout=600)


if __name__ == "__main__":
    main()
