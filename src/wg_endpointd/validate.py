"""Checks for values taken from config before they reach a command line."""

from __future__ import annotations

import ipaddress
import re

_KEY = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")
_IFNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,14}")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


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


def parse_port(text: str) -> int:
    """A UDP port 1-65535; raise ValueError otherwise."""
    if not text.isdigit():
        raise ValueError(f"invalid port {text!r}")
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range 1-65535")
    return port


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
    literal = ip_literal(host)
    if literal is not None:
        return literal, port
    if not is_hostname(host):
        raise ValueError(f"invalid host {host!r}")
    return host, port
