"""Shared set-up for end-to-end tests: a UCI config for lab pairs and CLI runs in the router ns."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.lab import Lab, Link, WgPair

SRC = str(Path(__file__).resolve().parents[2] / "src")
NAME = "peer.wg.test"


def four_links(lab: Lab) -> dict[str, Link]:
    """Two IPv6 and two IPv4 peer addresses, each on its own link."""
    return {
        "v6a": lab.add_link("v6a", 6, "2001:db8:1::1", "2001:db8:1::2", 64),
        "v4a": lab.add_link("v4a", 4, "192.0.2.1", "192.0.2.2", 30),
        "v6b": lab.add_link("v6b", 6, "2001:db8:2::1", "2001:db8:2::2", 64),
        "v4b": lab.add_link("v4b", 4, "198.51.100.1", "198.51.100.2", 30),
    }


def peer_section(pair: WgPair, host: str = NAME, extra: str = "", description: str = "") -> str:
    return (f"config wireguard_{pair.router_if}\n"
            f"\toption public_key '{pair.peer_public}'\n"
            f"\toption endpoint_host '{host}'\n"
            f"\toption endpoint_port '{pair.peer_port}'\n"
            f"\tlist allowed_ips '{pair.peer_tunnel_ip}/32'\n"
            + (f"\toption description '{description}'\n" if description else "")
            + extra + "\n")


def write_config(tmp: Path, pairs: list[WgPair], sections: str, own: str = "") -> str:
    """A UCI dir with `network` (one wireguard interface per pair) and `wg-endpointd`."""
    confdir = tmp / "config"
    confdir.mkdir(exist_ok=True)
    ifaces = "".join(f"config interface '{p.router_if}'\n\toption proto 'wireguard'\n\n"
                     for p in {p.router_if: p for p in pairs}.values())
    (confdir / "network").write_text(ifaces + sections)
    (confdir / "wg-endpointd").write_text(own or "config globals 'globals'\n")
    return str(confdir)


def run_cli(lab: Lab, *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `python -m wg_endpointd ARGS` inside the router namespace; (result, seconds)."""
    env = dict(os.environ, PYTHONPATH=SRC)
    start = time.monotonic()
    res = lab.router([sys.executable, "-m", "wg_endpointd", *args], timeout=timeout,
                     check=False, env=env)
    return res, time.monotonic() - start


def endpoint(lab: Lab, pair: WgPair) -> str:
    return lab.wg_dump(pair)[2]
