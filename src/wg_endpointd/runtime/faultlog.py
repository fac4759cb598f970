"""The daemon's per-peer log lines within budget (faults.py): a batch (one round, one
check) shows its first peers' lines and counts the rest; a summary line at most every
SUMMARY_EVERY seconds while faults last."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from ..core import faults
from ..core.state import PeerState

log = logging.getLogger("wg_endpointd.runtime.daemon")


class FaultLog:
    def __init__(self) -> None:
        self.budget: faults.Budget | None = None  # the batch being logged
        self.next_summary = 0.0

    def line(self, label: str, level: int, text: str) -> None:
        if self.budget is not None:
            level = self.budget.level(label, level, text)
        log.log(level, "%s: %s", label, text)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Lines logged inside count against one budget (an enclosing batch's, if any)."""
        if self.budget is not None:
            yield
            return
        budget = self.budget = faults.Budget()
        try:
            yield
        finally:
            self.budget = None
            counted = budget.close()
            if counted is not None:
                log.warning("%s", counted)

    def summarise(self, now: float, states: Mapping[tuple[str, str], PeerState],
                  labels: Callable[[], Mapping[tuple[str, str], str]]) -> None:
        """Called every pass of the loop: the labels are made only when a line is due."""
        if now < self.next_summary:
            return
        text = faults.summary(states, labels())
        if text is not None and self.next_summary > 0:
            log.warning("%s", text)
        self.next_summary = now + faults.SUMMARY_EVERY
