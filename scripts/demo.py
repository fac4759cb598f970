"""Demo: a router stuck on a broken IPv6 endpoint, fixed by one `wg-endpointd once` round.

Run as root from the repository root (or `make demo`):

    PYTHONPATH=src:. .venv/bin/python scripts/demo.py

Builds a small lab (tests/lab/): a router and a peer namespace joined by an IPv6 and an
IPv4 link, wireguard-go on both sides, and dnsmasq publishing the peer's name with its AAAA
record first and its A record second. IPv6 to the peer then breaks; WireGuard, resolving
the name itself, takes the AAAA address and stays there. `wg-endpointd once` moves it to
the IPv4 address and WireGuard verifies it. Only documentation addresses, only inside the
lab's namespaces; everything is removed at the end, also after a failure or Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
for entry in (str(ROOT / "src"), str(ROOT)):  # also works without PYTHONPATH
    if entry not in sys.path:
        sys.path.insert(0, entry)

from tests.e2e.helpers import peer_section, write_config  # noqa: E402
from tests.lab import Lab, WgPair, missing_requirements  # noqa: E402

NAME = "peer.wg.test"
INDENT = "    "


def heading(number: int, text: str) -> None:
    print(f"\n== {number}. {text}", flush=True)


def say(text: str = "") -> None:
    print(f"{INDENT}{text}", flush=True)


def show_peer(lab: Lab, pair: WgPair) -> None:
    """The router's `wg show` block for the peer (public data only)."""
    out = lab.router(["wg", "show", pair.router_if], timeout=10).stdout
    lines = out.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("peer:")), None)
    say(f"$ wg show {pair.router_if}   (router, peer section)")
    for line in lines[start:] if start is not None else lines:
        if line.strip():
            say("  " + line.strip())


def ping_tunnel(lab: Lab, pair: WgPair, count: int) -> None:
    argv = ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "1", pair.peer_tunnel_ip]
    res = lab.router(argv, timeout=count * 0.2 + 6, check=False)
    summary = [line for line in res.stdout.splitlines()
               if "packets transmitted" in line or line.startswith("rtt")]
    verdict = "replies" if res.returncode == 0 else "NO REPLY"
    say(f"$ ping -c {count} {pair.peer_tunnel_ip}   (the peer's tunnel address): {verdict}")
    for line in summary:
        say("  " + line)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def demo(lab: Lab) -> int:
    heading(1, "Lab: router and peer namespaces, an IPv6 and an IPv4 link, WireGuard, DNS")
    v6 = lab.add_link("v6", 6, "2001:db8:1::1", "2001:db8:1::2", 64)
    v4 = lab.add_link("v4", 4, "192.0.2.1", "192.0.2.2", 30)
    pair = lab.add_wg_pair(51820)
    lab.set_dns({NAME: [v6.peer_addr, v4.peer_addr]})
    say(f"namespaces {lab.router_ns} (router) and {lab.peer_ns} (peer)")
    say(f"links: IPv6 {v6.router_addr} <-> {v6.peer_addr}, IPv4 {v4.router_addr} <-> "
        f"{v4.peer_addr}")
    say(f"WireGuard: router {pair.router_if} {pair.router_tunnel_ip} <-> peer "
        f"{pair.peer_if} {pair.peer_tunnel_ip}, peer listens on {pair.peer_port}")
    answers = lab.router(["getent", "ahosts", NAME], timeout=10).stdout.splitlines()
    resolved = list(dict.fromkeys(line.split()[0] for line in answers if line.strip()))
    say(f"DNS (dnsmasq in the peer namespace): {NAME} -> {', '.join(resolved)}")

    heading(2, "IPv6 to the peer breaks; WireGuard stays on the AAAA address")
    lab.block(v6, "all")
    say("nft in the peer namespace drops everything arriving on its IPv6 link")
    # What netifd's `wg setconf` does: hand WireGuard the name; wg resolves it once and
    # takes the first address. (The router is behind NAT: the peer cannot dial in.)
    lab.router(["wg", "set", pair.router_if, "peer", pair.peer_public,
                "endpoint", f"{NAME}:{pair.peer_port}"], timeout=10)
    if lab.wg_dump(pair)[2] != v6.endpoint(pair.peer_port):
        say(f"(wg picked {lab.wg_dump(pair)[2]}; setting the IPv6 endpoint explicitly)")
        lab.set_endpoint(pair, v6.endpoint(pair.peer_port))
    say(f"$ wg set {pair.router_if} peer {pair.peer_public[:8]}... endpoint "
        f"{NAME}:{pair.peer_port}")
    show_peer(lab, pair)
    ping_tunnel(lab, pair, 2)

    heading(3, "wg-endpointd once")
    confdir = write_config(Path(lab.tmpdir), [pair],
                           peer_section(pair, host=NAME, description="office"))
    say(f"UCI: config interface '{pair.router_if}' (proto wireguard) and one "
        f"wireguard_{pair.router_if} peer, endpoint_host '{NAME}'")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    argv = [sys.executable, "-m", "wg_endpointd", "once", "--config-dir", confdir]
    say(f"$ wg-endpointd once --config-dir {confdir}")
    start = time.monotonic()
    res = lab.router(argv, timeout=60, check=False, env=env)
    took = time.monotonic() - start
    for line in (res.stdout + res.stderr).strip().splitlines():
        say("  " + line)
    say(f"exit code {res.returncode}, {took:.2f} s")

    heading(4, "After: new endpoint, handshake, traffic through the tunnel")
    show_peer(lab, pair)
    ping_tunnel(lab, pair, 3)
    fields = lab.wg_dump(pair)
    ok = res.returncode == 0 and fields[2] == v4.endpoint(pair.peer_port) and int(fields[4]) > 0
    return 0 if ok else 1


def main() -> int:
    problems = missing_requirements()
    if problems:
        print("demo: the lab cannot run here: " + "; ".join(problems), file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)  # so the lab is removed on these too
    began = time.monotonic()
    lab = Lab()
    try:
        rc = demo(lab)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        rc = 130
    except Exception as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        rc = 1
    finally:
        lab.close()
    heading(5, "Clean-up")
    left = lab.leftovers() + lab.close_errors
    say("removed namespaces, wireguard-go, dnsmasq, sockets and temp files"
        if not left else "LEFT BEHIND: " + "; ".join(left))
    say(f"demo {'done' if rc == 0 else 'FAILED'} in {time.monotonic() - began:.1f} s")
    return rc if not left else 1


if __name__ == "__main__":
    sys.exit(main())
