"""SIGHUP: read the configuration again and fit the daemon's state, routes and hotplug
list to it; a configuration that does not load leaves the old one running."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..core.errors import ConfigError
from ..core.outcome import PeerId, peer_id

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger("wg_endpointd.runtime.daemon")


def apply(d: Daemon) -> None:
    """SIGHUP: the configuration read again; on an error the old one stays. systemd hears
    RELOADING=1 before and READY=1 after, whatever the outcome (d.on_reload)."""
    d.on_reload(False)
    try:
        _apply(d)
    finally:
        d.on_reload(True)


def _apply(d: Daemon) -> None:
    try:
        cfg = d.load()
    except ConfigError as exc:
        log.error("reload failed, keeping the old configuration: %s", exc)
        return
    d.cfg = cfg
    d.groups.configure(cfg)
    logging.getLogger("wg_endpointd").setLevel(cfg.settings.log_level.upper())
    keep = {peer_id(p) for p in d.peers}
    d.states = {k: v for k, v in d.states.items() if k in keep}
    d.tester.keep_only(keep)
    d.fleet.keep_only(keep, {g.name for g in cfg.groups})  # history and counters
    d.engine.remembered = {k: v for k, v in d.engine.remembered.items() if k in keep}
    _routes(d, keep)
    try:
        d.run_dir.write_hotplug_list(d.hotplug_names())
    except OSError as exc:
        log.error("cannot write %s: %s", d.run_dir.path, exc.strerror or exc)
    for note in cfg.notes:
        log.info("%s", note)
    for problem in (*cfg.problems, *cfg.advice):
        log.warning("%s", problem)
    log.info("configuration reloaded: %d managed peer(s)", len(d.peers))


def _routes(d: Daemon, keep: set[PeerId]) -> None:
    """Apply a `host_routes` change; drop the routes of peers no longer managed."""
    routes = d.engine.routes
    if routes is not None and not d.cfg.settings.host_routes:
        routes.clear()
        d.engine.routes = None
        log.info("host_routes is off: removed the daemon's host routes")
    elif routes is None and d.cfg.settings.host_routes and d.make_routes:
        d.engine.routes = d.make_routes()
    elif routes is not None:
        routes.keep_only(keep)
