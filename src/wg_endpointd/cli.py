"""Command line: argument parsing, logging set-up and exit codes (design.md §6)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from . import __version__
from .config import DEFAULT_PORT, Config, HostSpec, PeerConfig, Settings
from .core.allowed import default_probe_address
from .core.errors import ConfigError, UsageError, WgEndpointdError
from .core.validate import is_ifname, is_public_key, never_endpoint, parse_hostport, parse_port
from .runtime import sources
from .system import signals
from .system.logsetup import setup_logging, stderr_line, without_tls

if TYPE_CHECKING:
    from .runtime.engine import Engine
    from .runtime.failover import Keeper
    from .system.wg import WgClient

EXIT_OK, EXIT_UNFIXED, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("wg_endpointd")


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="wg-endpointd", description=(
        "Keep every WireGuard peer's endpoint on an address WireGuard can reach."))
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log probe detail (debug)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    once = sub.add_parser("once", parents=[common],
                          help="check and fix every managed peer once, then exit")
    sources.add_arguments(once)
    once.add_argument("--dry-run", action="store_true", help="decide but change nothing")
    once.add_argument("--interface", help="only this WireGuard interface")
    once.add_argument("--peer", help="only the peer with this public key")
    once.add_argument("--host", help="candidate host for --peer, without UCI")
    once.add_argument("--port", help=f"port for --host (default {DEFAULT_PORT})")
    run = sub.add_parser("run", parents=[common], help="run the daemon in the foreground (procd)")
    sources.add_arguments(run)
    status = sub.add_parser("status", help="show the daemon's view from the run directory")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    cfg = sub.add_parser("config", help="show the peers it would manage, as read")
    sources.add_arguments(cfg)
    cfg.add_argument("--json", action="store_true", help="machine-readable output")
    cfg.add_argument("--check", action="store_true",
                     help="only check as `run` would: print enabled or disabled, or fail (2)")
    return top


def _adhoc_peer(args: argparse.Namespace) -> PeerConfig:
    """The peer described by --interface/--peer/--host/--port (no UCI)."""
    if not (args.interface and args.peer):
        raise UsageError("--host needs --interface and --peer")
    try:
        port = parse_port(args.port) if args.port else DEFAULT_PORT
        host, port = parse_hostport(args.host, port)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    why = never_endpoint(host)
    if why is not None:
        raise UsageError(f"--host {host}: {why}")
    settings = Settings()
    return PeerConfig(interface=args.interface, public_key=args.peer, section="(command line)",
                      endpoint_host=host, endpoint_port=port, hosts=(HostSpec(host, port),),
                      probe_timeout=settings.probe_timeout,
                      verify_timeout=settings.verify_timeout)


def _select(cfg: Config, args: argparse.Namespace) -> list[PeerConfig]:
    peers = cfg.managed()
    if args.interface:
        if args.interface not in cfg.interfaces:
            raise UsageError(f"unknown interface {args.interface!r} (wireguard interfaces: "
                             f"{', '.join(cfg.interfaces) or 'none'})")
        peers = [p for p in peers if p.interface == args.interface]
    if args.peer:
        peers = [p for p in peers if p.public_key == args.peer]
        if not peers:
            raise UsageError(f"peer {args.peer[:8]}… is not a managed peer"
                             + (f" of {args.interface}" if args.interface else ""))
    return peers


def _check_selectors(args: argparse.Namespace) -> None:
    if args.interface is not None and not is_ifname(args.interface):
        raise UsageError(f"invalid interface name {args.interface!r}")
    if args.peer is not None and not is_public_key(args.peer):
        raise UsageError("--peer is not a WireGuard public key (44 base64 characters)")
    if args.port is not None and args.host is None:
        raise UsageError("--port needs --host")


def cmd_once(args: argparse.Namespace) -> int:
    without_tls()
    from .runtime.engine import Engine
    from .system.probe import IcmpProber
    from .system.routes import HostRoutes
    from .system.wg import WgClient

    _check_selectors(args)
    problems: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    host_routes = True
    if args.host is not None:
        peers = [_adhoc_peer(args)]
        level = "info"
    else:
        cfg = load_config(args)
        problems, level, advice = cfg.problems, cfg.settings.log_level, cfg.advice
        notes = cfg.notes
        host_routes = cfg.settings.host_routes
        peers = _select(cfg, args)
    setup_logging("debug" if args.verbose else level)
    for note in notes:
        log.info("%s", note)
    for problem in (*problems, *advice):
        log.warning("%s", problem)
    if not peers:
        log.warning("no managed peers")
        return EXIT_UNFIXED if problems else EXIT_OK
    lock = None
    if not args.dry_run:
        from .runtime.service import lock_run_dir
        from .system.rundir import RunDir

        lock = lock_run_dir(RunDir(), "once")
        if isinstance(lock, str):
            raise UsageError(lock)  # worded for `once` (service.lock_run_dir)
    routes = None if args.dry_run or not host_routes else HostRoutes()
    wg = WgClient()
    engine = Engine(wg, IcmpProber(), routes=routes)
    keeper = None if args.host or args.dry_run else _groups(engine, wg, cfg, peers)
    working: set[tuple[str, str]] = set()
    try:
        if keeper is not None:
            keeper.begin_once()
        outcomes = engine.round(peers, dry_run=args.dry_run)
        if keeper is not None:
            working = keeper.settle_once(outcomes)
    finally:
        if isinstance(lock, int):
            os.close(lock)
    for out in outcomes:
        line = f"{out.peer.label}: {out.status} {out.endpoint or '(none)'} ({out.detail})"
        (log.info if out.ok else log.warning)("%s", line)
    fixed = all(o.ok or (o.peer.interface, o.peer.public_key) in working for o in outcomes)
    return EXIT_OK if fixed and not problems else EXIT_UNFIXED


def _groups(engine: Engine, wg: WgClient, cfg: Config, peers: list[PeerConfig]
            ) -> Keeper | None:
    """Standby groups whose members are all in this run (`once` hook)."""
    import random
    import time

    from .core.state import PeerState
    from .runtime.failover import Keeper

    chosen = {(p.interface, p.public_key) for p in peers}
    groups = tuple(g for g in cfg.groups if all((g.interface, k) in chosen for k in g.members))
    if not groups:
        return None
    keeper = Keeper(engine, wg, time.monotonic, time.time, random.random,
                    lambda _p: PeerState())
    keeper.configure(dataclasses.replace(cfg, groups=groups))
    return keeper


def load_config(args: argparse.Namespace) -> Config:
    """UCI or wg-quick files, as the flags choose (runtime/sources.py)."""
    return sources.loader(args)()


def peer_json(peer: PeerConfig) -> dict[str, object]:
    return {
        "interface": peer.interface, "public_key": peer.public_key, "section": peer.section,
        "description": peer.description, "endpoint_host": peer.endpoint_host,
        "endpoint_port": peer.endpoint_port, "disabled": peer.disabled,
        "managed": peer.managed, "reason": peer.reason,
        "candidates": [str(h) for h in peer.hosts], "family": peer.family,
        "allowed_ips": list(peer.allowed_ips), "route_allowed_ips": peer.route_allowed_ips,
        "persistent_keepalive": peer.keepalive,
        "probe_address": peer.probe_address or default_probe_address(peer.allowed_ips),
        "probe_timeout": peer.probe_timeout, "verify_timeout": peer.verify_timeout,
        "fwmark": peer.fwmark,
    }


def cmd_config(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if args.check:  # the init script's gate: warnings are for the daemon's log
        print("enabled" if cfg.settings.enabled else "disabled")
        return EXIT_OK
    if args.json:
        print(json.dumps([peer_json(p) for p in cfg.peers], indent=2))
    else:
        for p in cfg.peers:
            state = "managed" if p.managed else f"not managed: {p.reason}"
            hosts = " ".join(str(h) for h in p.hosts) or "-"
            print(f"{p.interface}\t{p.public_key[:8]}…\t{p.description or '-'}\t{hosts}\t{state}")
    for note in cfg.notes:
        stderr_line(f"wg-endpointd: note: {note}", logging.INFO)
    for problem in (*cfg.problems, *cfg.advice):
        stderr_line(f"wg-endpointd: warning: {problem}", logging.WARNING)
    return EXIT_UNFIXED if cfg.problems else EXIT_OK


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    """The handler for a command, importing only what that command needs."""
    if name == "run":
        from .runtime.service import cmd_run

        return cmd_run
    if name == "status":
        from .runtime.status import cmd_status

        return cmd_status
    return cmd_once if name == "once" else cmd_config


def main(argv: Sequence[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else list(argv))[:1] == ["run"]:
        signals.install_early()  # before anything slow: procd may signal at once
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    try:
        return _command(args.command)(args)
    except (ConfigError, UsageError) as exc:
        stderr_line(f"wg-endpointd: error: {exc}")
        return EXIT_USAGE
    except WgEndpointdError as exc:
        stderr_line(f"wg-endpointd: error: {exc}")
        return EXIT_UNFIXED
    except KeyboardInterrupt:
        return 130
