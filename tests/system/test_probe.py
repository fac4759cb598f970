import os

import pytest

from wg_endpointd.core.model import ProbeResult
from wg_endpointd.system.probe import IcmpProber, _setup_error


def test_group_settles_when_all_answered_or_grace_passed():
    prober = IcmpProber(grace=0.05)
    groups = [["192.0.2.1", "192.0.2.2"], ["198.51.100.1"]]
    first: dict[int, float] = {}
    results = {"192.0.2.1": ProbeResult("192.0.2.1", 1.0)}
    assert not prober._settled(groups, results, first, now=0.0)  # group 2 has nothing yet
    results["198.51.100.1"] = ProbeResult("198.51.100.1")  # timed out: settled
    assert not prober._settled(groups, results, first, now=0.01)  # grace not over
    assert prober._settled(groups, results, first, now=0.06)


def test_silent_group_waits_for_the_timeout():
    prober = IcmpProber(grace=0.05)
    results = {"192.0.2.1": ProbeResult("192.0.2.1")}
    assert not prober._settled([["192.0.2.1", "192.0.2.2"]], results, {}, now=5.0)


def test_permission_errors_get_a_clear_message():
    class SocketPermissionError(Exception):
        pass

    assert "no permission for ICMP" in str(_setup_error(SocketPermissionError()))
    assert "no permission for ICMP" in str(_setup_error(PermissionError()))
    assert "ICMP probing failed" in str(_setup_error(OSError("x")))


def test_empty_probe_does_not_touch_icmp():
    assert IcmpProber().probe([[], []], 1.0) == {}


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root")
def test_real_ping_to_loopback():
    out = IcmpProber().probe([["127.0.0.1"], ["127.0.0.2"]], 1.0)
    assert out["127.0.0.1"].answered and out["127.0.0.1"].rtt_ms is not None
