"""The repairs' results folded into the daemon's state, in the loop (repairs.py runs
them beside it): early outcomes as they come, then each ended repair; a peer that a check
passed by while it was under repair is looked at at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.outcome import PeerId, peer_id
from . import failback
from .repairs import Finished

if TYPE_CHECKING:
    from .daemon import Daemon


def take(d: Daemon) -> bool:
    """Apply what the repairs beside the loop handed back; True when anything was."""
    early, done = d.repairs.take()
    keep = {peer_id(p) for p in d.peers}  # a reload may have dropped some
    freed = {peer_id(o.peer) for o in early} | {i for fin in done for i in fin.peers}
    if freed & d.skipped:  # a check passed them by: look at them now, plan tests
        d.skipped -= freed
        d.next_check = d.clock()
    with d.faultlog.batch():
        for out in early:
            if peer_id(out.peer) in keep:
                d.apply(out)
        for fin in done:
            _finished(d, fin, keep)
    return bool(early or done)


def _finished(d: Daemon, fin: Finished, keep: set[PeerId]) -> None:
    outs = [o for o in fin.outcomes if peer_id(o.peer) in keep]
    if fin.kind == "failback":
        for out in outs:
            new = failback.done(out, d._state(out.peer), d.cfg.settings, d.apply)
            if new is not None:
                d.states[peer_id(out.peer)] = new
        return
    for out in outs:
        if peer_id(out.peer) not in fin.early:
            d.apply(out)
    d.groups.after_round(outs)
    if fin.kind == "full" and not d.pruned and d.engine.routes is not None:
        d.engine.routes.prune_adopted()  # left by an earlier run, not needed now
        d.pruned = True
