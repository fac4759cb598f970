"""The rtnetlink listener wired to the daemon (runtime/netwatch.py): when it runs, and what
a change does (one log line, a round at once, as a hotplug SIGUSR1)."""

import argparse
import dataclasses
import errno
import logging
import sys

import pytest

from tests.runtime.test_daemon import make, run_for
from wg_endpointd.runtime import netwatch


class FakeListener:
    def __init__(self, on_change, ignore, fail: bool = False):
        self.on_change, self.ignore, self.fail = on_change, ignore, fail
        self.started = self.stopped = False

    def start(self):
        self.started = True
        if self.fail:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")

    def stop(self):
        self.stopped = True


class Poke:
    def __init__(self):
        self.count = 0

    def poke(self):
        self.count += 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
def test_on_by_default_only_with_wg_quick_files(tmp_path):
    args = argparse.Namespace(config_dir=str(tmp_path))
    assert netwatch.wanted(args)
    (tmp_path / "network").write_text("")
    assert not netwatch.wanted(args)  # OpenWrt: hotplug is the documented path
    assert netwatch.wanted(argparse.Namespace(config_dir=str(tmp_path), source="wg-quick"))
    assert netwatch.wanted(argparse.Namespace(config_dir=str(tmp_path), wireguard_dir="/x"))
    assert netwatch.wanted(argparse.Namespace(config_dir=str(tmp_path), events_netlink=True))
    assert not netwatch.wanted(argparse.Namespace(config_dir="/nonexistent",
                                                  events_netlink=False))


def test_a_change_logs_one_line_and_wakes_a_round(tmp_path, caplog):
    d, _wg, clock, _ = make(tmp_path)
    run_for(d, clock, 20)
    made = []
    waiter = Poke()
    stop = netwatch.start_events(d, waiter, lambda *a: made.append(FakeListener(*a)) or made[-1])
    listener = made[0]
    assert listener.started and listener.ignore() == {"wg0"}
    caplog.set_level(logging.INFO, logger="wg_endpointd")
    listener.on_change("default route via 192.0.2.1 on eth0 removed")
    assert d.wake and waiter.count == 1
    lines = [r.message for r in caplog.records if r.name == "wg_endpointd.runtime.netwatch"]
    assert lines == ["network change: default route via 192.0.2.1 on eth0 removed"]
    d.step()
    assert not d.wake and d.last_round is not None
    assert any("interface event" in r.message for r in caplog.records)
    stop()
    assert listener.stopped


def test_the_ignored_names_follow_a_reload(tmp_path):
    d, *_ = make(tmp_path)
    assert netwatch.ignored(d) == {"wg0"}
    d.cfg = dataclasses.replace(d.cfg, interfaces=("wg0", "wg1"))
    assert netwatch.ignored(d) == {"wg0", "wg1"}


def test_without_a_netlink_socket_the_daemon_runs_on_its_timers(tmp_path, caplog):
    d, *_ = make(tmp_path)
    made = []
    stop = netwatch.start_events(d, Poke(), lambda *a: made.append(FakeListener(*a, fail=True))
                                 or made[-1])
    assert stop is netwatch.nothing and made[0].stopped
    assert any("cannot listen for network changes" in r.message and r.levelno == logging.WARNING
               for r in caplog.records)
