"""Issue 7: faults logged once with backoff, failback without ICMP, reloads that fix routes,
one daemon per run directory, signals from the first instant, and (issue 8) log priorities."""

import dataclasses
import logging
import os
import signal
import subprocess
import sys

import pytest

from tests.fakes import FakeProber
from tests.runtime.test_daemon import K1, V4, V6, fail_over, make, phase, run_for
from wg_endpointd.config import Settings
from wg_endpointd.core import state as st
from wg_endpointd.core.errors import ProbeSetupError, WgError
from wg_endpointd.runtime.service import lock_run_dir
from wg_endpointd.system import signals
from wg_endpointd.system.logsetup import setup_logging
from wg_endpointd.system.rundir import Busy, RunDir


def test_wg_set_failing_is_logged_once_and_backed_off(tmp_path, caplog):
    d, wg, clock, _ = make(tmp_path)
    run_for(d, clock, 20)
    wg.working.discard(V6)
    calls = []

    def broken(iface, resets):
        calls.append(clock.now)
        raise WgError("`wg set wg0 peer` failed: Operation not permitted")

    wg.reset = broken
    caplog.set_level(logging.DEBUG, logger="wg_endpointd")
    run_for(d, clock, 600)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "not permitted" in r.message]
    assert 1 <= len(errors) <= 2  # the verifier's line and the peer's fault line, once
    assert len(calls) <= 8  # 10, 20, 40, 80, 160, 300 s apart, not every check
    del wg.reset  # wg works again
    wg.working.add(V4)
    caplog.clear()
    run_for(d, clock, 400)
    assert any("working again" in r.message for r in caplog.records)


class NoIcmp(FakeProber):
    def probe(self, groups, timeout, marks=()):
        raise ProbeSetupError("no permission for raw ICMP sockets")


def test_failback_without_icmp_after_the_hold(tmp_path, caplog):
    d, wg, clock, _ = make(tmp_path, Settings(check_interval=10, dead_after=30, failback_hold=60))
    d.engine.prober = NoIcmp({})
    fail_over(d, wg, clock)
    assert phase(d) == st.FALLBACK
    wg.working.add(V6)
    run_for(d, clock, 120)
    assert wg.ifaces["wg0"][K1].endpoint == V6 and phase(d) == st.HEALTHY
    warnings = [r for r in caplog.records if "raw ICMP" in r.message]
    assert len(warnings) == 1  # logged when it starts, not every interval


def test_icmp_silence_of_the_better_candidate_still_counts_when_icmp_works(tmp_path):
    """The current endpoint answers ping, the preferred one does not: keep waiting."""
    d, wg, clock, prober = make(tmp_path, Settings(check_interval=10, dead_after=30,
                                                   failback_hold=60))
    fail_over(d, wg, clock)
    prober.rtts.pop(V6.address)
    resets = len(wg.resets)
    run_for(d, clock, 200)
    assert len(wg.resets) == resets and phase(d) == st.FALLBACK


class FakeRoutes:
    def __init__(self):
        self.owned = {}
        self.cleared = 0

    def ensure(self, key, iface, address):
        self.owned.setdefault(key, set()).add(address)
        return True

    def adopt(self):
        pass

    def prune_adopted(self):
        pass

    def retain(self, key, keep):
        self.owned[key] = {a for a in self.owned.get(key, set()) if a == keep}

    def keep_only(self, peers):
        self.owned = {k: v for k, v in self.owned.items() if k in peers}

    def clear(self):
        self.cleared += 1
        self.owned = {}


def test_reload_applies_host_routes_and_drops_unmanaged_peers(tmp_path):
    d, wg, clock, _ = make(tmp_path)
    routes = FakeRoutes()
    routes.ensure(("wg0", K1), "wg0", V4.address)
    routes.ensure(("wg9", K1), "wg9", "192.0.2.99")  # a peer no longer managed
    d.engine.routes = routes
    d.make_routes = FakeRoutes
    cfg = d.cfg
    d.load = lambda: cfg
    d.do_reload()
    assert set(routes.owned) == {("wg0", K1)}
    d.load = lambda: dataclasses.replace(cfg, settings=Settings(host_routes=False))
    d.do_reload()
    assert routes.cleared == 1 and d.engine.routes is None
    d.load = lambda: cfg
    d.do_reload()
    assert isinstance(d.engine.routes, FakeRoutes) and d.engine.routes is not routes


def test_state_write_failure_is_logged_once_and_daemon_goes_on(tmp_path, caplog):
    d, wg, clock, _ = make(tmp_path)
    run_for(d, clock, 5)
    os.chmod(tmp_path / "run", 0o500)
    try:
        if os.access(tmp_path / "run", os.W_OK):  # root ignores modes: fill the path instead
            os.chmod(tmp_path / "run", 0o755)
            d.run_dir.path = str(tmp_path / "run" / "state.json")
        wg.working.discard(V6)
        d.on_signal(signal.SIGUSR1)
        run_for(d, clock, 100)
    finally:
        os.chmod(tmp_path / "run", 0o755)
    assert wg.ifaces["wg0"][K1].endpoint == V4  # kept working
    assert len([r for r in caplog.records if "cannot write the state file" in r.message]) == 1


def test_one_daemon_per_run_directory(tmp_path):
    rd = RunDir(str(tmp_path / "run"))
    fd = rd.acquire("run")
    try:
        with pytest.raises(Busy) as busy:
            RunDir(str(tmp_path / "run")).acquire("run")
        assert busy.value.pid == os.getpid() and busy.value.mode == "run"
        reason = lock_run_dir(RunDir(str(tmp_path / "run")), "once")
        assert isinstance(reason, str) and f"pid {os.getpid()}" in reason
        assert rd.holder() == (os.getpid(), "run")
    finally:
        os.close(fd)
    assert rd.holder() is None
    assert isinstance(lock_run_dir(rd, "once"), int)


@pytest.mark.parametrize("kind", ["file", "under_a_file"])
def test_bad_run_directory_is_one_line(tmp_path, kind):
    (tmp_path / "f").write_text("x")
    path = tmp_path / "f" if kind == "file" else tmp_path / "f" / "run"
    reason = lock_run_dir(RunDir(str(path)), "run")
    assert isinstance(reason, str) and str(path) in reason and "\n" not in reason
    assert "not a directory" in reason.lower()


def test_run_with_a_file_as_run_directory_exits_with_one_line(tmp_path):
    (tmp_path / "network").write_text("config interface 'wg0'\n\toption proto 'wireguard'\n")
    bad = tmp_path / "notadir"
    bad.write_text("")
    env = dict(os.environ, WG_ENDPOINTD_RUN_DIR=str(bad), PYTHONPATH="src")
    res = subprocess.run([sys.executable, "-m", "wg_endpointd", "run", "--config-dir",
                          str(tmp_path)], capture_output=True, text=True, timeout=30, env=env)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "not a directory" in res.stderr
    assert "Traceback" not in res.stderr


def test_signals_before_the_daemon_exists_are_replayed(monkeypatch):
    seen = []
    saved = {s: signal.getsignal(s) for s in signals.HANDLED}
    try:
        signals.install_early()
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)
        signals.hand_over(lambda signum, frame: seen.append(signum))
        os.kill(os.getpid(), signal.SIGUSR1)
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    assert seen == [signal.SIGHUP, signal.SIGTERM, signal.SIGUSR1]


def test_daemon_logs_info_to_stdout_and_problems_to_stderr(capsys):
    """procd logs a service's stdout at info and its stderr at err (see logsetup.setup_logging)."""
    setup_logging("info", daemon=True)
    log = logging.getLogger("wg_endpointd.test")
    log.info("round done")
    log.warning("no route")
    log.error("wg failed")
    out, err = capsys.readouterr()
    assert out == "INFO: round done\n"
    assert err == "WARNING: no route\nERROR: wg failed\n"
    setup_logging("info")  # `once` and terminals: everything on stderr
    log.info("plain")
    out, err = capsys.readouterr()
    assert out == "" and err == "INFO: plain\n"


def test_resolution_wait_stops_when_asked():
    """getaddrinfo cannot be cancelled; the wait for it can (SIGTERM during DNS)."""
    import threading
    import time

    from wg_endpointd.system import net

    gate = threading.Event()
    orig = net.resolve_one
    net.resolve_one = lambda host: gate.wait(10) and []  # a resolver that hangs
    try:
        start = time.monotonic()
        stop_at = start + 0.2
        out = net.resolve_many(["slow.example.test"], stop=lambda: time.monotonic() > stop_at)
        took = time.monotonic() - start
    finally:
        net.resolve_one = orig
        gate.set()
    assert took < 2 and isinstance(out["slow.example.test"], net.ResolveError)


def test_interface_rebuilt_by_netifd_is_quiet_and_the_choice_reapplied(tmp_path, caplog):
    """ifdown wg0 (netifd tears it down), then ifup with the peer as UCI has it: no
    error lines for the gap, and the verified endpoint goes back first, at once."""
    from wg_endpointd.core.errors import WgMissing
    from wg_endpointd.core.model import PeerDump

    d, wg, clock, _ = make(tmp_path)
    fail_over(d, wg, clock)  # now on V4, verified
    assert wg.ifaces["wg0"][K1].endpoint == V4
    saved = wg.ifaces.pop("wg0")
    wg.show = lambda iface: (_ for _ in ()).throw(WgMissing("wg0 is not there (No such device)"))
    wg.show_all = lambda: {}
    caplog.set_level(logging.INFO, logger="wg_endpointd")
    for _ in range(3):
        d.on_signal(signal.SIGUSR1)  # ifdown, ifup-failed ...
        d.step()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([r for r in caplog.records if "waiting for it to come back" in r.message]) == 1
    del wg.show, wg.show_all  # netifd brings wg0 back, the peer on UCI's first address
    wg.ifaces["wg0"] = {K1: PeerDump(K1, V6, saved[K1].allowed_ips, 0, 0, 0, None)}
    resets = len(wg.resets)
    d.on_signal(signal.SIGUSR1)
    d.step()
    assert wg.resets[resets][1][0][1] == V4  # the verified endpoint first, no wait on V6
    assert wg.ifaces["wg0"][K1].endpoint == V4
    assert any("re-applying" in r.message for r in caplog.records)


def test_under_procd_each_line_gets_its_priority(tmp_path):
    """procd (service/instance.c: instance_stdio) reads a service's stdout and stderr
    through pipes and hands each line to logd at LOG_INFO and LOG_ERR respectively. This
    stand-in does the same with the real daemon."""
    import time

    (tmp_path / "network").write_text("config interface 'wg0'\n\toption proto 'wireguard'\n")
    (tmp_path / "wg-endpointd").write_text("config globals 'globals'\n\toption chek_interval '5'\n")
    env = dict(os.environ, WG_ENDPOINTD_RUN_DIR=str(tmp_path / "run"), PYTHONPATH="src")
    proc = subprocess.Popen([sys.executable, "-m", "wg_endpointd", "run", "--config-dir",
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        for _ in range(100):  # bounded: 10 s
            if (tmp_path / "run" / "state.json").exists():
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    logd = [("daemon.info", ln) for ln in out.splitlines()] + \
           [("daemon.err", ln) for ln in err.splitlines()]
    assert ("daemon.info", "INFO: started: 0 managed peer(s) on wg0") in logd
    assert any(p == "daemon.err" and "chek_interval" in ln and ln.startswith("WARNING")
               for p, ln in logd)
    assert not any(p == "daemon.err" and ln.startswith("INFO") for p, ln in logd)
    assert proc.returncode == 0


def test_sighup_in_the_first_tenth_of_a_second_does_not_kill_the_daemon(tmp_path):
    """procd may send a reload the instant after it starts the daemon. Started as the init
    script has procd start it (a shell that ignores HUP and USR1, then exec), no early
    signal kills it."""
    import random
    import time

    (tmp_path / "network").write_text("config interface 'wg0'\n\toption proto 'wireguard'\n")
    rng = random.Random(3)
    for i in range(5):
        run = tmp_path / f"run{i}"
        env = dict(os.environ, WG_ENDPOINTD_RUN_DIR=str(run), PYTHONPATH="src")
        proc = subprocess.Popen(["sh", "-c", 'trap "" HUP USR1; exec "$0" "$@"',
                                 sys.executable, "-m", "wg_endpointd", "run", "--config-dir",
                                 str(tmp_path)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=env)
        try:
            time.sleep(0.03 + rng.uniform(0, 0.07))  # after the interpreter itself is up
            proc.send_signal(signal.SIGHUP)
            for _ in range(100):  # bounded: 10 s
                if (run / "state.json").exists():
                    break
                time.sleep(0.1)
            assert proc.poll() is None, f"try {i}: died ({proc.returncode})"
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=10)
            assert proc.returncode == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
