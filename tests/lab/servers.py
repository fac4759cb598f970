"""More WireGuard servers for a pair, each in a namespace of its own."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from tests.lab.base import LabBase
from tests.lab.links import Link, _check_underlay
from tests.lab.wgends import WgPair


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


class Servers(LabBase):
    """Standby servers for a pair's router interface (``add_server``)."""

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
        self._add_namespace(ns)
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
