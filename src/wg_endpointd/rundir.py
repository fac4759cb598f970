"""The run directory: pid file, hotplug interface list and state file, written atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

DEFAULT_RUN_DIR = "/var/run/wg-endpointd"
PID_FILE, HOTPLUG_LIST, STATE_FILE = "wg-endpointd.pid", "hotplug.list", "state.json"


def run_dir() -> str:
    return os.environ.get("WG_ENDPOINTD_RUN_DIR") or DEFAULT_RUN_DIR


class RunDir:
    def __init__(self, path: str | None = None) -> None:
        self.path = path or run_dir()

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def write(self, name: str, text: str) -> None:
        """Write via a temporary file and rename, so readers never see half a file."""
        os.makedirs(self.path, mode=0o755, exist_ok=True)
        tmp = self._file(f".{name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self._file(name))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def write_pid(self, pid: int) -> None:
        self.write(PID_FILE, f"{pid}\n")

    def remove_pid(self, pid: int) -> None:
        """Remove the pid file if it is ours."""
        if self.read_pid() == pid:
            os.unlink(self._file(PID_FILE))

    def read_pid(self) -> int | None:
        try:
            with open(self._file(PID_FILE)) as f:
                text = f.read().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def daemon_running(self) -> int | None:
        """The daemon's pid if its pid file names a live process."""
        pid = self.read_pid()
        if pid is None:
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def write_hotplug_list(self, names: Iterable[str]) -> None:
        self.write(HOTPLUG_LIST, "".join(f"{n}\n" for n in names))

    def write_state(self, state: dict[str, Any]) -> None:
        self.write(STATE_FILE, json.dumps(state, indent=1, sort_keys=True) + "\n")

    def read_state(self) -> dict[str, Any]:
        """Raises OSError when missing, ValueError when corrupt."""
        with open(self._file(STATE_FILE)) as f:
            data = json.load(f)
        if not isinstance(data, dict) or not isinstance(data.get("peers"), list):
            raise ValueError("unexpected structure")
        return data
