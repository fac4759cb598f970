"""The lab side of the 100-peer round benchmarks (bench.many_peers, bench.many_distinct):
one router-side wireguard-go interface with a peer per key, and a peer-side wireguard-go
interface for each.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.lab import WG_SOCK_DIR, Lab

# IPv6 tunnel addresses for the 100-peer setup (inside the lab's reserved 2001:db8:ffff::/48).
MANY_ROUTER_TUN = "2001:db8:ffff::1"
MANY_PEER_NET = ipaddress.ip_network("2001:db8:ffff:1::/64")


def _genkey(directory: str, name: str) -> tuple[str, str]:
    """A new private key in a 0600 file -> (path, public key)."""
    private = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True,
                             timeout=10).stdout.strip()
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(private + "\n")
    public = subprocess.run(["wg", "pubkey"], input=private + "\n", capture_output=True,
                            text=True, check=True, timeout=10).stdout.strip()
    return path, public


class ManyPeers:
    """One router-side wireguard-go interface with `count` peers, and one peer-side
    wireguard-go interface per peer key, inside an existing Lab's namespaces.

    Tunnel: router 2001:db8:ffff::1/128, peer i 2001:db8:ffff:1::(i+1)/128 with a policy
    rule on the peer side so each peer answers through its own interface. Peer i listens
    on base_port+i. Peer-side handshake initiations are dropped (a router behind NAT).

    close() stops the processes and removes the control sockets this class created, even
    after a failure in start(); the Lab removes the namespaces and its temp dir.
    """

    def __init__(self, lab: Lab, count: int, base_port: int) -> None:
        self.lab, self.count, self.base_port = lab, count, base_port
        self.router_if = f"wgb{lab.tag}r"
        self.peer_ifs = [f"wgb{lab.tag}p{i}" for i in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ifaces: list[str] = []  # whose sockets we may have created
        self.dir = tempfile.mkdtemp(prefix="many-", dir=lab.tmpdir)
        self.router_public = ""
        self.peer_public: list[str] = []

    def peer_tunnel_ip(self, i: int) -> str:
        return str(MANY_PEER_NET.network_address + i + 1)

    def port(self, i: int) -> int:
        return self.base_port + i

    def _spawn(self, ns: str, ifname: str) -> None:
        sock = os.path.join(WG_SOCK_DIR, f"{ifname}.sock")
        if os.path.exists(sock):
            raise RuntimeError(f"{sock} already exists")
        with open(os.path.join(self.dir, f"{ifname}.log"), "wb") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, "wireguard-go", "-f", ifname],
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env=dict(os.environ, LOG_LEVEL="error"))
        self.procs.append(proc)
        self.ifaces.append(ifname)

    def start(self) -> None:
        lab = self.lab
        # wireguard-go binds a random port at start; keep those away from base_port...
        # (the range is per network namespace).
        lab.peer(["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=60000 60999"])
        self._spawn(lab.router_ns, self.router_if)
        for ifname in self.peer_ifs:
            self._spawn(lab.peer_ns, ifname)
        deadline = time.monotonic() + 30
        for _ in range(3000):  # bounded: 3000 x 10 ms and 30 s
            missing = [i for i in self.ifaces
                       if not os.path.exists(os.path.join(WG_SOCK_DIR, f"{i}.sock"))]
            dead = [p.args for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"wireguard-go exited: {dead[:3]}")
            if not missing:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(missing)} wireguard-go sockets missing after 30 s")
            time.sleep(0.01)
        r_priv, self.router_public = _genkey(self.dir, "router.key")
        peer_privs = []
        for i in range(self.count):
            priv, pub = _genkey(self.dir, f"peer{i}.key")
            peer_privs.append(priv)
            self.peer_public.append(pub)
        for i, ifname in enumerate(self.peer_ifs):
            lab.peer(["wg", "set", ifname, "private-key", peer_privs[i],
                      "listen-port", str(self.port(i)), "peer", self.router_public,
                      "allowed-ips", f"{MANY_ROUTER_TUN}/128"])
        lab.router(["wg", "set", self.router_if, "private-key", r_priv, "listen-port", "51820"])
        lab.router(["ip", "-6", "-batch", "-"], input=(
            f"addr add {MANY_ROUTER_TUN}/128 dev {self.router_if} nodad\n"
            f"link set {self.router_if} up\n"
            f"route add {MANY_PEER_NET} dev {self.router_if}\n"))
        lines = []
        for i, ifname in enumerate(self.peer_ifs):
            table = 1000 + i
            lines += [f"addr add {self.peer_tunnel_ip(i)}/128 dev {ifname} nodad",
                      f"link set {ifname} up",
                      f"route add {MANY_ROUTER_TUN}/128 dev {ifname} table {table}",
                      f"rule add from {self.peer_tunnel_ip(i)}/128 table {table} pref {table}"]
        lab.peer(["ip", "-6", "-batch", "-"], input="\n".join(lines) + "\n")
        last = self.base_port + self.count - 1
        lab.peer(["nft", "-f", "-"], input=(
            "table inet wgbench\ndelete table inet wgbench\n"
            "table inet wgbench {\n"
            "  chain out { type filter hook output priority 0; policy accept;\n"
            f"    udp sport {self.base_port}-{last} @th,64,32 0x01000000 drop\n"
            "  }\n}\n"))

    def reset_router_peers(self, endpoints: Sequence[str]) -> None:
        """Re-create every router-side peer, peer i on endpoints[i]: no session, no rate
        limit."""
        args: list[str] = []
        for i, key in enumerate(self.peer_public):
            args += ["peer", key, "remove", "peer", key,
                     "allowed-ips", f"{self.peer_tunnel_ip(i)}/128",
                     "endpoint", endpoints[i]]
        self.lab.router(["wg", "set", self.router_if, *args])

    def answer_from(self, routes: Sequence[Sequence[tuple[str, str, str]]]) -> None:
        """Peer i's WireGuard answers from its own underlay addresses: routes[i] lists
        (destination net, device, source address), put in a table that a policy rule on
        peer i's UDP port selects (wireguard-go does not keep the address a packet came to,
        so without this every answer would come from the link's first address)."""
        lines = []
        for i, triples in enumerate(routes):
            table = 3000 + i
            lines += [f"route add {net} dev {dev} src {src} table {table}"
                      for net, dev, src in triples]
            lines.append(f"rule add ipproto udp sport {self.port(i)} table {table} pref {table}")
        self.lab.peer(["ip", "-4", "-batch", "-"], input="\n".join(lines) + "\n")

    def uci(self, directory: Path) -> str:
        confdir = directory / "config"
        confdir.mkdir(exist_ok=True)
        text = f"config interface '{self.router_if}'\n\toption proto 'wireguard'\n\n"
        for i, key in enumerate(self.peer_public):
            text += (f"config wireguard_{self.router_if}\n"
                     f"\toption public_key '{key}'\n"
                     f"\toption endpoint_host 'peer{i}.wg.test'\n"
                     f"\toption endpoint_port '{self.port(i)}'\n"
                     f"\toption description 'peer{i}'\n"
                     f"\tlist allowed_ips '{self.peer_tunnel_ip(i)}/128'\n\n")
        (confdir / "network").write_text(text)
        (confdir / "wg-endpointd").write_text("config globals 'globals'\n")
        return str(confdir)

    def close(self) -> list[str]:
        """Stop what start() started and remove its sockets; never raises. Returns problems."""
        problems = []
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    proc.terminate()
                except OSError as exc:
                    problems.append(f"terminate {proc.pid}: {exc}")
        deadline = time.monotonic() + 3
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    problems.append(f"wireguard-go pid {proc.pid} survived SIGKILL")
        for ifname in self.ifaces:
            sock = os.path.join(WG_SOCK_DIR, f"{ifname}.sock")
            try:
                if os.path.exists(sock):
                    os.remove(sock)
            except OSError as exc:
                problems.append(f"remove {sock}: {exc}")
        return problems

    def leftovers(self) -> list[str]:
        found = [f"socket {i}.sock" for i in self.ifaces
                 if os.path.exists(os.path.join(WG_SOCK_DIR, f"{i}.sock"))]
        found += [f"process {p.pid}" for p in self.procs if p.poll() is None]
        return found
