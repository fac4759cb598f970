"""Thin adapters over sockets: name resolution, route checks, tunnel datagrams."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Collection, Iterable, MutableMapping

from ..core.errors import ResolveError as ResolveError
from ..core.errors import ResolvePending as ResolvePending
from ..core.model import IfAddress as IfAddress
from ..core.validate import ip_literal

_SIOCGIFADDR, _SIOCGIFNETMASK = 0x8915, 0x891B  # linux/sockios.h
SO_MARK = getattr(socket, "SO_MARK", 36)  # asm-generic/socket.h


def resolve_one(host: str) -> list[str]:
    """All A and AAAA addresses of `host`, in resolver order. Raises ResolveError."""
    literal = ip_literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_UNSPEC, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise ResolveError(f"cannot resolve {host}: {exc.strerror}") from None
    except UnicodeError:
        raise ResolveError(f"cannot resolve {host}: invalid name") from None
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def resolve_many(hosts: Iterable[str], workers: int = 8,
                 stop: Callable[[], bool] = lambda: False,
                 tick: float = 0.05, known: Collection[str] = (), patience: float = 0.3,
                 late: MutableMapping[str, list[str] | ResolveError] | None = None,
                 clock: Callable[[], float] = time.monotonic
                 ) -> dict[str, list[str] | ResolveError]:
    """Resolve hosts concurrently; each value is a list of addresses or the error.

    getaddrinfo cannot be cancelled, so the wait checks `stop` every `tick` seconds; on
    stop the resolver threads (daemon threads) are abandoned and the unfinished names get
    a ResolveError. A slow resolver holds a round up only for names with nothing known:
    after `patience` seconds, when every unfinished name is in `known` (the caller has
    its last answer), the wait ends too, and answers that come later land in `late`.
    """
    unique = list(dict.fromkeys(hosts))
    results: dict[str, list[str] | ResolveError] = {}
    sink = late if late is not None else {}

    def one(host: str) -> None:
        try:
            found: list[str] | ResolveError = resolve_one(host)
        except ResolveError as exc:
            found = exc
        results[host] = sink[host] = found

    queue = list(reversed(unique))

    def worker() -> None:
        while queue:
            try:
                host = queue.pop()
            except IndexError:
                return
            one(host)

    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(min(workers, len(unique)))]
    for thread in threads:
        thread.start()
    start = clock()

    def impatient() -> bool:
        return clock() - start >= patience and all(
            h in known for h in unique if h not in results)

    for thread in threads:
        while thread.is_alive() and not stop() and not impatient():
            thread.join(tick)
    out = dict(results)
    for host in unique:
        if host not in out:
            out[host] = (ResolvePending(f"{host}: no answer yet") if host in known
                         else ResolveError(f"cannot resolve {host}: interrupted"))
    return out


def route_usable(address: str, mark: int = 0) -> bool:
    """True when this host has a route and a usable source address for `address`, for
    packets that carry the firewall mark `mark` (0: none).

    Connecting a UDP socket sends nothing; it fails at once when the family
    has no route, and for IPv6 a link-local source means no global address.
    The mark makes the lookup follow a wg-quick full tunnel's rules as a marked
    packet does (outside the tunnel); when it cannot be set, the lookup is unmarked.
    """
    ip = ipaddress.ip_address(address)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            if mark:
                with contextlib.suppress(OSError):  # no CAP_NET_ADMIN: probes say so
                    sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
            sock.connect((address, 9))
            source = ipaddress.ip_address(sock.getsockname()[0].split("%", 1)[0])
    except OSError:
        return False
    return not (source.is_link_local and not ip.is_link_local)


def packet_counters(proc_root: str = "/proc") -> dict[str, tuple[int, int]]:
    """Every interface's packets in and out, from one read of `/proc/net/dev` (the calling
    process's network namespace); empty when unreadable."""
    try:
        with open(f"{proc_root}/net/dev", encoding="ascii", errors="replace") as f:
            text = f.read(1 << 16)
    except OSError:
        return {}
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if len(fields) >= 10 and fields[1].isdigit() and fields[9].isdigit():
            out[name.strip()] = (int(fields[1]), int(fields[9]))
    return out


def rx_packets(iface: str, sys_root: str = "/sys") -> int | None:
    """Packets `iface` received, from the kernel's counters (for WireGuard: decrypted
    packets, and on the kernel module keepalives too); None when unreadable."""
    try:
        fd = os.open(f"{sys_root}/class/net/{iface}/statistics/rx_packets", os.O_RDONLY)
    except OSError:
        return None
    try:
        return int(os.read(fd, 32))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _ipv4_of(sock: socket.socket, iface: str) -> ipaddress.IPv4Interface | None:
    """`iface`'s primary IPv4 address and netmask (SIOCGIFADDR, SIOCGIFNETMASK ioctls);
    None when it has none (or is gone)."""
    name = struct.pack("256s", iface.encode()[:15])
    try:
        addr = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, name)[20:24]
        mask = fcntl.ioctl(sock.fileno(), _SIOCGIFNETMASK, name)[20:24]
        return ipaddress.IPv4Interface(f"{socket.inet_ntoa(addr)}/{socket.inet_ntoa(mask)}")
    except (OSError, ValueError):
        return None


def _ipv6_of(iface: str | None, proc_root: str) -> list[IfAddress]:
    """IPv6 addresses with their prefixes from the kernel's table `/proc/net/if_inet6`
    (address, index, prefix length, scope, flags, name): of `iface`, or of all (None)."""
    out: list[IfAddress] = []
    try:
        with open(f"{proc_root}/net/if_inet6") as f:
            for line in f:
                cols = line.split()
                if len(cols) == 6 and iface in (None, cols[5]):
                    out.append(ipaddress.IPv6Interface(
                        f"{ipaddress.IPv6Address(bytes.fromhex(cols[0]))}/{int(cols[2], 16)}"))
    except (OSError, ValueError):
        pass
    return out


def tunnel_subnets(iface: str, proc_root: str = "/proc") -> list[IfAddress]:
    """The router's own addresses on `iface`, with their prefixes (no subprocess)."""
    out: list[IfAddress] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            if (v4 := _ipv4_of(sock, iface)) is not None:
                out.append(v4)
    except OSError:
        pass
    return out + _ipv6_of(iface, proc_root)


def local_addresses(proc_root: str = "/proc") -> list[IfAddress]:
    """This host's own addresses with their prefixes, on every interface (no subprocess;
    IPv4: each interface's primary address only)."""
    out: list[IfAddress] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            out += [v4 for _, name in socket.if_nameindex()
                    if (v4 := _ipv4_of(sock, name)) is not None]
    except OSError:
        pass
    return out + _ipv6_of(None, proc_root)


def tunnel_gateway(subnets: list[IfAddress]) -> str | None:
    """A likely address of the other end inside the router's own tunnel subnet: its
    first host, or the second when the first is the router itself. None for /32, /128
    or link-local (nothing to aim at)."""
    for own in subnets:
        net = own.network
        if own.ip.is_link_local or net.num_addresses < 4:
            continue
        first = net.network_address + 1
        return str(first if first != own.ip else first + 1)
    return None
