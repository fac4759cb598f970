"""Writing the state file: only when its content changed, and a failure logged once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .rundir import RunDir

log = logging.getLogger("wg_endpointd.runtime.daemon")


class StateFile:
    def __init__(self, run_dir: RunDir, wall: Callable[[], float]) -> None:
        self.run_dir, self.wall = run_dir, wall
        self._written: dict[str, Any] | None = None
        self._error: str | None = None

    def write(self, snap: dict[str, Any]) -> bool:
        """Write `snap` plus `written_at` unless it equals what was last written; True
        when its content changed."""
        if snap == self._written:
            return False
        try:
            self.run_dir.write_state({**snap, "written_at": round(self.wall(), 3)})
        except OSError as exc:
            why = exc.strerror or str(exc)  # not str(exc): it names a new temporary file each time
            if self._error != why:
                log.error("cannot write the state file in %s: %s; still running",
                          self.run_dir.path, why)
                self._error = why
            return True
        if self._error is not None:
            log.info("state file written again")
            self._error = None
        self._written = snap
        return True
