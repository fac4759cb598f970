"""WireGuard ends: wireguard-go on both sides of a pair, the router side's peers and
endpoints, wg dumps and pings through the tunnels."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field

from tests.lab import dns  # dns._check_doc_address: a test patches it there
from tests.lab.base import (
    TUNNEL_NET4,
    WG_SOCK_DIR,
    LabBase,
    _fail,
    _host_run,
    _stop,
    split_endpoint,
)


@dataclass
class WgPair:
    """A router-side wg interface peered with a peer-side wg interface."""

    router_if: str
    peer_if: str
    router_public: str
    peer_public: str
    router_private_file: str  # path (0600)
    peer_port: int
    router_tunnel_ip: str
    peer_tunnel_ip: str
    psk: bool
    # What reset_router_peer() restores (beyond the spec'd fields).
    router_allowed_ips: list[str] = field(default_factory=list)
    router_keepalive: int | None = None
    psk_file: str | None = None
    peer_private_file: str = ""
    block_peer_initiation: bool = True


class WgEnds(LabBase):
    """WireGuard pairs between the router namespace and the peer namespace."""

    def _start_wireguard_go(self, ns: str, ifname: str) -> None:
        """Start wireguard-go in the foreground (we own the pid) and wait for its socket."""
        sock = os.path.join(WG_SOCK_DIR, f"{ifname}.sock")
        if os.path.exists(sock):
            raise _fail(f"{sock} already exists")
        log = open(os.path.join(self.tmpdir, f"{ifname}.log"), "wb")  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, "wireguard-go", "-f", ifname],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=dict(os.environ, LOG_LEVEL="error"),
            )
        finally:
            log.close()
        self._procs.append(proc)
        self._wg_ifs.append(ifname)
        deadline = time.monotonic() + 5
        for _ in range(500):  # bounded: 500 x 10 ms, and 5 s
            if os.path.exists(sock):
                return
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        with open(os.path.join(self.tmpdir, f"{ifname}.log")) as f:
            raise _fail(f"wireguard-go {ifname} did not come up: {f.read()[-500:]}")

    def _genkey(self, name: str) -> tuple[str, str]:
        """New private key in a 0600 file in the lab's temp dir -> (path, public key)."""
        private = _host_run(["wg", "genkey"]).stdout.strip()
        path = os.path.join(self.tmpdir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(private + "\n")
        public = _host_run(["wg", "pubkey"], input=private + "\n").stdout.strip()
        return path, public

    def add_wg_pair(
        self,
        peer_port: int = 51820,
        *,
        router_keepalive: int | None = None,
        psk: bool = False,
        block_peer_initiation: bool = True,
        allowed_ips_router: list[str] | None = None,
        same_peer_key_as: WgPair | None = None,
    ) -> WgPair:
        """Start wireguard-go on both sides and peer them; the router side has no endpoint.

        block_peer_initiation drops the peer's outgoing handshake initiations (a router
        behind NAT: the peer cannot repair the router's endpoint by roaming).
        """
        k = len(self.pairs)
        if k >= 64:
            raise _fail("at most 64 wg pairs per lab")
        if any(p.peer_port == peer_port for p in self.pairs):
            raise ValueError(f"peer port {peer_port} already used in this lab")
        r_if, p_if = f"wgl{self.tag}r{k}", f"wgl{self.tag}p{k}"
        r_tun = str(TUNNEL_NET4.network_address + 2 * k)
        p_tun = str(TUNNEL_NET4.network_address + 2 * k + 1)
        allowed = list(allowed_ips_router) if allowed_ips_router else [f"{p_tun}/32"]
        self._start_wireguard_go(self.router_ns, r_if)
        self._start_wireguard_go(self.peer_ns, p_if)
        r_priv, r_pub = self._genkey(f"{r_if}.key")
        if same_peer_key_as is not None:  # one server, one key, reached over two tunnels
            p_priv, p_pub = same_peer_key_as.peer_private_file, same_peer_key_as.peer_public
        else:
            p_priv, p_pub = self._genkey(f"{p_if}.key")
        psk_file = None
        if psk:
            psk_file = os.path.join(self.tmpdir, f"{r_if}.psk")
            fd = os.open(psk_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(_host_run(["wg", "genpsk"]).stdout)
        pair = WgPair(
            r_if,
            p_if,
            r_pub,
            p_pub,
            r_priv,
            peer_port,
            r_tun,
            p_tun,
            psk,
            allowed,
            router_keepalive,
            psk_file,
            p_priv,
            block_peer_initiation,
        )
        self.pairs.append(pair)
        psk_args = ["preshared-key", psk_file] if psk_file else []
        self.peer(
            [
                "wg",
                "set",
                p_if,
                "private-key",
                p_priv,
                "listen-port",
                str(peer_port),
                "peer",
                r_pub,
                "allowed-ips",
                f"{r_tun}/32",
                *psk_args,
            ]
        )
        self.router(["wg", "set", r_if, "private-key", r_priv])
        self._add_router_peer(pair)
        for ns, ifname, mine, other in (
            (self.router_ns, r_if, r_tun, p_tun),
            (self.peer_ns, p_if, p_tun, r_tun),
        ):
            self._ip_batch(
                ns,
                [
                    f"addr add {mine}/32 dev {ifname}",
                    f"link set {ifname} up",
                    f"route add {other}/32 dev {ifname}",
                ],
            )
        self._apply_nft()
        return pair

    def _add_router_peer(self, pair: WgPair, endpoint: str | None = None) -> None:
        argv = [
            "wg",
            "set",
            pair.router_if,
            "peer",
            pair.peer_public,
            "allowed-ips",
            ",".join(pair.router_allowed_ips),
        ]
        if pair.router_keepalive is not None:
            argv += ["persistent-keepalive", str(pair.router_keepalive)]
        if pair.psk_file:
            argv += ["preshared-key", pair.psk_file]
        if endpoint:
            split_endpoint(endpoint)
            argv += ["endpoint", endpoint]
        self.router(argv)

    def reset_router_peer(self, pair: WgPair, endpoint: str | None = None) -> None:
        """Remove and re-add the router-side peer: no session, no handshake, no rate limit.

        Keeps the current endpoint unless ``endpoint`` is given.
        """
        current = self.wg_dump(pair)[2]
        if endpoint is None and current != "(none)":
            endpoint = current
        self.router(["wg", "set", pair.router_if, "peer", pair.peer_public, "remove"])
        self._add_router_peer(pair, endpoint)

    def delete_router_interface(self, pair: WgPair) -> None:
        """What netifd's teardown does (wireguard.sh, proto_wireguard_teardown): the
        router-side interface is deleted; its wireguard-go exits and drops its socket."""
        proc = next(p for p in self._procs if pair.router_if in p.args and p.poll() is None)
        self.router(["ip", "link", "del", pair.router_if])
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _stop(proc)
        sock = os.path.join(WG_SOCK_DIR, f"{pair.router_if}.sock")
        if os.path.exists(sock):
            os.remove(sock)

    def create_router_interface(self, pair: WgPair, endpoint: str) -> None:
        """What netifd's setup does on ifup (wireguard.sh, proto_wireguard_setup): the
        interface made anew from UCI, its peer on `endpoint` with no session."""
        self._start_wireguard_go(self.router_ns, pair.router_if)
        self.router(["wg", "set", pair.router_if, "private-key", pair.router_private_file])
        self._add_router_peer(pair, endpoint)
        self._ip_batch(self.router_ns, [f"addr add {pair.router_tunnel_ip}/32 dev {pair.router_if}",
                                        f"link set {pair.router_if} up",
                                        f"route add {pair.peer_tunnel_ip}/32 dev {pair.router_if}"])

    def set_endpoint(self, pair: WgPair, endpoint: str) -> None:
        """Set the router side's endpoint for the pair ("ip:port" or "[v6]:port")."""
        host, _ = split_endpoint(endpoint)
        dns._check_doc_address(host)
        self.router(["wg", "set", pair.router_if, "peer", pair.peer_public, "endpoint", endpoint])

    def wg_dump(self, pair: WgPair) -> list[str]:
        """Router-side peer line of `wg show IF dump`: public-key, preshared-key, endpoint,
        allowed-ips, latest-handshake, transfer-rx, transfer-tx, persistent-keepalive."""
        out = self.router(["wg", "show", pair.router_if, "dump"], timeout=10).stdout
        for line in out.splitlines()[1:]:
            fields = line.split("\t")
            if fields[0] == pair.peer_public:
                return fields
        raise _fail(f"peer {pair.peer_public} not on {pair.router_if}")

    def ping_through_tunnel(self, pair: WgPair, count: int = 1, timeout: float = 2) -> bool:
        """Ping the peer's tunnel address from the router namespace; True on any reply."""
        argv = ["ping", "-n", "-q", "-c", str(count), "-W", str(timeout)]
        if count > 1:
            argv += ["-i", "0.2"]
        res = self.router(
            [*argv, pair.peer_tunnel_ip], timeout=count * 0.2 + timeout + 5, check=False
        )
        return res.returncode == 0

