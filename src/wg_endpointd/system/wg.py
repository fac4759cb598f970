"""The `wg` binary: a pure dump parser and a thin adapter around subprocess."""

from __future__ import annotations

import ipaddress
import logging
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core.errors import WgError, WgMissing, WgUnavailable
from ..core.model import Endpoint, InterfaceDump, PeerDump
from ..core.validate import is_ifname, is_public_key
from . import proc

log = logging.getLogger(__name__)

Runner = Callable[..., subprocess.CompletedProcess[str]]
# What `wg show IF` says when IF does not exist: the kernel answers ENODEV; with
# no kernel module and no userspace socket, ipc.c's fallback reports EPROTONOSUPPORT.
_ABSENT = ("No such device", "Protocol not supported")


def parse_dump(name: str, text: str) -> InterfaceDump:
    """Parse `wg show IF dump`; the interface line's private key is dropped.

    Raises ValueError on malformed output.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty dump")
    head = lines[0].split("\t")
    if len(head) != 4:
        raise ValueError(f"bad interface line ({len(head)} fields)")
    peers: dict[str, PeerDump] = {}
    for line in lines[1:]:
        f = line.split("\t")
        if len(f) != 8:
            raise ValueError(f"bad peer line ({len(f)} fields)")
        allowed = () if f[3] == "(none)" else tuple(a for a in f[3].split(",") if a)
        peers[f[0]] = PeerDump(
            public_key=f[0],
            preshared_key=None if f[1] == "(none)" else f[1],
            endpoint=Endpoint.parse(f[2]),
            allowed_ips=allowed,
            latest_handshake=int(f[4]),
            rx_bytes=int(f[5]),
            tx_bytes=int(f[6]),
            keepalive=None if f[7] == "off" else int(f[7]),
        )
    return InterfaceDump(name=name, listen_port=int(head[2]), peers=peers)


def parse_all(text: str) -> dict[str, InterfaceDump]:
    """Parse `wg show all dump`, where every line starts with the interface name."""
    lines: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip():
            name, _, rest = line.partition("\t")
            lines.setdefault(name, []).append(rest)
    return {name: parse_dump(name, "\n".join(body)) for name, body in lines.items()}


@dataclass(frozen=True, slots=True)
class Reset:
    """Re-create a peer with every attribute restored and a new endpoint."""

    peer: PeerDump
    endpoint: Endpoint


def reset_args(resets: Sequence[Reset]) -> tuple[list[str], list[str]]:
    """argv tail for one `wg set` that resets peers, and the psk texts it reads.

    Removing and re-adding a peer clears its session and the 5 s handshake rate
    limit. Re-adding it with a keepalive makes WireGuard send a packet at once,
    which starts a handshake to the new endpoint; a peer whose keepalive was off
    gets it switched off again by a third entry in the same call. WireGuard
    applies one `wg set` as a single configuration transaction, so the peer is
    never left with the temporary keepalive, whenever the daemon is stopped.
    Preshared keys go through pipes named /proc/self/fd/N, never through argv;
    the i-th psk text is read from the placeholder `@PSK{i}`. A router's /dev is
    the small tmpfs procd mounts at boot and has no /dev/fd (openwrt/procd
    initd/early.c); /proc/self/fd exists wherever /proc is mounted.
    """
    args: list[str] = []
    psks: list[str] = []
    for item in resets:
        p = item.peer
        args += ["peer", p.public_key, "remove", "peer", p.public_key]
        if p.preshared_key:
            args += ["preshared-key", f"@PSK{len(psks)}"]
            psks.append(p.preshared_key)
        args += ["endpoint", str(item.endpoint), "allowed-ips", ",".join(p.allowed_ips),
                 "persistent-keepalive", str(p.keepalive or 25)]
        if p.keepalive is None:
            args += ["peer", p.public_key, "persistent-keepalive", "off"]
    return args, psks


class WgClient:
    """Runs `wg` with argv lists, a timeout and no DNS retries."""

    def __init__(self, wg_path: str = "wg", timeout: float = 5.0,
                 run: Runner = proc.run) -> None:
        self._wg = wg_path
        self._timeout = timeout
        self._run = run
        self._env = dict(os.environ, WG_ENDPOINT_RESOLUTION_RETRIES="0")

    def _call(self, args: list[str], pass_fds: Sequence[int] = ()) -> str:
        argv = [self._wg, *args]
        what = " ".join(args[:3])
        log.debug("running wg %s", what)  # one line per process (bench/daemon.py counts)
        try:
            done = self._run(argv, timeout=self._timeout, env=self._env,
                             pass_fds=tuple(pass_fds))
        except FileNotFoundError:
            raise WgUnavailable(f"wg binary not found: {self._wg}") from None
        except subprocess.TimeoutExpired:
            raise WgError(f"`wg {what}` timed out after {self._timeout:g} s") from None
        except OSError as exc:
            raise WgUnavailable(f"cannot run {self._wg}: {exc.strerror}") from None
        if done.returncode != 0:
            detail = (done.stderr or "").strip().splitlines()
            why = detail[-1] if detail else str(done.returncode)
            if args[0] == "show" and any(m in why for m in _ABSENT):
                raise WgMissing(f"{args[1]} is not there ({why.split(': ')[-1]})")
            raise WgError(f"`wg {what}` failed: {why}")
        return done.stdout

    def show(self, iface: str) -> InterfaceDump:
        """Raises WgError when the interface is missing or the output is unreadable."""
        _check_iface(iface)
        text = self._call(["show", iface, "dump"])
        try:
            return parse_dump(iface, text)
        except ValueError as exc:
            raise WgError(f"cannot parse `wg show {iface} dump`: {exc}") from None

    def show_all(self) -> dict[str, InterfaceDump]:
        """Every WireGuard interface in one call (`wg show all dump`)."""
        text = self._call(["show", "all", "dump"])
        try:
            return parse_all(text)
        except ValueError as exc:
            raise WgError(f"cannot parse `wg show all dump`: {exc}") from None

    def interfaces(self) -> list[str]:
        """The WireGuard interfaces that exist (`wg show interfaces`: names on one line;
        it needs no privilege, unlike a dump)."""
        names = self._call(["show", "interfaces"]).split()
        bad = [n for n in names if not is_ifname(n)]
        if bad:
            raise WgError(f"`wg show interfaces` printed an invalid name {bad[0]!r}")
        return names

    def set_endpoint(self, iface: str, key: str, endpoint: Endpoint) -> None:
        _check_iface(iface)
        _check_key(key)
        self._call(["set", iface, "peer", key, "endpoint", str(endpoint)])

    def set_allowed_ips(self, iface: str, changes: Sequence[tuple[str, Sequence[str]]]) -> None:
        """Give peers new allowed IPs in one `wg set`: an allowed IP given to one peer
        leaves the other at once, in the same transaction (standby groups)."""
        if not changes:
            return
        _check_iface(iface)
        args = ["set", iface]
        for key, ips in changes:
            _check_key(key)
            for ip in ips:
                try:
                    ipaddress.ip_network(ip, strict=False)
                except ValueError:
                    raise WgError(f"invalid allowed IP {ip!r}") from None
            args += ["peer", key, "allowed-ips", ",".join(ips)]
        self._call(args)

    def reset(self, iface: str, resets: Sequence[Reset]) -> None:
        """Re-create peers with new endpoints (see `reset_args`) in one call."""
        if not resets:
            return
        _check_iface(iface)
        for item in resets:
            _check_key(item.peer.public_key)
        args, psks = reset_args(resets)
        fds: list[int] = []
        try:
            for i, psk in enumerate(psks):
                read_fd, write_fd = os.pipe()
                os.write(write_fd, psk.encode() + b"\n")
                os.close(write_fd)
                fds.append(read_fd)
                args[args.index(f"@PSK{i}")] = f"/proc/self/fd/{read_fd}"
            self._call(["set", iface, *args], pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)


def _check_iface(iface: str) -> None:
    if not is_ifname(iface):
        raise WgError(f"invalid interface name {iface!r}")


def _check_key(key: str) -> None:
    if not is_public_key(key):
        raise WgError("invalid public key")
