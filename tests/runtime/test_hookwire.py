"""The hook runner as the daemon builds it: the platform's way, the settings' time limit."""

from __future__ import annotations

import dataclasses

from wg_endpointd.core.options import Settings
from wg_endpointd.runtime.hookwire import build_hook_runner, hook_mode, reload_hook_settings
from wg_endpointd.system.hooks import HOOKS_DIR


def test_uci_means_openwrt_anything_else_the_hooks_directory() -> None:
    assert hook_mode("uci") == "openwrt"
    assert hook_mode("wg-quick") == "linux"


def test_runner_takes_the_settings_time_limit() -> None:
    runner = build_hook_runner(Settings(), "wg-quick")
    assert (runner.mode, runner.hooks_dir, runner.timeout) == ("linux", HOOKS_DIR, 30.0)
    runner = build_hook_runner(dataclasses.replace(Settings(), hook_timeout=7.5), "uci")
    assert (runner.mode, runner.timeout) == ("openwrt", 7.5)
    reload_hook_settings(runner, dataclasses.replace(Settings(), hook_timeout=2.0))
    assert runner.timeout == 2.0
    assert runner.pending() == 0  # no worker thread until an event comes
