"""User hooks, run on a worker thread of their own, one event at a time, in order.

`submit()` never blocks: events wait in an unbounded queue, so a burst is never lost,
and one worker runs them one after the other, never two hooks at once.

- openwrt: `ubus send wg-endpointd {...}` (as netifd publishes `network.interface`;
  openwrt/ubus cli.c), then `/sbin/hotplug-call wg-endpointd`, which sources every file
  of /etc/hotplug.d/wg-endpointd/ in `ls` order (openwrt/openwrt
  package/base-files/files/sbin/hotplug-call). The time limit covers that whole call.
  Without ubusd the ubus step is one debug line.
- linux: every executable regular file of `hooks_dir`, in lexical order, skipping the
  names NetworkManager's dispatcher skips (core/hookenv.py) and, as it does, files that
  are writable by group or others or owned by another user. Each hook has the limit.

A failure or a timeout is one warning naming the hook and its exit status or signal;
the next hook and the next event still run. hotplug-call's own exit status is only
that of the last file it sourced, so on OpenWrt just its timeouts and signals count
(a script there reports its own failures, with `logger`). What a hook printed (its last 2 KiB) is
logged at debug only.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from wg_endpointd.core import hookenv
from wg_endpointd.system import proc
from wg_endpointd.system.hookproc import HookResult, run_hook, signal_group

log = logging.getLogger(__name__)

HOOKS_DIR = "/etc/wg-endpointd/hooks.d"
HOTPLUG_CALL = "/sbin/hotplug-call"
HOTPLUG_TYPE = "wg-endpointd"
UBUS_EVENT = "wg-endpointd"
UBUS_TIMEOUT = 5.0
KILL_GRACE = 2.0

RunHook = Callable[..., HookResult]  # run_hook's signature
Run = Callable[..., subprocess.CompletedProcess[str]]  # proc.run's, for ubus


class HookRunner:
    """Runs the user's hooks for each submitted event, off the caller's thread."""

    def __init__(self, mode: str, hooks_dir: str = HOOKS_DIR, timeout: float = 30.0, *,
                 hotplug_call: str = HOTPLUG_CALL, ubus: str = "ubus",
                 grace: float = KILL_GRACE, run_hook: RunHook = run_hook,
                 run: Run = proc.run,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if mode not in ("openwrt", "linux"):
            raise ValueError(f"hook mode must be openwrt or linux, not {mode!r}")
        self.mode = mode
        self.hooks_dir = hooks_dir
        self.timeout = timeout
        self.hotplug_call = hotplug_call
        self.ubus = ubus
        self.grace = grace
        self._run_hook = run_hook
        self._run = run
        self._clock = clock
        self._queue: collections.deque[dict[str, str]] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self._pgid: int | None = None  # the running hook's process group
        self._thread: threading.Thread | None = None
        self._missing_said = False

    # -- the caller's side ----------------------------------------------------------

    def submit(self, env: Mapping[str, str]) -> None:
        """Queue one event (its hook variables); returns at once."""
        path = hookenv.OPENWRT_PATH if self.mode == "openwrt" else hookenv.LINUX_PATH
        clean, dropped = hookenv.hook_environment(env, path)
        if dropped:
            log.warning("hook event: left out %s (not a hook variable, or a key)",
                        ", ".join(dropped))
        with self._cond:
            if self._stopping:
                log.debug("hook event %s after stop: not run", clean.get("ACTION", "?"))
                return
            self._queue.append(clean)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="hooks", daemon=True)
                self._thread.start()
            self._cond.notify()

    def pending(self) -> int:
        """Events queued or running."""
        with self._cond:
            return len(self._queue) + (1 if self._busy else 0)

    def stop(self, timeout: float = 3.0) -> None:
        """Drop queued events (one line says how many); let the running hook finish
        within `timeout`, else SIGTERM its group, and SIGKILL after the grace."""
        with self._cond:
            self._stopping = True
            dropped = len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
            thread = self._thread
        if dropped:
            log.info("hooks: %d queued event(s) dropped at exit", dropped)
        if thread is None:
            return
        thread.join(timeout)
        if thread.is_alive():
            self._signal_running(signal.SIGTERM)
            thread.join(self.grace)
        if thread.is_alive():
            self._signal_running(signal.SIGKILL)
            thread.join(1.0)

    def _signal_running(self, sig: int) -> None:
        with self._cond:
            pgid = self._pgid
        if pgid is not None:
            signal_group(pgid, sig)

    # -- the worker ------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                env = self._queue.popleft()
                self._busy = True
            try:
                self._event(env)
            except Exception:  # a bug here must not end the worker
                log.exception("hooks: unexpected error")
            finally:
                with self._cond:
                    self._busy = False

    def _event(self, env: dict[str, str]) -> None:
        if self.mode == "openwrt":
            self._publish(env)
            if not os.path.exists(self.hotplug_call):
                if not self._missing_said:
                    log.info("hooks: %s not found; hotplug hooks are not run",
                             self.hotplug_call)
                    self._missing_said = True
                return
            self._one([self.hotplug_call, HOTPLUG_TYPE], env)
            return
        for hook in self.hooks():
            with self._cond:
                if self._stopping:
                    return
            self._one([hook], env)

    def hooks(self) -> list[str]:
        """The hooks an event runs now (linux mode), in order."""
        try:
            names = sorted(os.listdir(self.hooks_dir))
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("hooks: cannot list %s: %s", self.hooks_dir, exc.strerror)
            return []
        paths = [os.path.join(self.hooks_dir, n) for n in names if hookenv.is_hook_name(n)]
        return [p for p in paths if self._runnable(p)]

    @staticmethod
    def _runnable(path: str) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or not st.st_mode & stat.S_IXUSR:
            return False  # READMEs, directories, disabled hooks (chmod -x)
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or st.st_uid not in (0, os.geteuid()):
            log.warning("hook %s skipped: writable by group or others, or not ours", path)
            return False
        return True

    def _one(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        name = " ".join(argv)
        action = env.get("ACTION", "?")
        try:
            result = self._run_hook(argv, env, self.timeout, grace=self.grace,
                                    on_start=self._started, clock=self._clock)
        except OSError as exc:
            log.warning("hook %s (%s) could not start: %s", name, action,
                        exc.strerror or exc)
            return
        finally:
            with self._cond:
                self._pgid = None
        end = hookenv.describe_end(result.returncode)
        if result.timed_out:
            log.warning("hook %s (%s) took over %gs: stopped, %s", name, action,
                        self.timeout, end)
        elif result.returncode < 0 or (result.returncode and self.mode == "linux"):
            log.warning("hook %s (%s) failed: %s", name, action, end)
        else:
            log.debug("hook %s (%s): %s in %.2fs", name, action, end, result.seconds)
        if result.output and log.isEnabledFor(logging.DEBUG):
            for line in result.output.decode("utf-8", "replace").splitlines():
                log.debug("hook %s: | %s", name, line)

    def _started(self, pgid: int) -> None:
        with self._cond:
            self._pgid = pgid

    def _publish(self, env: Mapping[str, str]) -> None:
        """ubus send; no ubusd (or no ubus) is worth a debug line only."""
        argv = [self.ubus, "send", UBUS_EVENT, hookenv.ubus_payload(env)]
        try:
            out = self._run(argv, timeout=UBUS_TIMEOUT, env={"PATH": hookenv.OPENWRT_PATH})
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.debug("ubus send %s: %s", UBUS_EVENT, exc)
            return
        if out.returncode != 0:
            log.debug("ubus send %s: exit %d %s", UBUS_EVENT, out.returncode,
                      (out.stderr or "").strip()[:200])
