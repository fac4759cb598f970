"""A log a router's ring buffer survives (state.py rule 5): a fault is one line when it
starts and one when it ends; while faults last, one summary line at most every
SUMMARY_EVERY seconds says how many peers and how many attempts. Pure."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from .state import PeerState

SUMMARY_EVERY = 300.0  # seconds between two summary lines while faults last
SHOWN = 3  # peers named in a summary line


def summary(states: Mapping[tuple[str, str], PeerState], labels: Mapping[tuple[str, str], str]
            ) -> str | None:
    """One line about every peer with a fault that lasts, or None when none has one."""
    failing = sorted((k for k, s in states.items() if s.fault is not None and k in labels),
                     key=lambda k: labels[k])
    if not failing:
        return None
    attempts = sum(states[k].failures for k in failing)
    named = "; ".join(f"{labels[k]}: {states[k].fault}" for k in failing[:SHOWN])
    more = f"; and {len(failing) - SHOWN} more" if len(failing) > SHOWN else ""
    return (f"{len(failing)} peer(s) still failing, {attempts} repair attempt(s) so far "
            f"(wg-endpointd status shows each): {named}{more}")


LIMIT = 5  # peers whose lines a batch (one round, one check) logs in full


class Budget:
    """One batch's lines: those of the first LIMIT peers as they are, the others' at
    debug, then one line that counts them by kind (500 peers dying at once are a dozen
    lines, not thousands)."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.shown: set[str] = set()
        self.hidden: set[str] = set()
        self.kinds: dict[str, int] = {}

    def level(self, label: str, level: int, text: str) -> int:
        """The level to log `label`'s line at."""
        if level < logging.INFO:
            return level
        if label in self.shown or len(self.shown) < self.limit:
            self.shown.add(label)
            return level
        self.hidden.add(label)
        kind = _kind(text)
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        return logging.DEBUG

    def close(self) -> str | None:
        """The counting line, or None when nothing was held back."""
        if not self.hidden:
            return None
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.kinds.items(),
                                                              key=lambda x: -x[1]))
        return (f"and {len(self.hidden)} more peer(s): {kinds} (wg-endpointd status shows "
                f"each)")


def _kind(text: str) -> str:
    """What a line says, without its numbers and addresses: `working again on
    192.0.2.2:51820` and `… on 192.0.2.6:51821` are one kind."""
    words = [w for w in text.split(" (", 1)[0].split(";", 1)[0].split()
             if not any(c.isdigit() for c in w)]
    while words and words[-1] in ("on", "within", "for", "s", "after"):
        words.pop()
    return " ".join(words) or text


def failing(states: Mapping[tuple[str, str], PeerState]) -> set[tuple[str, str]]:
    """Peers whose fault was reported: their repair tries are logged at debug."""
    return {k for k, s in states.items() if s.fault is not None}
