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

Layout: ``Lab`` (below) is composed of one mixin per part, on ``base.LabBase`` (shared state,
running commands; ``base`` also holds the paths, address ranges and process helpers):
``links`` (namespaces, veth links, close and leftovers), ``wgends`` (WireGuard pairs),
``servers`` (more servers for a pair), ``dns`` (dnsmasq), ``breakage`` (nftables) and
``wgquick`` (a real `wg-quick up` in the router namespace, its server, `wg-quick down`).
"""

from __future__ import annotations

import atexit
from types import TracebackType

from tests.lab.base import (
    _OPEN,
    _UNDERLAY_NETS,
    ETC_NETNS,
    NETNS_DIR,
    REGISTRY,
    TOOLS,
    TUNNEL_NET4,
    TUNNEL_NET6,
    WG_SOCK_DIR,
    LabBase,
    LabError,
    _fail,
    _host_run,
    _netns_inode,
    _pids_in_netns,
    _stop,
    missing_requirements,
    split_endpoint,
)
from tests.lab.breakage import Breakage
from tests.lab.dns import _DNS_NAME_RE, _READY_NAME, Dns, _check_doc_address
from tests.lab.links import _NAME_RE, Link, Links, _check_underlay
from tests.lab.servers import Server, Servers
from tests.lab.wgends import WgEnds, WgPair
from tests.lab.wgquick import QUICK_NAME, QuickServer, QuickTunnel, WgQuick

__all__ = [
    "ETC_NETNS",
    "NETNS_DIR",
    "REGISTRY",
    "TOOLS",
    "TUNNEL_NET4",
    "TUNNEL_NET6",
    "WG_SOCK_DIR",
    "Breakage",
    "Dns",
    "Lab",
    "LabBase",
    "LabError",
    "Link",
    "Links",
    "QUICK_NAME",
    "QuickServer",
    "QuickTunnel",
    "Server",
    "Servers",
    "WgEnds",
    "WgPair",
    "WgQuick",
    "missing_requirements",
    "split_endpoint",
    "_DNS_NAME_RE",
    "_NAME_RE",
    "_OPEN",
    "_READY_NAME",
    "_UNDERLAY_NETS",
    "_check_doc_address",
    "_check_underlay",
    "_fail",
    "_host_run",
    "_netns_inode",
    "_pids_in_netns",
    "_stop",
]


class Lab(Links, WgEnds, Servers, Dns, Breakage, WgQuick):
    """Router namespace + peer namespace with veth links, WireGuard pairs and DNS."""

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
