"""Network changes from rtnetlink wake the daemon, as a hotplug SIGUSR1 does on OpenWrt.

On by default where peers come from wg-quick files (a Linux host: no netifd, no hotplug
scripts); it may run beside hotplug on OpenWrt too (`events_netlink` True).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..system.netlink import Listener
from . import sources

if TYPE_CHECKING:
    from .daemon import Daemon
    from .service import Waiter

log = logging.getLogger(__name__)
Stopper = Callable[[], None]


def nothing() -> None:
    """The stopper when no listener runs."""


def wanted(args: argparse.Namespace) -> bool:
    """Whether `run` listens on rtnetlink: `args.events_netlink` when set, else on a Linux
    host whose peers come from wg-quick files (no `CONFIG_DIR/network`: no hotplug)."""
    choice = getattr(args, "events_netlink", None)
    if choice is not None:
        return bool(choice)
    return sys.platform.startswith("linux") and sources.choose(args).kind == sources.WG_QUICK


def ignored(daemon: Daemon) -> frozenset[str]:
    """The WireGuard interfaces of the configuration in force (a reload may change them)."""
    cfg = daemon.cfg
    return frozenset({*cfg.interfaces, *(p.interface for p in cfg.peers)})


def start_events(daemon: Daemon, waiter: Waiter,
          make: Callable[..., Listener] = Listener) -> Stopper:
    """Listen for network changes; each burst logs one line and wakes a round.

    Never raises: without a netlink socket the daemon still runs on its timers."""
    def on_change(reason: str) -> None:
        log.info("network change: %s", reason)
        daemon.wake = True  # as daemon.on_signal does for SIGUSR1
        waiter.poke()

    listener = make(on_change, lambda: ignored(daemon))
    try:
        listener.start()
    except OSError as exc:
        log.warning("cannot listen for network changes on rtnetlink (%s); relying on "
                    "the periodic checks", exc.strerror or exc)
        listener.stop()
        return nothing
    log.debug("listening for network changes on rtnetlink")
    return listener.stop
