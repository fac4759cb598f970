"""`wg-endpointd run`: start-up under procd or by hand.

Order matters: signal handlers first (signals.py, from cli.main), then the
configuration, then the run directory's lock, so that a second daemon, a bad
run directory or a bad configuration each end in one line and a non-zero exit
instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import socket
import time
from typing import TYPE_CHECKING

from ..core.errors import WgEndpointdError
from ..system import signals
from ..system.rundir import Busy, RunDir
from ..system.sdnotify import Notifier
from .announce import Announcer
from .metrics import host_facts

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger(__name__)
dlog = logging.getLogger("wg_endpointd.runtime.daemon")  # the daemon's own lines, as before
EXIT_BUSY, EXIT_SETUP = 1, 2
ONCE_WAIT = 15.0  # how long `run` waits for a `once` that holds the lock
HOOK_WAIT = 1.0  # at a stop, time for a running hook before it is killed
STOP_WAIT = 3.0  # at a stop, time for the repairs beside the loop to restore (procd: 5 s)


class Waiter:
    """Sleeps until a timeout or until a signal arrives."""

    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)
        signal.set_wakeup_fd(self._w.fileno(), warn_on_full_buffer=False)

    def poke(self) -> None:
        """Wake the loop now (a repair beside it handed something back)."""
        try:
            self._w.send(b"r")
        except (BlockingIOError, OSError):
            pass  # full: the loop wakes anyway

    def __call__(self, timeout: float) -> None:
        select.select([self._r], [], [], max(0.0, timeout))
        try:
            while self._r.recv(64):
                pass
        except BlockingIOError:
            pass


def lock_run_dir(rd: RunDir, mode: str, wait: float = 0.0) -> int | str:
    """The lock fd, or a one-line reason, worded for `mode`, why it cannot be had.

    A `run` waits up to `wait` seconds for a `once` to finish; another daemon
    is never waited for.
    """
    deadline = time.monotonic() + wait
    for _ in range(int(wait / 0.1) + 2):
        try:
            return rd.acquire(mode)
        except Busy as busy:
            if busy.mode == "once" and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            who = "the daemon" if busy.mode == "run" else f"`wg-endpointd {busy.mode}`"
            line = (f"{who} is already running (pid {busy.pid or '?'}) with run "
                    f"directory {rd.path}")
            if mode != "once":
                return line
            if busy.mode == "run":
                return (f"{line}; it manages the peers itself (see `wg-endpointd status`, "
                        "or wake it with SIGUSR1), so `once` does not race it")
            return f"{line}; try `once` again when it has finished"
        except OSError as exc:
            line = f"run directory {rd.path}: {exc.strerror or exc}"
            if mode != "once":
                return line
            return f"{line}; `once` takes its lock there while it changes peers"
    return f"run directory {rd.path}: still locked after {wait:g} s"


def serve(d: Daemon, sd: Announcer | None = None) -> int:
    """The daemon's life once the run directory's lock is taken: hotplug list and pid file,
    routes of an earlier run adopted, the loop (never ended by a runtime fault), and at
    exit its routes and pid file gone. `sd` tells systemd (announce.py)."""
    pid = os.getpid()
    notes = sd if sd is not None else Announcer()
    d.on_reload = lambda done: notes.reload_phase(d, done)
    d.fleet.metrics.host = host_facts  # where this host's metrics file goes by default
    try:
        d.fleet.restore(d.run_dir.read_state())  # the peers' history goes on
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        dlog.warning("state file unreadable (%s); rebuilding it", exc)
    d.run_dir.write_hotplug_list(d.hotplug_names())
    d.run_dir.write_pid(pid)
    if d.engine.routes is not None:
        d.engine.routes.adopt()
    dlog.info("started: %d managed peer(s) on %s", len(d.peers),
             ", ".join(d.cfg.interfaces) or "no interfaces")
    try:
        while not d.stop:
            try:
                delay = d.step()
            except WgEndpointdError as exc:
                dlog.error("%s", exc)
                delay = d.cfg.settings.check_interval
            except Exception:  # never exit on a runtime fault
                dlog.exception("unexpected error; continuing")
                delay = d.cfg.settings.check_interval
            delay = min(delay, notes.after_step(d))  # READY=1, WATCHDOG=1 when due
            if not (d.stop or d.wake or d.reload):
                d.wait(delay)
    finally:
        notes.stopping()
        if not d.repairs.wait_idle(STOP_WAIT):  # each restores what it changed
            dlog.warning("a repair did not end within %g s of the stop", STOP_WAIT)
        d.collect()
        if d.engine.routes is not None:
            d.engine.routes.clear()
        d.fleet.metrics.stop(d)  # wg_endpointd_up 0
        try:
            d.run_dir.remove_pid(pid)
        except OSError as exc:
            dlog.error("cannot remove the pid file: %s", exc)
        dlog.info("stopped")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ..system.logsetup import setup_logging, stderr_line, without_tls

    without_tls()
    sd = Announcer(Notifier.from_environ())  # first: no child may inherit NOTIFY_SOCKET
    from ..system.probe import IcmpProber
    from ..system.routes import HostRoutes
    from ..system.wg import WgClient
    from . import sources
    from .daemon import Daemon
    from .engine import Engine
    from .hookwire import attach, build_hook_runner
    from .netwatch import nothing, start_events, wanted
    from .repairs import in_thread

    load = sources.loader(args)  # UCI or wg-quick, the same at every reload
    cfg = load()  # a bad config at start is a usage error (exit 2)
    setup_logging("debug" if args.verbose else cfg.settings.log_level, daemon=True)
    if not cfg.settings.enabled:
        log.info("disabled in configuration (globals.enabled 0); exiting")
        sd.notifier.ready("disabled in configuration")  # an exit before READY=1 is a failure
        sd.stopping()
        return 0
    rd = RunDir()
    lock = lock_run_dir(rd, "run", ONCE_WAIT)
    if isinstance(lock, str):
        stderr_line(f"wg-endpointd: error: {lock}")
        return EXIT_BUSY if "already running" in lock else EXIT_SETUP
    stop_events = nothing
    hooks = None
    try:
        waiter = Waiter()
        routes = HostRoutes() if cfg.settings.host_routes else None
        daemon = Daemon(load, Engine(WgClient(), IcmpProber(), routes=routes), rd,
                        wait=waiter, config=cfg, make_routes=HostRoutes, spawn=in_thread,
                        notify=waiter.poke)
        signals.hand_over(daemon.on_signal)
        hooks = build_hook_runner(cfg.settings, sources.choose(args).kind)
        attach(daemon, hooks)  # user hooks, beside the loop (docs/hooks.md)
        for note in cfg.notes:
            log.info("%s", note)
        for problem in (*cfg.problems, *cfg.advice):
            log.warning("%s", problem)
        stop_events = start_events(daemon, waiter) if wanted(args) else nothing
        return serve(daemon, sd)
    except OSError as exc:
        stderr_line(f"wg-endpointd: error: run directory {rd.path}: {exc.strerror or exc}")
        return EXIT_SETUP
    finally:
        stop_events()  # rtnetlink listener (runtime/netwatch.py)
        if hooks is not None:
            hooks.stop(HOOK_WAIT)
        os.close(lock)
