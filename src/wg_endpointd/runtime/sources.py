"""Where `once`, `run`, `config` and a reload read the configuration from: UCI files
(OpenWrt) or wg-quick files and the TOML settings (a Linux host), chosen one way for all.

The default is wg-quick when --wireguard-dir is given or CONFIG_DIR/network is missing,
else UCI; --source says it outright. A daemon keeps the source it started with.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core.errors import ConfigError, UsageError, WgError
from ..core.specs import Config

UCI, WG_QUICK = "uci", "wg-quick"
CONFIG_DIR = "/etc/config"
WIREGUARD_DIR = "/etc/wireguard"
SETTINGS = "/etc/wg-endpointd/wg-endpointd.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that say where the configuration is (once, run, config)."""
    parser.add_argument("--config-dir", default=CONFIG_DIR, help="UCI directory")
    parser.add_argument("--wireguard-dir", help=f"wg-quick files (default {WIREGUARD_DIR})")
    parser.add_argument("--source", choices=(UCI, WG_QUICK),
                        help="uci or wg-quick (default: wg-quick when --wireguard-dir is "
                             "given or CONFIG_DIR/network is missing, else uci)")
    parser.add_argument("--settings", help=f"settings for wg-quick (default {SETTINGS})")


@dataclass(frozen=True, slots=True)
class Source:
    kind: str  # UCI or WG_QUICK
    config_dir: str
    wireguard_dir: str
    settings: str
    by_default: bool  # neither --source nor --wireguard-dir chose it


def choose(args: argparse.Namespace) -> Source:
    """The source the flags name; UsageError when they contradict each other."""
    config_dir = getattr(args, "config_dir", None) or CONFIG_DIR
    wg_dir = getattr(args, "wireguard_dir", None)
    settings = getattr(args, "settings", None)
    kind = getattr(args, "source", None)
    if kind == UCI and (wg_dir or settings):
        raise UsageError("--wireguard-dir and --settings go with --source wg-quick; "
                         f"with UCI the settings are {os.path.join(config_dir, 'wg-endpointd')}")
    chosen = kind or (WG_QUICK if wg_dir or not os.path.lexists(
        os.path.join(config_dir, "network")) else UCI)
    return Source(chosen, config_dir, wg_dir or WIREGUARD_DIR, settings or SETTINGS,
                  kind is None and wg_dir is None)


def _nothing_here(src: Source) -> str:
    """What a host with neither configuration lacks, and what to pass."""
    return (f"this host has no {os.path.join(src.config_dir, 'network')} (OpenWrt's UCI) and "
            f"no wg-quick files ({src.wireguard_dir}/*.conf); pass --wireguard-dir DIR where "
            "your <interface>.conf files are, or --config-dir DIR with a UCI network file "
            "(`once` also takes --interface IF --peer KEY --host HOST for one peer)")


def load(src: Source, interfaces: Callable[[], Sequence[str]]) -> Config:
    """Read the configuration; `interfaces` lists the WireGuard interfaces that exist
    (only called for wg-quick). Raises ConfigError, also when they cannot be listed."""
    if src.kind == UCI:
        from .. import config

        return config.load(src.config_dir)
    from ..config import hostload

    if not os.path.isdir(src.wireguard_dir):
        if src.by_default:
            raise ConfigError(_nothing_here(src))
        raise ConfigError("no such directory (--wireguard-dir names where the wg-quick "
                          "<interface>.conf files are)", src.wireguard_dir)
    if src.by_default and not hostload.conf_names(src.wireguard_dir):
        raise ConfigError(_nothing_here(src))
    try:
        names = interfaces()
    except WgError as exc:
        raise ConfigError(f"cannot list the WireGuard interfaces: {exc}") from None
    return hostload.load(src.wireguard_dir, src.settings, names)


def loader(args: argparse.Namespace) -> Callable[[], Config]:
    """The function that reads the configuration these flags name, at the start and at
    every reload (the source stays the one chosen now)."""
    src = choose(args)

    def interfaces() -> Sequence[str]:
        from ..system.wg import WgClient

        return WgClient().interfaces()

    return lambda: load(src, interfaces)
