"""Checks for values taken from config before they reach a command line."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Protocol, TypeVar

_KEY = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")
_IFNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,14}")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes '５' and '²'
_INET_ATON_PART = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")  # what inet_aton reads as a number
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


class _Host(Protocol):
    @property
    def host(self) -> str: ...


H = TypeVar("H", bound=_Host)


def is_public_key(text: str) -> bool:
    """A base64 Curve25519 key as wg prints it (44 characters)."""
    return _KEY.fullmatch(text) is not None


def is_ifname(text: str) -> bool:
    """A Linux interface name that cannot be read as an option."""
    return _IFNAME.fullmatch(text) is not None


def ip_literal(text: str) -> str | None:
    """The normalized IP if `text` is an IP literal (brackets allowed), else None."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def is_hostname(text: str) -> bool:
    """A DNS name (letters, digits, '-', '_' and dots; never starting with '-')."""
    return len(text) <= 253 and _HOSTNAME.fullmatch(text) is not None


def looks_numeric(host: str) -> bool:
    """A name the resolver would read as an IPv4 number (`1`, `0x7f.1`, `127.1`), or
    whose last label is all digits: no real DNS name looks like that (RFC 3696 §2)."""
    labels = host.rstrip(".").split(".")
    return labels[-1].isascii() and labels[-1].isdigit() or all(
        _INET_ATON_PART.fullmatch(label) for label in labels)


def parse_port(text: str) -> int:
    """A UDP port 1-65535 in ASCII digits; raise ValueError otherwise."""
    if not _DIGITS.fullmatch(text):
        raise ValueError(f"invalid port {text!r}")
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range 1-65535")
    return port


def check_host(host: str) -> str:
    """A candidate host as the daemon can use it: a normalized IP or a DNS name.

    Raises ValueError with the reason for everything else.
    """
    if "%" in host:
        raise ValueError(f"{host!r}: link-local addresses with a zone are not supported")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not is_hostname(host):
            raise ValueError(f"invalid host {host!r}") from None
        if looks_numeric(host):
            raise ValueError(f"{host!r} is neither an IP address nor a host name") from None
        return host
    if ip.version == 6 and ip.ipv4_mapped is not None:
        raise ValueError(f"{host!r} is an IPv4-mapped address; write {ip.ipv4_mapped}")
    return str(ip)  # never_endpoint() tells the caller about loopback, link-local and such


def never_endpoint(host: str) -> str | None:
    """Why the IP literal `host` can never be a remote endpoint; None for any other
    address and for a name.

    The classes that need no knowledge of this host: loopback, unspecified, multicast,
    limited broadcast, link-local (it would need a zone), IPv4-mapped.
    """
    literal = ip_literal(host)
    if literal is None:
        return None
    ip = ipaddress.ip_address(literal)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return "an IPv4-mapped address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip == _BROADCAST:
        return "the broadcast address"
    if ip.is_link_local:
        return "a link-local address"  # it would need a zone, which is not supported
    return None


def drop_never(hosts: Iterable[H], where: str, notes: list[str]) -> list[H]:
    """`hosts` without the IP literals that are never an endpoint; one line in `notes`
    naming `where` (file:line: section.option) for each one dropped."""
    kept = []
    for spec in hosts:
        why = never_endpoint(spec.host)
        if why is None:
            kept.append(spec)
        else:
            notes.append(f"{where}: {spec.host} is {why}, never a remote endpoint; "
                         "this candidate is dropped")
    return kept


def probe_outside(address: str, allowed: Iterable[str], where: str) -> list[str]:
    """One line when `address` is in none of the peer's `allowed` IPs: WireGuard hands a
    datagram for it to another peer or drops it, so this peer never answers it."""
    ip, prefixes = ipaddress.ip_address(address), list(allowed)
    for item in prefixes:
        try:
            if ip in ipaddress.ip_network(item, strict=False):
                return []
        except ValueError:
            continue  # netifd refuses it too; not ours to report
    return [f"{where}: {address} is outside the peer's allowed IPs "
            f"({', '.join(prefixes) or 'none'}), so test datagrams to it never reach "
            "the peer; name an address inside them"]


def parse_endpoint_host(text: str) -> str:
    """`endpoint_host` of /etc/config/network, refused where netifd's wireguard.sh
    would build an Endpoint that wg rejects: it puts brackets around any value with
    a ':' and appends endpoint_port, so `host:port` and `[v6]` never work there."""
    if text.startswith("[") or (":" in text and ip_literal(text) is None
                                and "%" not in text):
        raise ValueError(f"{text!r}: put only the host here and the port in endpoint_port "
                         "(netifd would give wg an endpoint it cannot parse)")
    return check_host(text)


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """Split `host`, `host:port`, `[v6]:port` or a bare IPv6 literal.

    Raises ValueError when the host is neither an IP literal nor a hostname.
    """
    host, port = text, default_port
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"unbalanced '[' in {text!r}")
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"garbage after ']' in {text!r}")
            port = parse_port(rest[1:])
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = parse_port(port_text)
    return check_host(host), port
