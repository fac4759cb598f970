"""Build the hook runner for this host: OpenWrt's hotplug way when the peers come from
UCI, the hooks directory otherwise (docs/hooks.md)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from wg_endpointd.core.events import Event, hook_env
from wg_endpointd.core.options import Settings
from wg_endpointd.system.hooks import HOOKS_DIR, HOTPLUG_CALL, HookRunner

if TYPE_CHECKING:
    from .daemon import Daemon


def hook_mode(source: str) -> str:
    """'openwrt' for the UCI source, 'linux' for wg-quick configs (or anything else)."""
    return "openwrt" if source == "uci" else "linux"


def build_hook_runner(settings: Settings, source: str, *,
                      hooks_dir: str | None = None) -> HookRunner:
    """A runner with the settings' `hook_timeout`; nothing starts until an event comes.
    WG_ENDPOINTD_HOOKS_DIR and WG_ENDPOINTD_HOTPLUG_CALL move the hooks (as
    WG_ENDPOINTD_RUN_DIR moves the run directory): for tests and unusual layouts."""
    env = os.environ
    return HookRunner(hook_mode(source),
                      hooks_dir or env.get("WG_ENDPOINTD_HOOKS_DIR") or HOOKS_DIR,
                      settings.hook_timeout,
                      hotplug_call=env.get("WG_ENDPOINTD_HOTPLUG_CALL") or HOTPLUG_CALL)


def attach(daemon: Daemon, runner: HookRunner) -> None:
    """Every event of the daemon goes to the hooks, with the `hook_timeout` of the
    configuration in force (a reload may change it)."""
    def submit(event: Event) -> None:
        reload_hook_settings(runner, daemon.cfg.settings)
        runner.submit(hook_env(event))

    daemon.events.append(submit)


def reload_hook_settings(runner: HookRunner, settings: Settings) -> None:
    """After a reload: the next hook runs with the new `hook_timeout`."""
    runner.timeout = settings.hook_timeout
