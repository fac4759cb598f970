import json
import os
import subprocess

from wg_endpointd import cli
from wg_endpointd.config import PeerConfig, covers_endpoint
from wg_endpointd.routes import PROTO, HostRoutes, parse_route_get
from wg_endpointd.rundir import RunDir

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


def test_host_route_added_through_uplink_and_stale_one_removed():
    ip = IpFake({"ip route get 192.0.2.2": "192.0.2.2 dev wg0 src 198.51.100.130",
                 "ip route get 192.0.2.9": "192.0.2.9 dev wg0 src 198.51.100.130",
                 "ip -4 route show default": "default dev wg0 scope link\n"
                                             "default via 198.51.100.1 dev wan proto static\n"})
    routes = HostRoutes(run=ip, use_ubus=False)
    routes.ensure(K1, "wg0", "192.0.2.2")
    assert ["ip", "-4", "route", "replace", "192.0.2.2", "via", "198.51.100.1", "dev", "wan",
            "proto", PROTO] in ip.calls
    routes.ensure(K1, "wg0", "192.0.2.9")
    routes.retain(K1, "192.0.2.9")
    assert ["ip", "route", "del", "192.0.2.2", "proto", PROTO] in ip.calls
    assert ["ip", "route", "del", "192.0.2.9", "proto", PROTO] not in ip.calls
    routes.clear()
    assert ip.calls[-1] == ["ip", "route", "del", "192.0.2.9", "proto", PROTO]


def test_no_host_route_when_already_outside_the_tunnel():
    ip = IpFake({"ip route get": "192.0.2.2 via 198.51.100.1 dev wan"})
    routes = HostRoutes(run=ip, use_ubus=False)
    routes.ensure(K1, "wg0", "192.0.2.2")
    assert not any("replace" in c for c in ip.calls) and routes.owned[K1] == set()


def test_ubus_host_route_excludes_the_tunnel():
    ip = IpFake({})
    HostRoutes(run=ip, use_ubus=True).ensure(K1, "wg0", "2001:db8::2")
    [call] = ip.calls
    assert call[:4] == ["ubus", "call", "network", "add_host_route"]
    assert json.loads(call[4]) == {"target": "2001:db8::2", "v6": True, "interface": "wg0",
                                   "exclude": True}


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
