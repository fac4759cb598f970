"""DNS: dnsmasq in the peer namespace, the router namespace's resolv.conf pointing at it,
and the check that keeps the lab's records in documentation ranges."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import sys
import time

from tests.lab.base import (
    _UNDERLAY_NETS,
    ETC_NETNS,
    TUNNEL_NET4,
    TUNNEL_NET6,
    LabBase,
    _fail,
    _stop,
)

_READY_NAME = "ready.lab.invalid"  # dnsmasq always answers this; used to wait for it
_DNS_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,250}[a-z0-9])?$")


def _check_doc_address(addr: str) -> None:
    ip = ipaddress.ip_address(addr)
    if not any(ip in net for net in (*_UNDERLAY_NETS, TUNNEL_NET4, TUNNEL_NET6)):
        raise ValueError(f"{addr} is outside the lab's documentation ranges")


class Dns(LabBase):
    """dnsmasq in the peer namespace (``set_dns``)."""

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
