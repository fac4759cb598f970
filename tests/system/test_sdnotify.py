"""sd_notify against a real AF_UNIX datagram socket, as systemd listens on it."""

import logging
import os
import socket
import time

import pytest

from wg_endpointd.system.sdnotify import Notifier, parse_address, watchdog_usec


@pytest.fixture
def listener(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def received(sock):
    return sock.recv(4096).decode()


def test_messages_reach_a_path_socket_and_the_variables_leave_the_environment(listener):
    sock, path = listener
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "4242",
           "PATH": "/usr/bin"}
    n = Notifier.from_environ(env, pid=4242)
    assert env == {"PATH": "/usr/bin"}  # no child speaks for the daemon
    assert n.enabled and n.watchdog_interval == 30.0
    assert n.ready("2 managed peer(s): 2 healthy")
    assert received(sock) == "READY=1\nSTATUS=2 managed peer(s): 2 healthy\n"
    assert n.ping() and received(sock) == "WATCHDOG=1\n"
    assert n.stopping("stopping") and received(sock) == "STOPPING=1\nSTATUS=stopping\n"
    n.close()


def test_reloading_carries_the_monotonic_time(listener):
    sock, path = listener
    n = Notifier(parse_address(path))
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    n.reloading("reloading the configuration")
    lines = received(sock).splitlines()
    assert lines[0] == "RELOADING=1" and lines[2] == "STATUS=reloading the configuration"
    key, _, value = lines[1].partition("=")
    assert key == "MONOTONIC_USEC" and 0 <= int(value) - before < 2_000_000


def test_abstract_socket():
    name = f"wg-endpointd-test-{os.getpid()}-{os.urandom(4).hex()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2)
    try:
        n = Notifier.from_environ({"NOTIFY_SOCKET": f"@{name}"})
        assert n.address == b"\0" + name.encode()
        assert n.ready() and received(sock) == "READY=1\n"
    finally:
        sock.close()


def test_a_newline_in_a_status_cannot_forge_a_field(listener):
    sock, path = listener
    Notifier(path).status("peer x\nREADY=1")
    assert received(sock) == "STATUS=peer x READY=1\n"


def test_without_notify_socket_nothing_is_sent():
    n = Notifier.from_environ({"WATCHDOG_USEC": "1000000"})
    assert not n.enabled and n.watchdog_interval is None
    assert not n.ready() and not n.ping()


@pytest.mark.parametrize(("usec", "pid", "want"), [
    ("60000000", None, 60_000_000),  # no WATCHDOG_PID: meant for the main process
    ("60000000", "100", 60_000_000),
    ("60000000", "101", None),  # another process's watchdog
    ("60000000", "x", None),
    ("0", None, None),
    (str((1 << 64) - 1), None, None),  # USEC_INFINITY
    ("-5", None, None),
    (None, "100", None),
])
def test_watchdog_follows_sd_watchdog_enabled(usec, pid, want):
    assert watchdog_usec(usec, pid, 100) == want


def test_addresses():
    assert parse_address("/run/systemd/notify") == "/run/systemd/notify"
    assert parse_address("@x") == b"\0x"
    assert parse_address("vsock:2:1234") is None  # a VM's manager: not for a host daemon
    assert parse_address("relative") is None and parse_address("@") is None
    assert parse_address("/" + "a" * 107) is None  # no room for the NUL in sun_path


def test_unusable_address_warns_once(caplog):
    caplog.set_level(logging.WARNING)
    n = Notifier.from_environ({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not n.enabled and "NOTIFY_SOCKET=vsock:2:1234" in caplog.text


def test_a_gone_socket_is_logged_once_and_never_raises(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    n = Notifier(str(tmp_path / "missing"))
    assert not n.ping() and not n.ping()
    assert len([r for r in caplog.records if "cannot tell systemd" in r.message]) == 1
