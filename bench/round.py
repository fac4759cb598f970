"""Round benchmark: `wg-endpointd once` in the test lab against the widely copied
sequential-ping cron approach, a 100-peer round, and the CLI's start-up cost.

Run as root from the repository root (or `make bench`):

    PYTHONPATH=src:. .venv/bin/python -m bench.round

Machines are shared and noisy, so every figure is a median over repetitions, shown with its
min/max, and set against a baseline measured in the same run. Prints a report and writes
build/bench-round.json.

Measurements:
  a. one peer, DNS gives [v6a, v6b, v4b, v4a], only v4a alive (the others drop everything),
     router stuck on v6a without a session: wall time of `wg-endpointd once` (it returns
     after WireGuard verified the new endpoint) and the engine's own "verified in X s";
  b. the same lab and state fixed the cron way: resolve, `ping -c 3 -W 1` each address in
     resolver order, `wg set` the first that answers, send a packet, wait for a handshake;
  c. 100 peers of 4 candidates each (one router interface, 100 peer-side interfaces):
     round wall time, peers verified, peak RSS; CLI start-up and import cost;
  d. the same 100 peers, but each name resolves to 4 addresses of its own (400 distinct
     probe addresses), both IPv6 ones dead, both IPv4 ones alive.

`python -m bench.round distinct` (or single, many, startup) runs only those parts.

Everything runs inside namespaces the lab creates, on documentation addresses only. Every
loop is bounded in count and time, and everything created is removed in `finally`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from tests.e2e.helpers import NAME, four_links, peer_section, write_config
from tests.lab import WG_SOCK_DIR, Lab, Link, WgPair, missing_requirements

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")
OUT = ROOT / "build" / "bench-round.json"
PY = sys.executable
CLI = [PY, "-m", "wg_endpointd"]
VERIFIED_RE = re.compile(r"verified in ([0-9.]+) s")
OUTCOME_RE = re.compile(r"^\w+: (\S+): (healthy|switched|failed|error|would-switch) (\S+) \(")
DNS_ORDER = ("v6a", "v6b", "v4b", "v4a")  # resolver order for (a)-(c); only the last is alive
DEAD = ("v6a", "v6b", "v4b")

REPS_OURS = 7
REPS_BASELINE = 3
REPS_MANY = 3
REPS_DISTINCT = 5
MANY = 100
MANY_BASE_PORT = 52000
TARGET_MANY_S = 3.0
TARGET_DISTINCT_S = 1.0
REPS_VERSION = 10
REPS_IMPORT = 5

# IPv6 tunnel addresses for the 100-peer setup (inside the lab's reserved 2001:db8:ffff::/48).
MANY_ROUTER_TUN = "2001:db8:ffff::1"
MANY_PEER_NET = ipaddress.ip_network("2001:db8:ffff:1::/64")


def dns_records(links: dict[str, Link]) -> list[str]:
    """Addresses for Lab.set_dns so that the resolver returns them in DNS_ORDER.

    dnsmasq answers several --address records of one family in the reverse of the order
    given (checked with getent in this lab); glibc then puts IPv6 before IPv4.
    """
    return [links[n].peer_addr for n in reversed(DNS_ORDER)]


def cli_env() -> dict[str, str]:
    """The CLI's environment: the source tree on PYTHONPATH, nothing else changed."""
    return dict(os.environ, PYTHONPATH=SRC)


# ---- measuring a process ------------------------------------------------------------------


TIME = shutil.which("time", path="/usr/bin:/bin")  # GNU time, for a clean peak RSS


@dataclass
class Run:
    argv: list[str]
    rc: int
    wall_s: float
    maxrss_kb: int  # peak RSS in KiB (see run_measured)
    stdout: str
    stderr: str


def run_measured(argv: Sequence[str], env: dict[str, str] | None = None,
                 timeout: float = 60.0, rss: bool = False) -> Run:
    """Run argv; wall time from just before the fork to its exit.

    With rss, the peak RSS comes from GNU time wrapping argv (`time -f %M`): rusage of a
    child forked by this (big) Python process would count this process's pages too, since
    Linux carries the pre-exec high-water mark across exec. Without GNU time, or without
    rss, maxrss_kb is wait4's figure: an upper bound that includes those pages.
    `ip netns exec NS cmd` execs cmd in place, so no extra process sits in between.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        full = list(argv)
        if rss and TIME:
            full = [TIME, "-f", "%M", "-o", rss_file.name, *full]
        box: dict[str, Any] = {}
        start = time.perf_counter()
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env)

        def reap() -> None:
            _, status, usage = os.wait4(proc.pid, 0)
            box["end"] = time.perf_counter()
            box["status"], box["usage"] = status, usage

        waiter = threading.Thread(target=reap, daemon=True)
        waiter.start()
        try:
            waiter.join(timeout)
        finally:
            if waiter.is_alive():  # too slow, or we were interrupted: kill it
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                waiter.join(10)  # the waiter reaps it
                proc.returncode = -9
        if "status" not in box:
            raise TimeoutError(f"{' '.join(argv[-6:])} took longer than {timeout:g} s")
        proc.returncode = os.waitstatus_to_exitcode(box["status"])
        maxrss = box["usage"].ru_maxrss
        if rss and TIME:
            text = rss_file.read().strip().splitlines()
            maxrss = int(text[-1]) if text and text[-1].isdigit() else -1
        out.seek(0)
        err.seek(0)
        return Run(list(argv), proc.returncode, box["end"] - start, maxrss,
                   out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def begin_run(**extra: object) -> dict[str, Any]:
    """Make SIGTERM and SIGHUP unwind (so every `finally` cleans up) and return the run's
    description: when, where, and the load at the start."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    return {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(),
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(), **extra}


def write_json(path: Path, data: object) -> None:
    """Write a result file atomically (a reader never sees half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def stats(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None, "values": []}
    return {"n": len(values), "median": statistics.median(values), "min": min(values),
            "max": max(values), "values": list(values)}


def fmt_s(summary: dict[str, Any], unit: str = "s", scale: float = 1.0, digits: int = 3) -> str:
    if not summary["n"]:
        return "(no data)"
    med, lo, hi = (summary[k] * scale for k in ("median", "min", "max"))
    return f"median {med:.{digits}f} {unit} (min {lo:.{digits}f}, max {hi:.{digits}f}, n={summary['n']})"


def outcome_lines(stderr: str) -> list[tuple[str, str, str, str]]:
    """(label, status, endpoint, whole line) for each per-peer outcome line of `once`."""
    found = []
    for line in stderr.splitlines():
        m = OUTCOME_RE.match(line)
        if m:
            found.append((m.group(1), m.group(2), m.group(3), line))
    return found


def peer_dump(lab: Lab, iface: str) -> dict[str, list[str]]:
    """Router-side `wg show IF dump` peer lines by public key."""
    out = lab.router(["wg", "show", iface, "dump"], timeout=10).stdout
    return {f[0]: f for f in (line.split("\t") for line in out.splitlines()[1:]) if f[0]}


def cli_once(lab: Lab, confdir: str, timeout: float = 60.0) -> Run:
    return run_measured(["ip", "netns", "exec", lab.router_ns, *CLI, "once",
                         "--config-dir", confdir], env=cli_env(), timeout=timeout, rss=True)


def tail(text: str, lines: int = 15) -> list[str]:
    return text.strip().splitlines()[-lines:]


# ---- (a) + (b): one peer, 4 candidates, 3 dead ---------------------------------------------


def one_ours(lab: Lab, pair: WgPair, confdir: str, live: str, dead: str) -> dict[str, Any]:
    lab.reset_router_peer(pair, dead)
    before = lab.wg_dump(pair)
    assert before[2] == dead and before[4] == "0", f"bad start state {before}"
    run = cli_once(lab, confdir)
    after = lab.wg_dump(pair)
    m = VERIFIED_RE.search(run.stderr)
    return {
        "rc": run.rc, "wall_s": run.wall_s, "maxrss_kb": run.maxrss_kb,
        "engine_verified_s": float(m.group(1)) if m else None,
        "endpoint_after": after[2], "handshake_after": int(after[4]),
        "verified": run.rc == 0 and after[2] == live and int(after[4]) > 0,
        "stderr": run.stderr.strip().splitlines(),
    }


def one_baseline(lab: Lab, pair: WgPair, name: str) -> dict[str, Any]:
    """The widely copied cron approach, step by step, in the router namespace."""
    lab.reset_router_peer(pair, lab.links[0].endpoint(pair.peer_port))
    start = time.perf_counter()
    res = lab.router(["getent", "ahosts", name], timeout=20, check=False)
    order = list(dict.fromkeys(line.split()[0] for line in res.stdout.splitlines()
                               if line.strip()))
    t_resolved = time.perf_counter()
    pings: list[dict[str, Any]] = []
    chosen = None
    for addr in order[:8]:  # bounded: at most 8 addresses, each ping bounded by its timeout
        t = time.perf_counter()
        r = lab.router(["ping", "-n", "-q", "-c", "3", "-W", "1", addr], timeout=15,
                       check=False)
        pings.append({"address": addr, "answered": r.returncode == 0,
                      "seconds": time.perf_counter() - t})
        if r.returncode == 0:
            chosen = addr
            break
    result: dict[str, Any] = {"resolver_order": order, "resolve_s": t_resolved - start,
                              "pings": pings, "chosen": chosen}
    if chosen is None:
        result.update(verified=False, wall_s=time.perf_counter() - start)
        return result
    ep = f"[{chosen}]:{pair.peer_port}" if ":" in chosen else f"{chosen}:{pair.peer_port}"
    lab.router(["wg", "set", pair.router_if, "peer", pair.peer_public, "endpoint", ep])
    # "Send a packet into the tunnel", then wait (5 s at most) for latest-handshake > 0.
    lab.router(["ping", "-n", "-q", "-c", "1", "-W", "1", pair.peer_tunnel_ip], timeout=10,
               check=False)
    deadline = time.monotonic() + 5
    handshake = 0
    for _ in range(250):  # bounded: 250 polls and 5 s
        out = lab.router(["wg", "show", pair.router_if, "latest-handshakes"], timeout=5).stdout
        for line in out.splitlines():
            key, _, value = line.partition("\t")
            if key == pair.peer_public:
                handshake = int(value or 0)
        if handshake > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    result.update(endpoint=ep, handshake=handshake, verified=handshake > 0,
                  wall_s=time.perf_counter() - start)
    return result


def bench_single() -> dict[str, Any]:
    with Lab() as lab:
        links = four_links(lab)
        pair = lab.add_wg_pair(51820)
        lab.set_dns({NAME: dns_records(links)})
        got = list(dict.fromkeys(line.split()[0] for line in lab.router(
            ["getent", "ahosts", NAME]).stdout.splitlines() if line.strip()))
        want = [links[n].peer_addr for n in DNS_ORDER]
        if got != want:
            print(f"  note: resolver order is {got}, not {want}", flush=True)
        for n in DEAD:
            lab.block(links[n], "all")
        confdir = write_config(Path(lab.tmpdir), [pair], peer_section(pair))
        live = links["v4a"].endpoint(pair.peer_port)
        dead = links["v6a"].endpoint(pair.peer_port)
        assert lab.links[0] is links["v6a"]
        # Interleaved so that drift in machine load hits both sides alike.
        schedule = ["ours", "ours", "base", "ours", "ours", "base", "ours", "ours", "base",
                    "ours"]
        assert schedule.count("ours") == REPS_OURS and schedule.count("base") == REPS_BASELINE
        ours: list[dict[str, Any]] = []
        base: list[dict[str, Any]] = []
        for i, which in enumerate(schedule):
            if which == "ours":
                ours.append(one_ours(lab, pair, confdir, live, dead))
                r = ours[-1]
                note = f"wall {r['wall_s']:.3f} s, verified in {r['engine_verified_s']} s"
            else:
                base.append(one_baseline(lab, pair, NAME))
                r = base[-1]
                note = f"wall {r['wall_s']:.2f} s, chose {r.get('chosen')}"
            print(f"  [{i + 1}/{len(schedule)}] {which}: {note}"
                  + ("" if r["verified"] else "  NOT VERIFIED"), flush=True)
    return {"dns_order": [f"{n} {links[n].peer_addr}" for n in DNS_ORDER],
            "resolver_order": got, "resolver_order_as_intended": got == want,
            "dead": list(DEAD), "live_endpoint": live, "start_endpoint": dead,
            "ours": ours, "baseline": base, "leftovers": lab.leftovers(),
            "close_errors": lab.close_errors}


# ---- (c): 100 peers ------------------------------------------------------------------------


def _genkey(directory: str, name: str) -> tuple[str, str]:
    """A new private key in a 0600 file -> (path, public key)."""
    private = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True,
                             timeout=10).stdout.strip()
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(private + "\n")
    public = subprocess.run(["wg", "pubkey"], input=private + "\n", capture_output=True,
                            text=True, check=True, timeout=10).stdout.strip()
    return path, public


class ManyPeers:
    """One router-side wireguard-go interface with `count` peers, and one peer-side
    wireguard-go interface per peer key, inside an existing Lab's namespaces.

    Tunnel: router 2001:db8:ffff::1/128, peer i 2001:db8:ffff:1::(i+1)/128 with a policy
    rule on the peer side so each peer answers through its own interface. Peer i listens
    on base_port+i. Peer-side handshake initiations are dropped (a router behind NAT).

    close() stops the processes and removes the control sockets this class created, even
    after a failure in start(); the Lab removes the namespaces and its temp dir.
    """

    def __init__(self, lab: Lab, count: int, base_port: int) -> None:
        self.lab, self.count, self.base_port = lab, count, base_port
        self.router_if = f"wgb{lab.tag}r"
        self.peer_ifs = [f"wgb{lab.tag}p{i}" for i in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ifaces: list[str] = []  # whose sockets we may have created
        self.dir = tempfile.mkdtemp(prefix="many-", dir=lab.tmpdir)
        self.router_public = ""
        self.peer_public: list[str] = []

    def peer_tunnel_ip(self, i: int) -> str:
        return str(MANY_PEER_NET.network_address + i + 1)

    def port(self, i: int) -> int:
        return self.base_port + i

    def _spawn(self, ns: str, ifname: str) -> None:
        sock = os.path.join(WG_SOCK_DIR, f"{ifname}.sock")
        if os.path.exists(sock):
            raise RuntimeError(f"{sock} already exists")
        with open(os.path.join(self.dir, f"{ifname}.log"), "wb") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, "wireguard-go", "-f", ifname],
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env=dict(os.environ, LOG_LEVEL="error"))
        self.procs.append(proc)
        self.ifaces.append(ifname)

    def start(self) -> None:
        lab = self.lab
        # wireguard-go binds a random port at start; keep those away from base_port...
        # (the range is per network namespace).
        lab.peer(["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=60000 60999"])
        self._spawn(lab.router_ns, self.router_if)
        for ifname in self.peer_ifs:
            self._spawn(lab.peer_ns, ifname)
        deadline = time.monotonic() + 30
        for _ in range(3000):  # bounded: 3000 x 10 ms and 30 s
            missing = [i for i in self.ifaces
                       if not os.path.exists(os.path.join(WG_SOCK_DIR, f"{i}.sock"))]
            dead = [p.args for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"wireguard-go exited: {dead[:3]}")
            if not missing:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(missing)} wireguard-go sockets missing after 30 s")
            time.sleep(0.01)
        r_priv, self.router_public = _genkey(self.dir, "router.key")
        peer_privs = []
        for i in range(self.count):
            priv, pub = _genkey(self.dir, f"peer{i}.key")
            peer_privs.append(priv)
            self.peer_public.append(pub)
        for i, ifname in enumerate(self.peer_ifs):
            lab.peer(["wg", "set", ifname, "private-key", peer_privs[i],
                      "listen-port", str(self.port(i)), "peer", self.router_public,
                      "allowed-ips", f"{MANY_ROUTER_TUN}/128"])
        lab.router(["wg", "set", self.router_if, "private-key", r_priv, "listen-port", "51820"])
        lab.router(["ip", "-6", "-batch", "-"], input=(
            f"addr add {MANY_ROUTER_TUN}/128 dev {self.router_if} nodad\n"
            f"link set {self.router_if} up\n"
            f"route add {MANY_PEER_NET} dev {self.router_if}\n"))
        lines = []
        for i, ifname in enumerate(self.peer_ifs):
            table = 1000 + i
            lines += [f"addr add {self.peer_tunnel_ip(i)}/128 dev {ifname} nodad",
                      f"link set {ifname} up",
                      f"route add {MANY_ROUTER_TUN}/128 dev {ifname} table {table}",
                      f"rule add from {self.peer_tunnel_ip(i)}/128 table {table} pref {table}"]
        lab.peer(["ip", "-6", "-batch", "-"], input="\n".join(lines) + "\n")
        last = self.base_port + self.count - 1
        lab.peer(["nft", "-f", "-"], input=(
            "table inet wgbench\ndelete table inet wgbench\n"
            "table inet wgbench {\n"
            "  chain out { type filter hook output priority 0; policy accept;\n"
            f"    udp sport {self.base_port}-{last} @th,64,32 0x01000000 drop\n"
            "  }\n}\n"))

    def reset_router_peers(self, endpoints: Sequence[str]) -> None:
        """Re-create every router-side peer, peer i on endpoints[i]: no session, no rate
        limit."""
        args: list[str] = []
        for i, key in enumerate(self.peer_public):
            args += ["peer", key, "remove", "peer", key,
                     "allowed-ips", f"{self.peer_tunnel_ip(i)}/128",
                     "endpoint", endpoints[i]]
        self.lab.router(["wg", "set", self.router_if, *args])

    def answer_from(self, routes: Sequence[Sequence[tuple[str, str, str]]]) -> None:
        """Peer i's WireGuard answers from its own underlay addresses: routes[i] lists
        (destination net, device, source address), put in a table that a policy rule on
        peer i's UDP port selects (wireguard-go does not keep the address a packet came to,
        so without this every answer would come from the link's first address)."""
        lines = []
        for i, triples in enumerate(routes):
            table = 3000 + i
            lines += [f"route add {net} dev {dev} src {src} table {table}"
                      for net, dev, src in triples]
            lines.append(f"rule add ipproto udp sport {self.port(i)} table {table} pref {table}")
        self.lab.peer(["ip", "-4", "-batch", "-"], input="\n".join(lines) + "\n")

    def uci(self, directory: Path) -> str:
        confdir = directory / "config"
        confdir.mkdir(exist_ok=True)
        text = f"config interface '{self.router_if}'\n\toption proto 'wireguard'\n\n"
        for i, key in enumerate(self.peer_public):
            text += (f"config wireguard_{self.router_if}\n"
                     f"\toption public_key '{key}'\n"
                     f"\toption endpoint_host 'peer{i}.wg.test'\n"
                     f"\toption endpoint_port '{self.port(i)}'\n"
                     f"\toption description 'peer{i}'\n"
                     f"\tlist allowed_ips '{self.peer_tunnel_ip(i)}/128'\n\n")
        (confdir / "network").write_text(text)
        (confdir / "wg-endpointd").write_text("config globals 'globals'\n")
        return str(confdir)

    def close(self) -> list[str]:
        """Stop what start() started and remove its sockets; never raises. Returns problems."""
        problems = []
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    proc.terminate()
                except OSError as exc:
                    problems.append(f"terminate {proc.pid}: {exc}")
        deadline = time.monotonic() + 3
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    problems.append(f"wireguard-go pid {proc.pid} survived SIGKILL")
        for ifname in self.ifaces:
            sock = os.path.join(WG_SOCK_DIR, f"{ifname}.sock")
            try:
                if os.path.exists(sock):
                    os.remove(sock)
            except OSError as exc:
                problems.append(f"remove {sock}: {exc}")
        return problems

    def leftovers(self) -> list[str]:
        found = [f"socket {i}.sock" for i in self.ifaces
                 if os.path.exists(os.path.join(WG_SOCK_DIR, f"{i}.sock"))]
        found += [f"process {p.pid}" for p in self.procs if p.poll() is None]
        return found


def _many_runs(lab: Lab, many: ManyPeers, confdir: str, stuck: Sequence[str],
               live: Callable[[int], Sequence[str]], reps: int) -> list[dict[str, Any]]:
    """`reps` rounds of `once` over all peers, each from peer i stuck on stuck[i] without a
    session; a peer counts as verified when wg shows it on one of live(i) with a handshake."""
    runs = []
    for rep in range(reps):
        many.reset_router_peers(stuck)
        dump = peer_dump(lab, many.router_if)
        stuck_count = sum(1 for i, k in enumerate(many.peer_public)
                          if dump[k][2] == stuck[i] and dump[k][4] == "0")
        run = cli_once(lab, confdir, timeout=120)
        dump = peer_dump(lab, many.router_if)
        on_live = [i for i, k in enumerate(many.peer_public)
                   if k in dump and dump[k][2] in live(i) and int(dump[k][4]) > 0]
        outcomes = outcome_lines(run.stderr)
        statuses: dict[str, int] = {}
        for _, status, _, _ in outcomes:
            statuses[status] = statuses.get(status, 0) + 1
        verified_in = [float(m.group(1)) for m in VERIFIED_RE.finditer(run.stderr)]
        other = [line for line in run.stderr.splitlines() if not OUTCOME_RE.match(line)]
        entry: dict[str, Any] = {
            "rc": run.rc, "wall_s": run.wall_s, "maxrss_kb": run.maxrss_kb,
            "stuck_before": stuck_count, "statuses": statuses,
            "engine_verified": statuses.get("switched", 0) + statuses.get("healthy", 0),
            "wg_verified_on_live": len(on_live),
            "engine_verified_in": stats(verified_in),
            "other_log_lines": other[:40],
            "outcome_sample": [o[3] for o in outcomes[:3]],
            "not_ok": [o[3] for o in outcomes if o[1] not in ("switched", "healthy")][:20],
        }
        if rep == 0:  # the tunnels carry traffic, through each peer's own interface
            entry["tunnel_pings"] = {
                many.peer_tunnel_ip(i): lab.router(
                    ["ping", "-6", "-n", "-q", "-c", "1", "-W", "2",
                     many.peer_tunnel_ip(i)], timeout=10, check=False).returncode == 0
                for i in (0, many.count // 2, many.count - 1)}
        runs.append(entry)
        vi = entry["engine_verified_in"]
        print(f"  [{rep + 1}/{reps}] wall {run.wall_s:.3f} s, rc {run.rc}, "
              f"engine ok {entry['engine_verified']}/{many.count}, on live endpoint with "
              f"handshake {len(on_live)}/{many.count}, maxrss {run.maxrss_kb / 1024:.1f} MiB"
              + (f", verified-in max {vi['max']:.2f} s" if vi["n"] else ""), flush=True)
    return runs


def closed(result: dict[str, Any], many: ManyPeers) -> None:
    """Stop the peer side, noting what could not be removed."""
    result["cleanup_problems"] = many.close()
    result["many_leftovers"] = many.leftovers()


def finished(result: dict[str, Any], lab: Lab, many: ManyPeers) -> dict[str, Any]:
    """After the lab closed: what it and the peer side left behind."""
    result["leftovers"] = lab.leftovers() + many.leftovers()
    result["close_errors"] = lab.close_errors
    return result


def bench_many() -> dict[str, Any]:
    """(c): 100 peers whose names all resolve to the same 4 addresses (3 dead)."""
    result: dict[str, Any] = {"peers": MANY, "runs": [], "target_s": TARGET_MANY_S, "title": (
        f"(c) {MANY} peers x 4 candidates (3 dead), one router interface, "
        f"{MANY} peer-side wireguard-go")}
    with Lab() as lab:
        many = ManyPeers(lab, MANY, MANY_BASE_PORT)
        try:
            links = four_links(lab)
            t = time.perf_counter()
            many.start()
            result["setup_s"] = time.perf_counter() - t
            lab.set_dns({f"peer{i}.wg.test": dns_records(links) for i in range(MANY)})
            for n in DEAD:
                lab.block(links[n], "all")
            confdir = many.uci(Path(lab.tmpdir))
            print(f"  set up {MANY} peers in {result['setup_s']:.1f} s", flush=True)
            result["runs"] = _many_runs(
                lab, many, confdir, [links["v6a"].endpoint(many.port(i)) for i in range(MANY)],
                lambda i: [links["v4a"].endpoint(many.port(i))], REPS_MANY)
        finally:
            closed(result, many)
    return finished(result, lab, many)


def distinct_addresses(i: int) -> dict[str, str]:
    """Peer i's own four addresses (i < 100): two IPv6, two IPv4."""
    return {"v6a": f"2001:db8:1::{i + 2:x}", "v6b": f"2001:db8:2::{i + 2:x}",
            "v4a": f"192.0.2.{i + 2}", "v4b": f"198.51.100.{i + 2}"}


def bench_many_distinct() -> dict[str, Any]:
    """(d): 100 peers, each name resolving to 4 addresses of its own (400 probe
    addresses); both IPv6 addresses of every peer drop everything, both IPv4 ones work."""
    result: dict[str, Any] = {"peers": MANY, "addresses": 4 * MANY, "runs": [],
                              "target_s": TARGET_DISTINCT_S, "title": (
                                  f"(d) {MANY} peers x 4 addresses of their own "
                                  f"({4 * MANY} probe addresses), both IPv6 dead")}
    with Lab() as lab:
        many = ManyPeers(lab, MANY, MANY_BASE_PORT)
        try:
            links = {"v6a": lab.add_link("v6a", 6, "2001:db8:1::1", "2001:db8:1::2", 64),
                     "v4a": lab.add_link("v4a", 4, "192.0.2.1", "192.0.2.2", 24),
                     "v6b": lab.add_link("v6b", 6, "2001:db8:2::1", "2001:db8:2::2", 64),
                     "v4b": lab.add_link("v4b", 4, "198.51.100.1", "198.51.100.2", 25)}
            t = time.perf_counter()
            many.start()
            own = [distinct_addresses(i) for i in range(MANY)]
            for family in (4, 6):  # the addresses beyond each link's first one
                lab.peer(["ip", f"-{family}", "-batch", "-"], input="".join(
                    f"addr add {a[n]}/{links[n].prefixlen} dev {links[n].peer_if}"
                    f"{' nodad' if family == 6 else ''}\n"
                    for a in own[1:] for n in links if links[n].family == family))
            many.answer_from([[(f"{links[n].router_addr}/32", links[n].peer_if, a[n])
                               for n in ("v4a", "v4b")] for a in own])
            result["setup_s"] = time.perf_counter() - t
            lab.set_dns({f"peer{i}.wg.test": [own[i][n] for n in ("v4b", "v4a", "v6b", "v6a")]
                         for i in range(MANY)})
            for n in ("v6a", "v6b"):
                lab.block(links[n], "all")
            confdir = many.uci(Path(lab.tmpdir))
            print(f"  set up {MANY} peers x 4 addresses in {result['setup_s']:.1f} s",
                  flush=True)

            def ep(i: int, n: str) -> str:
                addr = own[i][n]
                return f"[{addr}]:{many.port(i)}" if ":" in addr else f"{addr}:{many.port(i)}"

            result["runs"] = _many_runs(lab, many, confdir, [ep(i, "v6a") for i in range(MANY)],
                                        lambda i: [ep(i, "v4a"), ep(i, "v4b")], REPS_DISTINCT)
        finally:
            closed(result, many)
    return finished(result, lab, many)


# ---- start-up cost ---------------------------------------------------------------------------


@dataclass
class ImportNode:
    name: str
    self_us: int
    cumulative_us: int
    children: list[ImportNode]


def parse_importtime(stderr: str) -> list[ImportNode]:
    """-X importtime output (post-order, indented by depth) -> list of root nodes."""
    pending: list[tuple[int, ImportNode]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        try:
            self_us, cum_us, name = line[len("import time:"):].split("|", 2)
            node = ImportNode(name.strip(), int(self_us), int(cum_us), [])
        except ValueError:
            continue
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        while pending and pending[-1][0] > depth:
            node.children.insert(0, pending.pop()[1])
        pending.append((depth, node))
    return [node for _, node in pending]


def _walk(nodes: Sequence[ImportNode]) -> Iterator[ImportNode]:
    for node in nodes:
        yield node
        yield from _walk(node.children)


def _ours(name: str) -> bool:
    return name == "wg_endpointd" or name.startswith("wg_endpointd.")


def package_cost(roots: Sequence[ImportNode]) -> tuple[int, list[ImportNode]]:
    """Cumulative µs of wg_endpointd imports (outermost ones only, so nothing counts twice),
    and the third-party/stdlib subtrees they pulled in, heaviest first."""
    total = 0
    foreign: list[ImportNode] = []

    def visit(node: ImportNode, inside: bool) -> None:
        nonlocal total
        if _ours(node.name):
            if not inside:
                total += node.cumulative_us
            for child in node.children:
                if not _ours(child.name):
                    foreign.append(child)
                visit(child, True)
        else:
            for child in node.children:
                visit(child, inside)

    for root in roots:
        visit(root, False)
    return total, sorted(foreign, key=lambda n: -n.cumulative_us)


def bench_startup() -> dict[str, Any]:
    env = cli_env()
    entry = shutil.which("wg-endpointd", path=os.path.dirname(PY))
    commands: dict[str, list[str]] = {
        "python -c pass": [PY, "-c", "pass"],
        "python -m wg_endpointd --version": [*CLI, "--version"],
        # What the console script generated by pip runs (it is not installed in the venv).
        "console-script equivalent --version": [
            PY, "-c", "import sys; from wg_endpointd.cli import main; sys.exit(main())",
            "--version"],
    }
    if entry:
        commands["wg-endpointd --version (console script)"] = [entry, "--version"]
    walls: dict[str, list[float]] = {k: [] for k in commands}
    rss: dict[str, list[int]] = {k: [] for k in commands}
    version_out = ""
    for _ in range(REPS_VERSION):  # interleaved against drift
        for label, argv in commands.items():
            run = run_measured(argv, env=env, timeout=30)
            if run.rc != 0:
                raise RuntimeError(f"{label} failed (rc {run.rc}): {tail(run.stderr, 5)}")
            walls[label].append(run.wall_s)
            if "version" in label:
                version_out = run.stdout.strip()
    for _ in range(3):  # peak RSS, through GNU time (not timed: time adds a fork)
        for label, argv in commands.items():
            rss[label].append(run_measured(argv, env=env, timeout=30, rss=True).maxrss_kb)
    # The import path of a real `once` (up to the round; icmplib itself is imported late,
    # by the first probe): a config without peers ends it right after the imports.
    empty = tempfile.mkdtemp(prefix="wgbench-empty-")
    (Path(empty) / "network").write_text("")
    (Path(empty) / "wg-endpointd").write_text("config globals 'globals'\n")
    imports = {
        "python -X importtime -c pass": [PY, "-X", "importtime", "-c", "pass"],
        "python -X importtime -m wg_endpointd --help": [PY, "-X", "importtime", *CLI[1:],
                                                         "--help"],
        "... once (config without peers)": [PY, "-X", "importtime", *CLI[1:], "once",
                                            "--config-dir", empty],
    }
    imp: dict[str, dict[str, list[int]]] = {k: {"total_us": [], "ours_us": []} for k in imports}
    heavy: dict[str, list[tuple[str, int]]] = {}
    own: dict[str, list[tuple[str, int]]] = {}
    loaded: dict[str, list[str]] = {}
    try:
        for _ in range(REPS_IMPORT):
            for label, argv in imports.items():
                run = run_measured(argv, env=env, timeout=30)
                if run.rc not in (0, 1):  # `once` without peers may exit 1 (a warning)
                    raise RuntimeError(f"{label} failed (rc {run.rc}): {tail(run.stderr, 5)}")
                roots = parse_importtime(run.stderr)
                names = {n.name for n in _walk(roots)}
                loaded[label] = [m for m in ("ssl", "asyncio", "icmplib", "json", "argparse",
                                             "logging", "subprocess", "ipaddress")
                                 if m in names]
                ours, foreign = package_cost(roots)
                imp[label]["total_us"].append(sum(r.cumulative_us for r in roots))
                imp[label]["ours_us"].append(ours)
                heavy[label] = [(n.name, n.cumulative_us) for n in foreign[:8]]
                own[label] = sorted(((n.name, n.self_us) for n in _walk(roots)
                                     if _ours(n.name)), key=lambda item: -item[1])
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    return {
        "version_output": version_out,
        "rss_method": "GNU time %M" if TIME else "wait4 ru_maxrss (upper bound)",
        "wall_s": {k: stats(v) for k, v in walls.items()},
        "maxrss_kb": {k: stats(v) for k, v in rss.items()},
        "imports": {k: {"total_us": stats(v["total_us"]), "wg_endpointd_us": stats(v["ours_us"]),
                        "heaviest_foreign_last_run_us": heavy.get(k, []),
                        "own_modules_self_last_run_us": own.get(k, []),
                        "notable_modules_loaded": loaded.get(k, [])}
                    for k, v in imp.items()},
    }


# ---- report -----------------------------------------------------------------------------------


def report_single(res: dict[str, Any]) -> list[str]:
    ours, base = res["ours"], res["baseline"]
    wall = stats([r["wall_s"] for r in ours])
    engine = stats([r["engine_verified_s"] for r in ours if r["engine_verified_s"] is not None])
    rss = stats([r["maxrss_kb"] / 1024 for r in ours])
    bwall = stats([r["wall_s"] for r in base])
    res["summary"] = {"ours_wall_s": wall, "ours_engine_verified_s": engine,
                      "ours_maxrss_mib": rss, "baseline_wall_s": bwall}
    lines = [
        "(a) one peer, 4 candidates, 3 dead: `wg-endpointd once`",
        f"    DNS order: {', '.join(res['dns_order'])}; dead (nft drop all): "
        f"{', '.join(res['dead'])}",
        f"    start: router on {res['start_endpoint']}, no session; live: {res['live_endpoint']}",
        f"    CLI wall, start to exit (= to verified endpoint): {fmt_s(wall)}",
        f"    engine's own 'verified in':                      {fmt_s(engine)}",
        f"    ended on the live endpoint with a handshake:     "
        f"{sum(r['verified'] for r in ours)}/{len(ours)}",
        f"    peak RSS of the CLI process:                     {fmt_s(rss, 'MiB', digits=1)}",
    ]
    if ours:
        lines.append("    log of the first run:")
        lines += [f"      {line}" for line in ours[0]["stderr"]]
    first = base[0] if base else {}
    lines += [
        "(b) sequential baseline: getent ahosts, `ping -c 3 -W 1` each in order, wg set, "
        "ping into tunnel, wait for handshake",
        f"    resolver order (getent ahosts): {', '.join(first.get('resolver_order', []))}",
        f"    wall: {fmt_s(bwall)}",
    ]
    dead_pings = [p["seconds"] for r in base for p in r.get("pings", []) if not p["answered"]]
    live_pings = [p["seconds"] for r in base for p in r.get("pings", []) if p["answered"]]
    lines.append(f"    per dead address: {fmt_s(stats(dead_pings), digits=2)}; "
                 f"live address: {fmt_s(stats(live_pings), digits=2)}")
    lines.append(f"    verified (handshake > 0): {sum(bool(r['verified']) for r in base)}/{len(base)}")
    if wall["n"] and bwall["n"]:
        ratio = bwall["median"] / wall["median"]
        res["summary"]["ratio_baseline_over_ours"] = ratio
        lines.append(f"    ratio baseline / ours (median wall): {ratio:.1f}x")
        if engine["n"]:
            ratio_e = bwall["median"] / engine["median"]
            res["summary"]["ratio_baseline_over_engine_verified"] = ratio_e
            lines.append(f"    ratio baseline / engine 'verified in' (median): {ratio_e:.0f}x")
    return lines


def report_many(res: dict[str, Any]) -> list[str]:
    runs = res["runs"]
    wall = stats([r["wall_s"] for r in runs])
    rss = stats([r["maxrss_kb"] / 1024 for r in runs])
    target = res["target_s"]
    res["summary"] = {"wall_s": wall, "maxrss_mib": rss,
                      "target_s": target,
                      "meets_target": bool(wall["n"]) and wall["median"] <= target,
                      "all_verified": bool(runs) and all(
                          r["engine_verified"] == MANY and r["wg_verified_on_live"] == MANY
                          for r in runs)}
    lines = [
        res["title"],
        f"    setup: {res.get('setup_s', float('nan')):.1f} s",
        f"    `once` wall: {fmt_s(wall)}  target <= {target:g} s: "
        f"{'met' if res['summary']['meets_target'] else 'NOT MET'}",
    ]
    for i, r in enumerate(runs):
        vi = r["engine_verified_in"]
        lines.append(
            f"    run {i + 1}: rc {r['rc']}, stuck before {r['stuck_before']}/{MANY}, "
            f"engine ok {r['engine_verified']}/{MANY} {r['statuses']}, "
            f"wg shows live endpoint + handshake {r['wg_verified_on_live']}/{MANY}"
            + (f", 'verified in' median {vi['median']:.2f} s max {vi['max']:.2f} s"
               if vi["n"] else ""))
    lines.append(f"    peak RSS of the CLI process: {fmt_s(rss, 'MiB', digits=1)}")
    if runs and runs[0].get("tunnel_pings"):
        lines.append("    ping through tunnel after run 1: " + ", ".join(
            f"{a} {'ok' if ok else 'FAILED'}" for a, ok in runs[0]["tunnel_pings"].items()))
    odd = [r for r in runs if r["not_ok"] or r["other_log_lines"]]
    if odd:
        lines.append("    log lines other than ok outcomes (first run that had any):")
        lines += [f"      {line}" for line in (odd[0]["other_log_lines"] + odd[0]["not_ok"])[:30]]
    if runs and runs[0]["outcome_sample"]:
        lines.append(f"    sample outcome: {runs[0]['outcome_sample'][0]}")
    return lines


def report_startup(res: dict[str, Any]) -> list[str]:
    walls = res["wall_s"]
    base = walls["python -c pass"]["median"]
    lines = [f"(c') start-up ({REPS_VERSION} runs each, interleaved; `{res['version_output']}`)"]
    for label, s in walls.items():
        extra = "" if label == "python -c pass" else (
            f"  = +{(s['median'] - base) * 1000:.1f} ms, {s['median'] / base:.2f}x python -c pass")
        lines.append(f"    {label:42s} {fmt_s(s, 'ms', 1000, 1)}{extra}")
    res["ratios_vs_python_pass"] = {k: v["median"] / base for k, v in walls.items()}
    rss = res["maxrss_kb"]
    lines.append("    peak RSS (median of 3): " + ", ".join(
        f"{k} {v['median'] / 1024:.1f} MiB" for k, v in rss.items()))
    base_imp = res["imports"]["python -X importtime -c pass"]["total_us"]["median"]
    lines.append(f"    -X importtime ({REPS_IMPORT} runs each; medians):")
    for label, v in res["imports"].items():
        total, ours = v["total_us"]["median"], v["wg_endpointd_us"]["median"]
        line = f"      {label:44s} all imports {total / 1000:6.1f} ms"
        if label != "python -X importtime -c pass":
            line += (f" (+{(total - base_imp) / 1000:.1f} ms over -c pass),"
                     f" wg_endpointd cumulative {ours / 1000:.1f} ms")
        lines.append(line)
        if v["heaviest_foreign_last_run_us"]:
            lines.append("        heaviest pulled in: " + ", ".join(
                f"{n} {us / 1000:.1f}" for n, us in v["heaviest_foreign_last_run_us"][:6])
                + " ms")
        if v["own_modules_self_last_run_us"]:
            lines.append("        own modules, self time: " + ", ".join(
                f"{n} {us / 1000:.1f}" for n, us in v["own_modules_self_last_run_us"][:6])
                + " ms")
        if label != "python -X importtime -c pass":
            lines.append("        loaded: " + (", ".join(v["notable_modules_loaded"]) or "-"))
    return lines


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def section(title: str, fn: Callable[[], dict[str, Any]],
            report: Callable[[dict[str, Any]], list[str]]) -> tuple[dict[str, Any], list[str]]:
    print(f"== {title}", flush=True)
    t = time.perf_counter()
    try:
        res = fn()
        lines = report(res)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # report and go on with the other measurements
        res = {"error": f"{type(exc).__name__}: {exc}"}
        lines = [f"{title}: FAILED: {res['error']}"]
    res["took_s"] = time.perf_counter() - t
    return res, lines


PARTS: dict[str, tuple[str, Callable[[], dict[str, Any]], Callable[[dict[str, Any]], list[str]]]] = {
    "single": ("(a)+(b) one peer, 4 candidates", bench_single, report_single),
    "many": (f"(c) {MANY} peers", bench_many, report_many),
    "distinct": (f"(d) {MANY} peers x 4 own addresses", bench_many_distinct, report_many),
    "startup": ("(c') start-up", bench_startup, report_startup),
}


def main(argv: list[str] | None = None) -> int:
    parts = set(sys.argv[1:] if argv is None else argv) or set(PARTS)
    unknown = parts - set(PARTS)
    if unknown:
        print(f"bench: unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}",
              file=sys.stderr)
        return 2
    problems = missing_requirements()
    if problems:
        print("bench: lab unavailable: " + "; ".join(problems), file=sys.stderr)
        return 2
    started = time.time()
    meta = begin_run(kernel=platform.release())
    results: dict[str, Any] = {"meta": meta}
    out: list[str] = []
    meta["interrupted"] = True  # until the end is reached
    try:
        for key in PARTS:
            if key in parts:
                title, fn, report = PARTS[key]
                results[key], lines = section(title, fn, report)
                out += lines
        meta["interrupted"] = False
    except KeyboardInterrupt:
        print("bench: interrupted; everything created was removed", file=sys.stderr)
        return 130
    finally:
        meta["loadavg_end"] = os.getloadavg()
        meta["took_s"] = time.time() - started
        write_json(OUT, results)
    print()
    print(f"wg-endpointd round benchmark  {meta['started']}  host {meta['host']}, "
          f"{meta['cpus']} CPUs, Python {meta['python']}, load "
          f"{meta['loadavg_start'][0]:.2f} -> {meta['loadavg_end'][0]:.2f}, "
          f"took {meta['took_s']:.0f} s")
    print("\n".join(out))
    left = [f"{k}: {x}" for k in ("single", "many", "distinct")
            for x in results.get(k, {}).get("leftovers", [])]
    print(f"cleanup: {'nothing left behind' if not left else 'LEFTOVERS: ' + '; '.join(left)}")
    print(f"wrote {OUT.relative_to(ROOT)}")
    failed = [k for k in ("single", "many", "distinct", "startup") if "error" in results.get(k, {})]
    return 1 if failed or left else 0


if __name__ == "__main__":
    sys.exit(main())
