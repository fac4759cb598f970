"""Issue 20: what systemd hears from the daemon's loop, on a real notify socket."""

import signal
import socket

import pytest

from tests.runtime.test_daemon import make
from wg_endpointd.runtime import service
from wg_endpointd.runtime.announce import Announcer
from wg_endpointd.system.sdnotify import Notifier


@pytest.fixture
def systemd(tmp_path):
    """The manager's end of $NOTIFY_SOCKET: every message as its list of fields."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.setblocking(False)

    def heard():
        out = []
        while True:
            try:
                out.append(sock.recv(4096).decode().splitlines())
            except BlockingIOError:
                return out

    heard.path = str(tmp_path / "notify")
    yield heard
    sock.close()


def first(messages, key):
    return [m for m in messages if m[0] == key]


def test_ready_after_the_first_round_then_reload_and_stop(tmp_path, systemd):
    d, wg, clock, _ = make(tmp_path)
    sd = Announcer(Notifier(systemd.path, watchdog=20_000_000), clock=clock)
    waits, log = [], []

    def wait(t):
        waits.append(t)
        log.extend(systemd())
        if len(waits) == 3:
            d.on_signal(signal.SIGHUP)
        if len(waits) == 6:
            d.on_signal(signal.SIGTERM)
        clock.sleep(t)

    d.wait = wait
    assert service.serve(d, sd) == 0
    log.extend(systemd())
    keys = [m[0] for m in log if m[0] != "WATCHDOG=1"]
    assert keys == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]
    ready = first(log, "READY=1")[0]
    assert ready == ["READY=1", "STATUS=1 managed peer(s): 1 healthy"]  # the round's outcome
    reloading = first(log, "RELOADING=1")[0]
    assert reloading[1].startswith("MONOTONIC_USEC=") and reloading[1][15:].isdigit()
    assert max(waits) <= 10.0  # the watchdog's half period bounds every sleep
    assert first(log, "WATCHDOG=1")


def test_ready_waits_for_a_slow_start_round_but_not_forever(tmp_path, systemd):
    d, wg, clock, _ = make(tmp_path)
    held = []
    d.repairs.spawn = held.append  # the start round runs beside the loop and hangs
    sd = Announcer(Notifier(systemd.path), clock=clock, ready_wait=30.0)
    sd.after_step(d)
    d.step()
    assert d.last_round is not None and held  # started, not done
    assert sd.after_step(d) <= 30.0  # the loop wakes for the deadline
    clock.sleep(10)
    sd.after_step(d)
    assert systemd() == []
    clock.sleep(20)
    sd.after_step(d)
    (msg,) = systemd()
    assert msg[0] == "READY=1" and "first round still runs after 30 s" in msg[1]


def test_ready_when_the_outcomes_are_collected(tmp_path, systemd):
    d, wg, clock, _ = make(tmp_path)
    held = []
    d.repairs.spawn = held.append
    sd = Announcer(Notifier(systemd.path), clock=clock)
    d.step()
    sd.after_step(d)
    held.pop()()  # the round ends beside the loop ...
    sd.after_step(d)
    assert systemd() == []  # ... but the loop has not taken its outcomes yet
    d.step()
    sd.after_step(d)
    assert systemd() == [["READY=1", "STATUS=1 managed peer(s): 1 healthy"]]


def test_reload_before_ready_says_nothing_and_status_follows_changes(tmp_path, systemd):
    d, wg, clock, _ = make(tmp_path)
    held = []
    d.repairs.spawn = held.append
    sd = Announcer(Notifier(systemd.path), clock=clock)
    d.on_reload = lambda done: sd.reload_phase(d, done)
    d.step()
    d.do_reload()
    assert systemd() == []  # the READY=1 to come covers it
    held.pop()()
    d.step()
    sd.after_step(d)
    assert systemd() == [["READY=1", "STATUS=1 managed peer(s): 1 healthy"]]
    d.states.clear()
    sd.after_step(d)
    sd.after_step(d)
    assert systemd() == [["STATUS=1 managed peer(s): 1 unknown"]]  # once per change


def test_watchdog_only_for_its_pid_and_silent_without_systemd(tmp_path, systemd):
    d, wg, clock, _ = make(tmp_path)
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "2000000",
                                      "WATCHDOG_PID": "1"})
    sd = Announcer(notifier, clock=clock)
    d.step()
    assert sd.after_step(d) == float("inf")  # ready, and no watchdog asked of this pid
    assert [m[0] for m in systemd()] == ["READY=1"]
    quiet = Announcer(Notifier(), clock=clock)
    assert quiet.after_step(d) == float("inf")


def test_watchdog_pings_every_half_period(tmp_path, systemd):
    d, wg, clock, _ = make(tmp_path)
    sd = Announcer(Notifier(systemd.path, watchdog=2_000_000), clock=clock)
    pings = []
    for _ in range(40):
        delay = min(d.step(), sd.after_step(d))
        pings += [clock.now for m in systemd() if m == ["WATCHDOG=1"]]
        clock.sleep(max(delay, 0.01))
    gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
    assert len(pings) >= 5 and max(gaps) <= 1.0 + 1e-9
