"""The uci-defaults migration shipped in files/etc/uci-defaults."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# -- uci-defaults migration -------------------------------------------------

FAKE_UCI = r'''#!PYTHON
"""Just enough of uci(1) for the migration: -q get/set/delete/commit on one flat file."""
import json, os, sys
store = os.environ["FAKE_UCI_STORE"]
data = json.load(open(store))
args = [a for a in sys.argv[1:] if a != "-q"]
cmd, arg = args[0], (args[1] if len(args) > 1 else "")
if cmd == "get":
    if arg not in data:
        sys.exit(1)
    print(data[arg])
elif cmd == "set":
    key, _, value = arg.partition("=")
    if key.count(".") == 2 and key.rsplit(".", 1)[0] not in data:
        sys.exit(1)
    data[key] = value
elif cmd == "delete":
    data = {k: v for k, v in data.items() if k != arg and not k.startswith(arg + ".")}
elif cmd == "commit":
    data.setdefault("#commits", 0)
    data["#commits"] += 1
json.dump(data, open(store, "w"))
'''


def _migrate(tmp_path: Path, state: dict[str, str], runs: int = 2) -> dict[str, object]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    uci = bindir / "uci"
    uci.write_text(FAKE_UCI.replace("PYTHON", sys.executable))
    uci.chmod(0o755)
    store = tmp_path / "store.json"
    store.write_text(json.dumps(state))
    script = REPO / "files/etc/uci-defaults/90-wg-endpointd"
    for _ in range(runs):
        result = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=False,
                                env={"PATH": f"{bindir}:{os.environ['PATH']}",
                                     "FAKE_UCI_STORE": str(store)})
        assert result.returncode == 0, result.stderr
    data = json.loads(store.read_text())
    data.pop("#commits", None)
    return data


def test_migration_renames_timeout_and_is_idempotent(tmp_path: Path) -> None:
    before = {"wg-endpointd.globals": "globals", "wg-endpointd.globals.timeout": "3"}
    assert _migrate(tmp_path, before) == {
        "wg-endpointd.globals": "globals", "wg-endpointd.globals.probe_timeout": "3"}


def test_migration_keeps_a_value_set_under_the_new_name(tmp_path: Path) -> None:
    before = {"wg-endpointd.globals": "globals", "wg-endpointd.globals.timeout": "3",
              "wg-endpointd.globals.probe_timeout": "1.5"}
    assert _migrate(tmp_path, before) == {
        "wg-endpointd.globals": "globals", "wg-endpointd.globals.probe_timeout": "1.5"}


def test_migration_adds_a_missing_globals_section(tmp_path: Path) -> None:
    assert _migrate(tmp_path, {}) == {"wg-endpointd.globals": "globals"}


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_migration_passes_shellcheck() -> None:
    script = REPO / "files/etc/uci-defaults/90-wg-endpointd"
    result = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout
