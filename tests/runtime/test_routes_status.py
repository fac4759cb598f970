import json
import os
import subprocess

from wg_endpointd import cli
from wg_endpointd.config import PeerConfig
from wg_endpointd.core.allowed import covers_endpoint
from wg_endpointd.system.routes import PROTO, HostRoutes, parse_route_get
from wg_endpointd.system.rundir import RunDir

K1 = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="


class IpFake:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, **kw):
        self.calls.append(argv)
        assert "shell" not in kw and kw["timeout"] > 0
        for prefix, out in self.answers.items():
            if " ".join(argv).startswith(prefix):
                return subprocess.CompletedProcess(argv, 0, out, "")
        return subprocess.CompletedProcess(argv, 0, "", "")


def test_parse_route_get():
    assert parse_route_get("192.0.2.2 via 198.51.100.1 dev wan src 198.51.100.2 uid 0") == (
        "198.51.100.1", "wan")
    assert parse_route_get("192.0.2.2 dev wg0 src 10.0.0.1") == (None, "wg0")


def test_covers_endpoint_only_for_routed_allowed_ips():
    full = PeerConfig("wg0", K1, "s", allowed_ips=("0.0.0.0/0", "::/0"), route_allowed_ips=True)
    assert covers_endpoint(full, "192.0.2.2") and covers_endpoint(full, "2001:db8::1")
    unrouted = PeerConfig("wg0", K1, "s", allowed_ips=("0.0.0.0/0",), route_allowed_ips=False)
    assert not covers_endpoint(unrouted, "192.0.2.2")
    split = PeerConfig("wg0", K1, "s", allowed_ips=("198.51.100.128/25",), route_allowed_ips=True)
    assert not covers_endpoint(split, "192.0.2.2")


class IpRoutes:
    """A stand-in for `ip` over a tiny main table, answering as iproute2 does: `route get`
    picks the longest prefix, `route add` of an existing destination fails with "File
    exists", `route del` of a missing one with "No such process"."""

    def __init__(self, tunnel="wg0", netifd=None):
        self.netifd = netifd  # `ubus call network.interface dump` output; None: no ubus
        self.table = {"0.0.0.0/1": ("dev", tunnel, None), "128.0.0.0/1": ("dev", tunnel, None)}
        self.defaults = f"default dev {tunnel} scope link\ndefault via 198.51.100.1 dev wan proto static\n"
        self.calls = []

    def __call__(self, argv, **kw):
        assert "shell" not in kw and kw["timeout"] > 0
        self.calls.append(argv)
        if argv[0] == "ubus":
            if self.netifd is None:
                raise FileNotFoundError(2, "No such file or directory", "ubus")
            return subprocess.CompletedProcess(argv, 0, self.netifd, "")
        args = [a for a in argv[1:] if a not in ("-4", "-6")]

        def ok(out=""):
            return subprocess.CompletedProcess(argv, 0, out, "")

        def err(msg):
            return subprocess.CompletedProcess(argv, 2, "", msg)

        if args[:2] == ["route", "get"]:
            addr = args[2]
            if addr in self.table:
                via, dev = self.table[addr][0], self.table[addr][1]
                return ok(f"{addr} via {via} dev {dev} proto {self.table[addr][2]}")
            return ok(f"{addr} dev wg0 src 198.51.100.130")
        if args[:3] == ["route", "show", "default"]:
            return ok(self.defaults)
        if args[:3] == ["route", "show", "proto"]:
            return ok("".join(f"{a} via {v[0]} dev {v[1]} proto 186\n"
                              for a, v in self.table.items() if v[2] == PROTO))
        if args[:2] == ["route", "add"]:
            if args[2] in self.table:
                return err("RTNETLINK answers: File exists")
            via = args[args.index("via") + 1] if "via" in args else None
            self.table[args[2]] = (via, args[args.index("dev") + 1], args[args.index("proto") + 1])
            return ok()
        if args[:2] == ["route", "del"]:
            entry = self.table.get(args[2])
            if entry is None or entry[2] != args[4]:
                return err("RTNETLINK answers: No such process")
            del self.table[args[2]]
            return ok()
        raise AssertionError(f"unexpected ip call {argv}")


W0, W1 = ("wg0", K1), ("wg1", K1)


def test_host_route_through_uplink_then_removed_after_switch_back_and_stop():
    ip = IpRoutes()
    routes = HostRoutes(run=ip)
    assert routes.ensure(W0, "wg0", "192.0.2.9")  # the backup
    assert ip.table["192.0.2.9"] == ("198.51.100.1", "wan", PROTO)
    routes.ensure(W0, "wg0", "192.0.2.2")  # switch back
    routes.retain(W0, "192.0.2.2")
    assert "192.0.2.9" not in ip.table and "192.0.2.2" in ip.table
    routes.clear()  # stop
    assert not [a for a, v in ip.table.items() if v[2] == PROTO]


def test_netifd_routes_are_never_touched():
    """A route that netifd made (proto static) already keeps the endpoint outside."""
    ip = IpRoutes()
    ip.table["192.0.2.2"] = ("198.51.100.1", "wan", "static")
    routes = HostRoutes(run=ip)
    assert routes.ensure(W0, "wg0", "192.0.2.2")
    routes.clear()
    assert ip.table["192.0.2.2"] == ("198.51.100.1", "wan", "static")
    assert not any(c[1:3] in (["route", "add"], ["route", "del"]) for c in ip.calls)


def test_route_gone_with_its_uplink_is_added_again():
    ip = IpRoutes()
    routes = HostRoutes(run=ip)
    routes.ensure(W0, "wg0", "192.0.2.2")
    del ip.table["192.0.2.2"]  # the uplink went down: the kernel dropped the route
    assert routes.ensure(W0, "wg0", "192.0.2.2")
    assert "192.0.2.2" in ip.table


def test_shared_endpoint_route_stays_while_another_tunnel_uses_it():
    ip = IpRoutes()
    routes = HostRoutes(run=ip)
    routes.ensure(W0, "wg0", "192.0.2.2")
    routes.ensure(W1, "wg0", "192.0.2.2")
    routes.retain(W0, None)
    assert "192.0.2.2" in ip.table
    routes.keep_only({W0})
    assert "192.0.2.2" not in ip.table


def test_routes_of_an_earlier_run_are_adopted_and_pruned():
    ip = IpRoutes()
    ip.table["192.0.2.2"] = ("198.51.100.1", "wan", PROTO)  # still needed
    ip.table["192.0.2.7"] = ("198.51.100.1", "wan", PROTO)  # left over
    routes = HostRoutes(run=ip)
    routes.adopt()
    routes.ensure(W0, "wg0", "192.0.2.2")
    routes.prune_adopted()
    assert "192.0.2.2" in ip.table and "192.0.2.7" not in ip.table


def test_route_failures_are_logged(caplog):
    ip = IpRoutes()
    ip.defaults = "default dev wg0 scope link\n"  # no uplink at all
    routes = HostRoutes(run=ip)
    assert not routes.ensure(W0, "wg0", "192.0.2.2")
    assert any("no uplink outside the tunnel" in r.message for r in caplog.records)


def test_rundir_atomic_and_pid_ownership(fs):
    rd = RunDir("/var/run/wg-endpointd")
    rd.write_state({"peers": []})
    assert json.loads(open("/var/run/wg-endpointd/state.json").read()) == {"peers": []}
    assert [n for n in os.listdir("/var/run/wg-endpointd") if n.startswith(".")] == []
    rd.write_pid(1234)
    rd.remove_pid(999)  # not ours: kept
    assert rd.read_pid() == 1234
    rd.remove_pid(1234)
    assert rd.read_pid() is None


def test_status_reports_not_running_and_corrupt_state(fs, capsys, monkeypatch):
    monkeypatch.setenv("WG_ENDPOINTD_RUN_DIR", "/run/wge")
    assert cli.main(["status"]) == 3
    assert "not running" in capsys.readouterr().out
    fs.create_file("/run/wge/state.json", contents="{oops")
    assert cli.main(["status"]) == 3
    err = capsys.readouterr().err
    assert "unreadable" in err and "Traceback" not in err


def test_status_table_and_json(tmp_path, capsys, monkeypatch):
    """Real files: `status` asks the kernel whether the daemon's lock is held (flock)."""
    run = tmp_path / "run"
    monkeypatch.setenv("WG_ENDPOINTD_RUN_DIR", str(run))
    lock = RunDir(str(run)).acquire("run")  # what a running daemon holds
    peer = {"interface": "wg0", "public_key": K1, "description": "office", "phase": "fallback",
            "endpoint": "192.0.2.2:51820", "last_verified": 1.0, "candidates": [],
            "last_switch": {"from": "[2001:db8::2]:51820", "to": "192.0.2.2:51820",
                            "reason": "verified in 0.02 s", "at": 1.0}}
    (run / "state.json").write_text(json.dumps({"version": 1, "peers": [peer]}))
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "running, pid" in out and "office" in out and "fallback" in out
    assert "[2001:db8::2]:51820 -> 192.0.2.2:51820" in out
    assert cli.main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["running"] and data["pid"] == os.getpid()
    assert data["peers"][0]["endpoint"] == "192.0.2.2:51820"
    os.close(lock)
    assert cli.main(["status"]) == 3  # lock released: not running, whatever the pid file says


def test_status_not_running_for_a_reused_pid(tmp_path, capsys, monkeypatch):
    """A stale pid file naming a live, unrelated process (here: this test) is not a daemon."""
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("WG_ENDPOINTD_RUN_DIR", str(run))
    (run / "wg-endpointd.pid").write_text(f"{os.getpid()}\n")
    assert cli.main(["status"]) == 3
    assert "not running" in capsys.readouterr().out
