"""The `once` lab scenarios, staged for tests (tests/e2e/test_once.py) and for the benchmark
(bench/scenarios.py): each builds its lab state and can put the router back into its
starting state for another run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.helpers import NAME, four_links, peer_section, write_config
from tests.lab import Lab, Link, WgPair

Records = Mapping[str, list[str]]
BASE_NAME = "base.wg.test"
BASE_PORT = 51829


@dataclass
class Staged:
    """A scenario ready to run: `once --config-dir confdir` should end with exit code
    `rc` and the first pair on `expect`; `rearm()` restores the starting state."""

    name: str
    pairs: list[WgPair]
    links: dict[str, Link]
    confdir: str
    expect: str
    rc: int = 0
    rearm: Callable[[], None] = field(default=lambda: None)


def _dns(lab: Lab, records: Records, extra: Records | None) -> None:
    lab.set_dns({**records, **(extra or {})})


def _stuck_on(lab: Lab, pair: WgPair, endpoint: str) -> Callable[[], None]:
    """Re-create the router's peer on `endpoint`: no session, no handshake."""
    return lambda: lab.reset_router_peer(pair, endpoint)


def ipv6_dead(lab: Lab, tmp: Path, extra: Records | None = None) -> Staged:
    """DNS gives [v6a, v4a]; v6a drops everything; the router is stuck on v6a."""
    links = four_links(lab)
    pair = lab.add_wg_pair(51820)
    _dns(lab, {NAME: [links["v6a"].peer_addr, links["v4a"].peer_addr]}, extra)
    lab.block(links["v6a"], "all")
    lab.set_endpoint(pair, links["v6a"].endpoint())  # what wg itself would have picked
    confdir = write_config(tmp, [pair], peer_section(pair))
    return Staged("ipv6 dead", [pair], links, confdir, links["v4a"].endpoint(),
                  rearm=_stuck_on(lab, pair, links["v6a"].endpoint()))


def icmp_but_udp_dropped(lab: Lab, tmp: Path, extra: Records | None = None) -> Staged:
    """v6a answers ping but drops UDP; the router is stuck on v6b, an old dead address."""
    links = four_links(lab)
    pair = lab.add_wg_pair(51820, psk=True)  # the reset must restore the preshared key
    _dns(lab, {NAME: [links["v6a"].peer_addr, links["v4a"].peer_addr]}, extra)
    lab.block(links["v6a"], "udp")
    lab.block(links["v6b"], "all")
    lab.set_endpoint(pair, links["v6b"].endpoint())
    confdir = write_config(tmp, [pair], peer_section(pair))
    return Staged("icmp answers, udp dropped", [pair], links, confdir,
                  links["v4a"].endpoint(), rearm=_stuck_on(lab, pair, links["v6b"].endpoint()))


def moved_in_dns(lab: Lab, tmp: Path, extra: Records | None = None) -> Staged:
    """The peer left v4b and updated DNS to v4a; the router's session is long gone."""
    links = four_links(lab)
    pair = lab.add_wg_pair(51820)
    _dns(lab, {NAME: [links["v4b"].peer_addr]}, extra)
    lab.set_endpoint(pair, links["v4b"].endpoint())
    if not lab.ping_through_tunnel(pair):
        raise AssertionError("no tunnel over v4b before the move")
    lab.remove_peer_address(links["v4b"])  # the peer moves away ...
    _dns(lab, {NAME: [links["v4a"].peer_addr]}, extra)  # ... and updates its DNS record
    lab.reset_router_peer(pair)  # the old session is long gone
    confdir = write_config(tmp, [pair], peer_section(pair))
    return Staged("peer moved in DNS", [pair], links, confdir, links["v4a"].endpoint(),
                  rearm=_stuck_on(lab, pair, links["v4b"].endpoint()))


def healthy_not_first(lab: Lab, tmp: Path, extra: Records | None = None) -> Staged:
    """The router is on v4a with a live session while v6a (preferred, alive) is first."""
    links = four_links(lab)
    pair = lab.add_wg_pair(51820)
    _dns(lab, {NAME: [links["v6a"].peer_addr, links["v4a"].peer_addr]}, extra)  # v6 first
    lab.set_endpoint(pair, links["v4a"].endpoint())
    if not lab.ping_through_tunnel(pair):
        raise AssertionError("no tunnel over v4a")
    confdir = write_config(tmp, [pair], peer_section(pair))
    return Staged("healthy, not first, left alone", [pair], links, confdir,
                  links["v4a"].endpoint())


def broken_next_to_good(lab: Lab, tmp: Path, extra: Records | None = None) -> Staged:
    """Two peers: one stuck on a dead v6a, one whose UCI section is broken (exit 1)."""
    links = four_links(lab)
    good = lab.add_wg_pair(51820)
    other = lab.add_wg_pair(51821)
    _dns(lab, {NAME: [links["v6a"].peer_addr, links["v4a"].peer_addr]}, extra)
    lab.block(links["v6a"], "all")
    lab.set_endpoint(good, links["v6a"].endpoint())
    broken = peer_section(other).replace(f"'{other.peer_port}'", "'not-a-port'")
    confdir = write_config(tmp, [good, other], peer_section(good) + broken)
    return Staged("broken peer next to good one", [good, other], links, confdir,
                  links["v4a"].endpoint(), rc=1,
                  rearm=_stuck_on(lab, good, links["v6a"].endpoint()))


def no_icmp(lab: Lab, tmp: Path, extra: Records | None = None) -> Staged:
    """No path answers ping; v6a (current, first in DNS) is dead; v4a works for WireGuard."""
    links = four_links(lab)
    pair = lab.add_wg_pair(51820)
    _dns(lab, {NAME: [links["v6a"].peer_addr, links["v4a"].peer_addr]}, extra)
    lab.block(links["v6a"], "all")
    for name in ("v4a", "v6b", "v4b"):
        lab.block(links[name], "icmp")
    lab.set_endpoint(pair, links["v6a"].endpoint())
    confdir = write_config(tmp, [pair], peer_section(pair))
    return Staged("no ICMP anywhere, current dead", [pair], links, confdir,
                  links["v4a"].endpoint(), rearm=_stuck_on(lab, pair, links["v6a"].endpoint()))


def no_icmp_session(lab: Lab, tmp: Path, extra: Records | None = None) -> Staged:
    """As no_icmp, but the tunnel worked on v6a a moment ago: the peer still has a
    session when v6a dies (a user's `once` right after the path broke)."""
    staged = no_icmp(lab, tmp, extra)
    [pair], v6a = staged.pairs, staged.links["v6a"]

    def rearm() -> None:
        lab.unblock(v6a)
        lab.reset_router_peer(pair, v6a.endpoint())
        if not lab.ping_through_tunnel(pair):
            raise AssertionError("no session on v6a to start from")
        lab.block(v6a, "all")

    rearm()
    return dataclasses.replace(staged, name="no ICMP anywhere, current dead, session",
                               rearm=rearm)


SCENARIOS: dict[str, Callable[[Lab, Path, Records | None], Staged]] = {
    "ipv6_dead": ipv6_dead,
    "icmp_udp_dropped": icmp_but_udp_dropped,
    "moved_in_dns": moved_in_dns,
    "healthy_not_first": healthy_not_first,
    "broken_next_to_good": broken_next_to_good,
    "no_icmp": no_icmp,
    "no_icmp_session": no_icmp_session,
}


def healthy_baseline(lab: Lab, tmp: Path) -> Staged:
    """A pair of its own on link "bl" with a live session: `once` is a no-op on it. Its DNS
    record (BASE_NAME) must be passed as `extra` to the scenario that sets the lab's DNS."""
    link = lab.add_link("bl", 4, "192.0.2.9", "192.0.2.10", 30)
    pair = lab.add_wg_pair(BASE_PORT)
    lab.set_endpoint(pair, link.endpoint(BASE_PORT))
    if not lab.ping_through_tunnel(pair):
        raise AssertionError("no tunnel over the baseline link")
    base = tmp / "baseline"
    base.mkdir(exist_ok=True)
    confdir = write_config(base, [pair], peer_section(pair, host=BASE_NAME))
    return Staged("healthy no-op (baseline)", [pair], {"bl": link}, confdir,
                  link.endpoint(BASE_PORT))


BASE_RECORDS: dict[str, list[str]] = {BASE_NAME: ["192.0.2.10"]}
