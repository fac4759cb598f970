"""The sizing rules of a round's waits (wg_endpointd.core.waits)."""

from wg_endpointd.core import waits
from wg_endpointd.core.model import Endpoint, ProbeResult

V6 = Endpoint("2001:db8:1::2", 51820)
V4 = Endpoint("192.0.2.2", 51820)
V4B = Endpoint("198.51.100.2", 51820)


def test_liveness_sized_from_icmp_round_trips():
    assert abs(waits.liveness_window([None, 50.0, 40.0], None, True, 1.0) - 0.26) < 1e-9
    assert waits.liveness_window([0.3], None, True, 1.0) == waits.LIVENESS_FLOOR
    assert waits.liveness_window([400.0], None, False, 1.0) == 1.0  # never over the ceiling


def test_liveness_sized_from_the_last_handshake_time_without_icmp():
    assert abs(waits.liveness_window([None], 0.1, True, 1.0) - 0.3) < 1e-9
    assert waits.liveness_window([], 0.01, False, 1.0) == waits.LIVENESS_FLOOR
    assert waits.liveness_window([], 2.0, True, 1.0) == 1.0


def test_nothing_known_session_gets_the_full_wait_no_session_a_short_one():
    assert waits.liveness_window([None, None], None, True, 1.0) == waits.SESSION_WAIT
    assert waits.liveness_window([None, None], None, True, 0.4) == 0.4
    assert waits.liveness_window([None, None], None, False, 1.0) == waits.QUIET_WAIT
    assert waits.liveness_window([], None, False, 0.3) == 0.3  # a shorter probe timeout wins


def test_session_means_a_handshake_within_reject_after_time():
    assert waits.has_session(5.0) and waits.has_session(179.0)
    assert not waits.has_session(None) and not waits.has_session(181.0)


def test_current_endpoints_own_round_trip_sizes_liveness_when_it_answered():
    probes = {V6.address: ProbeResult(V6.address, 2.0), V4.address: ProbeResult(V4.address, 80.0),
              V4B.address: ProbeResult(V4B.address)}
    assert waits.sizing_rtts(V4, [V6, V4, V4B], probes) == [80.0]
    assert waits.sizing_rtts(V4B, [V6, V4, V4B], probes) == [2.0, 80.0, None]  # silent: all
    assert waits.sizing_rtts(None, [V6, V4], probes) == [2.0, 80.0]
    assert waits.sizing_rtts(V4, [V4], {}) == []


def test_icmp_waited_for_only_until_the_trials_would_start():
    assert abs(waits.probe_budget([0.5, 0.2], 0.01, 1.0) - 0.49) < 1e-9
    assert waits.probe_budget([1.0], 0.0, 1.0) == 1.0
    assert waits.probe_budget([3.0], 0.0, 1.0) == 1.0  # never beyond the probe timeout
    assert waits.probe_budget([0.5], 0.45, 1.0) == waits.PROBE_FLOOR  # slow resolution
    assert waits.probe_budget([], 0.0, 1.0) == waits.PROBE_FLOOR  # nobody to wait for


def test_verification_wait():
    assert waits.verify_wait(None, None, 2.0) == 2.0
    assert waits.verify_wait(1.0, None, 2.0) == waits.MIN_WAIT
    assert abs(waits.verify_wait(300.0, None, 2.0) - 1.4) < 1e-9
    assert abs(waits.verify_wait(None, 0.2, 2.0) - 1.0) < 1e-9
    assert waits.verify_wait(None, 5.0, 2.0) == 2.0


def test_an_unproven_endpoint_without_a_session_gets_the_quiet_wait_at_most():
    assert waits.verify_wait(None, None, 2.0, unproven=True) == waits.QUIET_WAIT
    assert waits.verify_wait(None, None, 2.0) == 2.0
    assert waits.verify_wait(10.0, None, 2.0, unproven=True) == waits.MIN_WAIT  # already short
    assert waits.verify_wait(None, None, 0.3, unproven=True) == 0.3  # a shorter timeout wins
