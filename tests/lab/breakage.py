"""Breakage: nftables rules in the peer's and the servers' namespaces that drop packets
on chosen links (block/unblock, answer_by_keepalive_only, block_server)."""

from __future__ import annotations

from tests.lab.base import LabBase, _host_run
from tests.lab.links import Link
from tests.lab.servers import Server
from tests.lab.wgends import WgPair


class Breakage(LabBase):
    """Packet filtering that breaks paths (nftables)."""

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
