"""End-to-end test lab: a router and a peer in two network namespaces, joined by veth links,
with userspace WireGuard (wireguard-go) on both sides and dnsmasq in the peer namespace.

Address plan (documentation ranges only; nothing leaves the lab's namespaces):

- underlay (``add_link``): 192.0.2.0/24, 198.51.100.0/25 and 2001:db8::/32 except
  2001:db8:ffff::/48. One veth pair per peer address, each on its own subnet, because
  wireguard-go answers from whatever source its route picks.
- tunnel (``add_wg_pair``): 198.51.100.128/25; pair k gets router 198.51.100.(128+2k)/32
  and peer 198.51.100.(129+2k)/32, with a /32 route to the other side. 2001:db8:ffff::/48
  is reserved for IPv6 tunnel addresses.

Names: namespaces ``wgl-<tag>-r`` / ``wgl-<tag>-p``; WireGuard interfaces ``wgl<tag>r<k>`` /
``wgl<tag>p<k>`` (their control sockets in /var/run/wireguard/ are machine-wide); veths
``r-<link>`` / ``p-<link>``, created directly inside the namespaces. ``<tag>`` is 4 random
hex characters, so parallel labs do not collide.

Invariants: every wait is bounded in count and time; ``close()`` removes every namespace,
process, socket, /etc/netns/<ns>/ directory and temporary file the lab created, even after a
failure, and ``leftovers()`` reports anything that survived.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

WG_SOCK_DIR = "/var/run/wireguard"
NETNS_DIR = "/var/run/netns"
ETC_NETNS = "/etc/netns"
TOOLS = ("ip", "wg", "wireguard-go", "dnsmasq", "nft", "ping", "getent")

_UNDERLAY_NETS = (
    ipaddress.ip_network("192.0.2.0/24"),
    ipaddress.ip_network("198.51.100.0/25"),
    ipaddress.ip_network("2001:db8::/32"),
)
TUNNEL_NET4 = ipaddress.ip_network("198.51.100.128/25")
TUNNEL_NET6 = ipaddress.ip_network("2001:db8:ffff::/48")  # reserved for tunnel use
_READY_NAME = "ready.lab.invalid"  # dnsmasq always answers this; used to wait for it
_NAME_RE = re.compile(r"^[a-z0-9]{1,10}$")
_DNS_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,250}[a-z0-9])?$")

# Every Lab ever created in this process (the conftest guard checks the new ones per test).
REGISTRY: list[Lab] = []
# Labs not yet closed; closed at interpreter exit as a last resort.
_OPEN: set[Lab] = set()


class LabError(subprocess.CalledProcessError):
    """A lab command failed; str() shows the command, exit code and stderr."""

    def __str__(self) -> str:
        cmd = " ".join(self.cmd) if isinstance(self.cmd, list | tuple) else str(self.cmd)
        err = (self.stderr or "").strip() or (self.output or "").strip()
        return f"lab command failed (rc={self.returncode}): {cmd}: {err}"


def _fail(message: str) -> LabError:
    return LabError(1, ["lab"], stderr=message)


def missing_requirements() -> list[str]:
    """What keeps the lab from running here (empty when it can run)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        problems.append("missing tool(s): " + ", ".join(missing))
    if not os.path.exists("/dev/net/tun"):
        problems.append("missing /dev/net/tun")
    return problems


def _host_run(
    argv: Sequence[str], *, timeout: float = 30, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in the caller's namespace; raise LabError on failure when check."""
    env = dict(os.environ, WG_ENDPOINT_RESOLUTION_RETRIES="0")
    res = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, input=input, env=env
    )
    if check and res.returncode != 0:
        raise LabError(res.returncode, list(argv), res.stdout, res.stderr)
    return res


def _check_underlay(addr: str, prefixlen: int, family: int) -> None:
    """Refuse anything outside the documentation ranges the lab may use."""
    ip = ipaddress.ip_address(addr)
    if ip.version != family:
        raise ValueError(f"{addr} is not an IPv{family} address")
    net = ipaddress.ip_network(f"{addr}/{prefixlen}", strict=False)
    if net.overlaps(TUNNEL_NET6) or net.overlaps(TUNNEL_NET4):
        raise ValueError(f"{net} overlaps the lab's tunnel ranges")
    if not any(net.network_address in ok and net.broadcast_address in ok for ok in _UNDERLAY_NETS):
        raise ValueError(f"{net} is outside 192.0.2.0/24, 198.51.100.0/25, 2001:db8::/32")


def _check_doc_address(addr: str) -> None:
    ip = ipaddress.ip_address(addr)
    if not any(ip in net for net in (*_UNDERLAY_NETS, TUNNEL_NET4, TUNNEL_NET6)):
        raise ValueError(f"{addr} is outside the lab's documentation ranges")


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """'ip:port' or '[v6]:port' -> (ip, port)."""
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([0-9.]+):(\d+)", endpoint)
    if not m:
        raise ValueError(f"endpoint must be a literal ip:port or [v6]:port, got {endpoint!r}")
    host = m.group(1) or m.group(3)
    return host, int(m.group(2) or m.group(4))


def _netns_inode(ns: str) -> int | None:
    try:
        return os.stat(os.path.join(NETNS_DIR, ns)).st_ino
    except OSError:
        return None


def _pids_in_netns(inodes: set[int]) -> list[int]:
    """Live (non-zombie) processes whose network namespace is one of ``inodes``."""
    wanted = {f"net:[{ino}]" for ino in inodes}
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/net") in wanted:
                pids.append(int(entry))
        except OSError:  # gone, or a zombie
            continue
    return pids


def _stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """SIGTERM, wait up to ``grace`` s, then SIGKILL and reap."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass
class Link:
    """One veth pair between the router namespace and the peer namespace."""

    name: str  # short lab-unique tag, e.g. "v6a"
    router_if: str
    peer_if: str
    router_addr: str
    peer_addr: str
    prefixlen: int
    family: int  # 4 or 6

    def endpoint(self, port: int = 51820) -> str:
        """The peer address of this link as a WireGuard endpoint literal."""
        return f"[{self.peer_addr}]:{port}" if self.family == 6 else f"{self.peer_addr}:{port}"


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


@dataclass
class Server:
    """A second WireGuard server in a namespace of its own (``add_server``): its own key,
    its own underlay link, and the same tunnel address as the pair it stands by for."""

    ns: str
    link: Link  # router_if in the router namespace, peer_if in ``ns``
    wg_if: str
    public: str
    private_file: str
    port: int
    tunnel_ip: str

    def endpoint(self) -> str:
        return self.link.endpoint(self.port)


class Lab:
    """Router namespace + peer namespace with veth links, WireGuard pairs and DNS."""

    def __init__(self, tag: str | None = None) -> None:
        self.closed = False
        self.links: list[Link] = []
        self.pairs: list[WgPair] = []
        self.close_errors: list[str] = []  # what close() could not do (it never raises)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._dnsmasq: subprocess.Popen[bytes] | None = None
        self._dns_addr: str | None = None
        self._blocks: dict[str, str] = {}  # link name -> what
        self._quiet: set[str] = set()  # peer interfaces that answer test datagrams by keepalive
        self._wg_ifs: list[str] = []
        self._ns_inodes: set[int] = set()
        self._namespaces: list[str] = []
        self._stuck: list[int] = []  # pids close() could not end
        self.tag = tag if tag is not None else self._free_tag()
        if not re.fullmatch(r"[0-9a-z]{1,4}", self.tag):
            raise ValueError("tag must be 1-4 characters of [0-9a-z]")
        self.router_ns = f"wgl-{self.tag}-r"
        self.peer_ns = f"wgl-{self.tag}-p"
        self.tmpdir = tempfile.mkdtemp(prefix=f"wglab-{self.tag}-")
        REGISTRY.append(self)
        _OPEN.add(self)
        try:
            for ns in (self.router_ns, self.peer_ns):
                _host_run(["ip", "netns", "add", ns])
                self._namespaces.append(ns)
                ino = _netns_inode(ns)
                if ino is not None:
                    self._ns_inodes.add(ino)
                _host_run(["ip", "-n", ns, "link", "set", "lo", "up"])
                # New interfaces skip IPv6 DAD, so addresses (link-local too) work at once.
                self._exec(
                    ns,
                    [
                        "sysctl",
                        "-q",
                        "-w",
                        "net.ipv6.conf.default.accept_dad=0",
                        "net.ipv6.conf.all.accept_dad=0",
                    ],
                )
            self._apply_nft()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _free_tag() -> str:
        for _ in range(50):  # bounded
            tag = secrets.token_hex(2)
            if not any(os.path.exists(os.path.join(NETNS_DIR, f"wgl-{tag}-{s}")) for s in "rp"):
                return tag
        raise _fail("no free lab tag after 50 tries")

    # ---- running commands -------------------------------------------------------------

    def _exec(
        self,
        ns: str,
        argv: Sequence[str],
        timeout: float = 30,
        check: bool = True,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ, WG_ENDPOINT_RESOLUTION_RETRIES="0")
        if env:
            full_env.update(env)
        cmd = ["ip", "netns", "exec", ns, *argv]
        res = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=full_env, input=input
        )
        if check and res.returncode != 0:
            raise LabError(res.returncode, cmd, res.stdout, res.stderr)
        return res

    def router(
        self,
        argv: list[str],
        timeout: float = 30,
        check: bool = True,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in the router namespace (env is merged over os.environ)."""
        return self._exec(self.router_ns, argv, timeout, check, env, input)

    def peer(
        self,
        argv: list[str],
        timeout: float = 30,
        check: bool = True,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in the peer namespace (env is merged over os.environ)."""
        return self._exec(self.peer_ns, argv, timeout, check, env, input)

    def _ip_batch(self, ns: str, lines: list[str]) -> None:
        _host_run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n")

    # ---- links ------------------------------------------------------------------------

    def add_link(
        self, name: str, family: int, router_addr: str, peer_addr: str, prefixlen: int
    ) -> Link:
        """Add a veth pair router_ns:r-<name> <-> peer_ns:p-<name> with one address each side."""
        if not _NAME_RE.match(name) or any(link.name == name for link in self.links):
            raise ValueError(f"link name {name!r} must be unique and match {_NAME_RE.pattern}")
        if family not in (4, 6):
            raise ValueError("family must be 4 or 6")
        _check_underlay(router_addr, prefixlen, family)
        _check_underlay(peer_addr, prefixlen, family)
        net_r = ipaddress.ip_interface(f"{router_addr}/{prefixlen}").network
        if peer_addr == router_addr or ipaddress.ip_address(peer_addr) not in net_r:
            raise ValueError(f"{router_addr} and {peer_addr} must differ and share a subnet")
        link = Link(name, f"r-{name}", f"p-{name}", router_addr, peer_addr, prefixlen, family)
        self._veth(link, self.peer_ns, 1000 + len(self.links))
        self.links.append(link)
        return link

    def _veth(self, link: Link, far_ns: str, index: int) -> None:
        """A veth pair from the router namespace to `far_ns`, addressed and up.

        Distinct ifindexes on the two ends (`index`, `index` + 1000): when a veth's ifindex
        equals its peer's (both are 2 in fresh namespaces), the kernel's linkwatch treats
        carrier-up as non-urgent and leaves the noop qdisc in place for up to 1 s,
        dropping the first packets."""
        nodad = " nodad" if link.family == 6 else ""
        self._ip_batch(self.router_ns, [
            f"link add {link.router_if} index {index} type veth"
            f" peer name {link.peer_if} index {index + 1000} netns {far_ns}",
            f"addr add {link.router_addr}/{link.prefixlen} dev {link.router_if}{nodad}",
            f"link set {link.router_if} up",
        ])
        self._ip_batch(far_ns, [
            f"addr add {link.peer_addr}/{link.prefixlen} dev {link.peer_if}{nodad}",
            f"link set {link.peer_if} up",
        ])

    def remove_peer_address(self, link: Link) -> None:
        """The peer "moves away": delete its address on that link."""
        _host_run(
            [
                "ip",
                "-n",
                self.peer_ns,
                "addr",
                "del",
                f"{link.peer_addr}/{link.prefixlen}",
                "dev",
                link.peer_if,
            ]
        )

    # ---- WireGuard --------------------------------------------------------------------

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
        _check_doc_address(host)
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

    def add_server(
        self,
        pair: WgPair,
        name: str,
        router_addr: str,
        server_addr: str,
        prefixlen: int,
        port: int = 51820,
        allowed_ips_router: list[str] | None = None,
        tunnel_ip: str | None = None,
    ) -> Server:
        """Another server for ``pair``'s router interface, in namespace wgl-<tag>-<name>: its
        own key, the same tunnel address as ``pair``'s peer (as VPN providers do) unless
        ``tunnel_ip`` gives it one of its own, and a link of its own. The router gets it as
        one more peer with ``allowed_ips_router`` (none by default) and its endpoint. It
        never initiates handshakes."""
        if not re.fullmatch(r"[a-z][a-z0-9]{0,2}", name) or name in ("r", "p"):
            raise ValueError("server name: 1-3 characters of [a-z0-9], not 'r' or 'p'")
        ns = f"wgl-{self.tag}-{name}"
        _host_run(["ip", "netns", "add", ns])
        self._namespaces.append(ns)
        ino = _netns_inode(ns)
        if ino is not None:
            self._ns_inodes.add(ino)
        _host_run(["ip", "-n", ns, "link", "set", "lo", "up"])
        family = ipaddress.ip_address(server_addr).version
        _check_underlay(router_addr, prefixlen, family)
        _check_underlay(server_addr, prefixlen, family)
        link = Link(name, f"r-{name}", f"s-{name}", router_addr, server_addr, prefixlen, family)
        self._veth(link, ns, 1500 + len(self._namespaces))
        wg_if = f"wgl{self.tag}{name}"
        self._start_wireguard_go(ns, wg_if)
        priv, pub = self._genkey(f"{wg_if}.key")
        server = Server(ns, link, wg_if, pub, priv, port, tunnel_ip or pair.peer_tunnel_ip)
        self._exec(ns, ["wg", "set", wg_if, "private-key", priv, "listen-port", str(port),
                        "peer", pair.router_public, "allowed-ips", f"{pair.router_tunnel_ip}/32"])
        self._ip_batch(
            ns,
            [
                f"addr add {server.tunnel_ip}/32 dev {wg_if}",
                f"link set {wg_if} up",
                f"route add {pair.router_tunnel_ip}/32 dev {wg_if}",
            ],
        )
        if tunnel_ip is not None:
            self.router(["ip", "route", "add", f"{tunnel_ip}/32", "dev", pair.router_if])
        self.block_server(server, False)
        self.router(["wg", "set", pair.router_if, "peer", pub, "allowed-ips",
                     ",".join(allowed_ips_router or []), "endpoint", server.endpoint()])
        return server

    def block_server(self, server: Server, blocked: bool = True) -> None:
        """Drop everything arriving on the server's link (True) or nothing (False); the
        server's own handshake initiations are always dropped."""
        drop = [f'    iifname "{server.link.peer_if}" drop'] if blocked else []
        body = "\n".join([
            "table inet lab", "delete table inet lab", "table inet lab {",
            "  chain in { type filter hook input priority 0; policy accept;", *drop, "  }",
            "  chain out { type filter hook output priority 0; policy accept;",
            f"    udp sport {server.port} @th,64,32 0x01000000 drop", "  }", "}"])
        self._exec(server.ns, ["nft", "-f", "-"], input=body + "\n")
        if not blocked:
            _host_run(["ip", "-n", self.router_ns, "neigh", "flush", "dev", server.link.router_if])

    # ---- path breaking (nftables in the peer namespace) -------------------------------

    def block(self, link: Link, what: str = "all") -> None:
        """Drop packets arriving on the peer's end of ``link``.

        what: "all" (every packet), "udp" (only UDP; ICMP still answers), "wg" (only UDP
        to the peer's WireGuard ports), "icmp" (only ICMP echo requests: the peer answers
        no ping, WireGuard still works) or "both" (every packet, and every packet the peer
        sends out through the link too: the path is dead both ways). DNS to the lab's
        dnsmasq is never blocked.
        """
        if what not in ("all", "udp", "wg", "icmp", "both"):
            raise ValueError("what must be 'all', 'udp', 'wg', 'icmp' or 'both'")
        self._blocks[link.name] = what
        self._apply_nft()

    def answer_by_keepalive_only(self, pair: WgPair) -> None:
        """The peer drops test datagrams (UDP port 9) arriving through the tunnel, so it
        answers them only with WireGuard's passive keepalive, 10 s later."""
        self._quiet.add(pair.peer_if)
        self._apply_nft()

    def unblock(self, link: Link) -> None:
        """Remove the block on ``link`` (if any)."""
        self._blocks.pop(link.name, None)
        self._apply_nft()
        # Forget neighbour entries that failed while blocked, so the path works at once
        # instead of after the kernel's next ARP/ND retry (up to 1 s later, or never for
        # packets that were queued when the entry failed).
        _host_run(["ip", "-n", self.router_ns, "neigh", "flush", "dev", link.router_if])
        _host_run(["ip", "-n", self.peer_ns, "neigh", "flush", "dev", link.peer_if])

    def _apply_nft(self) -> None:
        """Rebuild the peer namespace's `inet lab` table atomically from the lab's state."""
        ports = sorted(p.peer_port for p in self.pairs)
        rules_in = []
        for link in self.links:
            what = self._blocks.get(link.name)
            if what is None:
                continue
            iif = f'iifname "{link.peer_if}"'
            if self._dns_addr and link.peer_addr == self._dns_addr:
                fam = "ip" if link.family == 4 else "ip6"
                rules_in.append(
                    f"{iif} {fam} daddr {self._dns_addr} "
                    "meta l4proto { tcp, udp } th dport 53 accept"
                )
            if what in ("all", "both"):
                rules_in.append(f"{iif} drop")
            elif what == "udp":
                rules_in.append(f"{iif} meta l4proto udp drop")
            elif what == "icmp":
                rules_in.append(f"{iif} icmp type echo-request drop")
                rules_in.append(f"{iif} icmpv6 type echo-request drop")
            elif ports:
                rules_in.append(f"{iif} udp dport {{ {', '.join(map(str, ports))} }} drop")
        rules_in += [f'iifname "{name}" udp dport 9 drop' for name in sorted(self._quiet)]
        rules_out = [f'oifname "{link.peer_if}" meta l4proto {{ tcp, udp }} th sport 53 accept'
                     for link in self.links if self._blocks.get(link.name) == "both"]
        rules_out += [f'oifname "{link.peer_if}" drop'
                      for link in self.links if self._blocks.get(link.name) == "both"]
        rules_out += [
            f"udp sport {p.peer_port} @th,64,32 0x01000000 drop"
            for p in self.pairs
            if p.block_peer_initiation
        ]
        body = "\n".join(
            [
                "table inet lab",
                "delete table inet lab",
                "table inet lab {",
                "  chain in { type filter hook input priority 0; policy accept;",
                *(f"    {r}" for r in rules_in),
                "  }",
                "  chain out { type filter hook output priority 0; policy accept;",
                *(f"    {r}" for r in rules_out),
                "  }",
                "}",
            ]
        )
        self.peer(["nft", "-f", "-"], input=body + "\n")

    # ---- DNS --------------------------------------------------------------------------

    def set_dns(self, records: dict[str, list[str]]) -> None:
        """(Re)start dnsmasq in the peer namespace with these A/AAAA records and point the
        router namespace's resolv.conf at it; return once it answers (at most 5 s)."""
        v4 = [link for link in self.links if link.family == 4]
        if not v4:
            raise _fail("set_dns needs an IPv4 link (dnsmasq listens on its peer address)")
        addr = v4[0].peer_addr
        args = []
        for name, addrs in records.items():
            if not _DNS_NAME_RE.match(name):
                raise ValueError(f"bad DNS name {name!r}")
            for a in addrs:
                _check_doc_address(a)
                args.append(f"--address=/{name}/{a}")
        self._stop_dnsmasq()
        self._dns_addr = addr
        self._apply_nft()  # keep DNS reachable through blocks
        self._write_resolv_conf(addr)
        log = open(os.path.join(self.tmpdir, "dnsmasq.log"), "ab")  # noqa: SIM115
        try:
            self._dnsmasq = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.peer_ns,
                    "dnsmasq",
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--local-ttl=1",
                    f"--listen-address={addr}",
                    "--bind-interfaces",
                    "--user=root",
                    f"--pid-file={os.path.join(self.tmpdir, 'dnsmasq.pid')}",
                    "--log-facility=-",
                    f"--address=/{_READY_NAME}/127.0.0.1",
                    *args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self._procs.append(self._dnsmasq)
        deadline = time.monotonic() + 5
        # First wait for its UDP socket (a query sent earlier would hit the peer's ICMP
        # rate limit and cost a full resolver timeout), then for a real answer.
        want = f"{int.from_bytes(socket.inet_aton(addr), sys.byteorder):08X}:0035"
        for _ in range(500):  # bounded: 500 x 10 ms, and 5 s
            try:
                with open(f"/proc/{self._dnsmasq.pid}/net/udp") as f:
                    if any(line.split()[1] == want for line in f.readlines()[1:]):
                        break
            except OSError:
                break  # dnsmasq is gone; the loop below reports it
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        for _ in range(100):  # bounded: 100 tries and 5 s
            res = self.router(["getent", "ahosts", _READY_NAME], timeout=3, check=False)
            if res.returncode == 0:
                return
            if self._dnsmasq.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        with open(os.path.join(self.tmpdir, "dnsmasq.log")) as f:
            raise _fail(f"dnsmasq in {self.peer_ns} does not answer: {f.read()[-500:]}")

    def _write_resolv_conf(self, addr: str) -> None:
        d = os.path.join(ETC_NETNS, self.router_ns)
        text = f"nameserver {addr}\noptions timeout:1 attempts:2\n"
        for _ in range(3):  # bounded; another lab's close() may rmdir /etc/netns meanwhile
            try:
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "resolv.conf"), "w") as f:
                    f.write(text)
                return
            except FileNotFoundError:
                continue
        raise _fail(f"cannot write {d}/resolv.conf")

    def _stop_dnsmasq(self) -> None:
        if self._dnsmasq is not None:
            _stop(self._dnsmasq)
            self._dnsmasq = None

    # ---- teardown ---------------------------------------------------------------------

    def _try(self, what: str, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception as e:  # close() must never raise
            self.close_errors.append(f"{what}: {e}")

    def _kill_ns_processes(self) -> None:
        """SIGTERM then SIGKILL whatever still runs in the lab's namespaces (bounded)."""
        if not self._ns_inodes:
            return
        for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 2.0)):
            pids = _pids_in_netns(self._ns_inodes)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while _pids_in_netns(self._ns_inodes) and time.monotonic() < deadline:
                time.sleep(0.02)

    def _record_stuck(self) -> None:
        # Checked while the lab's names still pin its namespaces (inodes get reused later).
        self._stuck = _pids_in_netns(self._ns_inodes) if self._ns_inodes else []

    def close(self) -> None:
        """Remove everything the lab created. Idempotent; never raises (see close_errors)."""
        if self.closed:
            return
        self.closed = True
        self._try("stop dnsmasq", self._stop_dnsmasq)
        for proc in self._procs:
            self._try(f"stop pid {proc.pid}", _stop, proc)
        self._try("kill namespace processes", self._kill_ns_processes)
        self._try("scan namespace processes", self._record_stuck)
        for ifname in self._wg_ifs:
            sock = os.path.join(WG_SOCK_DIR, f"{ifname}.sock")
            if os.path.exists(sock):
                self._try(f"remove {sock}", os.remove, sock)
        for ns in self._namespaces:
            if os.path.exists(os.path.join(NETNS_DIR, ns)):
                self._try(f"delete netns {ns}", _host_run, ["ip", "netns", "delete", ns])
            d = os.path.join(ETC_NETNS, ns)
            if os.path.exists(d):
                self._try(f"remove {d}", shutil.rmtree, d)
        try:
            os.rmdir(ETC_NETNS)  # only if empty: other labs may still use it
        except OSError:
            pass
        self._try(f"remove {self.tmpdir}", shutil.rmtree, self.tmpdir)
        _OPEN.discard(self)

    def leftovers(self) -> list[str]:
        """Anything this lab created that still exists (empty after a clean close())."""
        found = []
        for ns in self._namespaces:
            if os.path.exists(os.path.join(NETNS_DIR, ns)):
                found.append(f"namespace {ns}")
            if os.path.exists(os.path.join(ETC_NETNS, ns)):
                found.append(f"directory {ETC_NETNS}/{ns}")
        for ifname in self._wg_ifs:
            sock = os.path.join(WG_SOCK_DIR, f"{ifname}.sock")
            if os.path.exists(sock):
                found.append(f"socket {sock}")
        for proc in self._procs:
            if proc.poll() is None:
                args = proc.args
                shown = " ".join(map(str, args)) if isinstance(args, list) else str(args)
                found.append(f"process {proc.pid} ({shown})")
        # Once closed, namespace inodes may belong to someone else's new namespace: use what
        # close() saw while the lab's names still pinned them.
        stuck = self._stuck if self.closed else _pids_in_netns(self._ns_inodes)
        found += [f"process {pid} in a lab namespace" for pid in stuck]
        if os.path.exists(self.tmpdir):
            found.append(f"temp dir {self.tmpdir}")
        return found

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@atexit.register
def _close_all() -> None:
    for lab in list(_OPEN):
        lab.close()
