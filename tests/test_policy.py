from wg_endpointd import candidates as cand
from wg_endpointd import policy
from wg_endpointd.model import Endpoint, ProbeResult

V6A, V6B = Endpoint("2001:db8:1::2", 51820), Endpoint("2001:db8:2::2", 51820)
V4A, V4B = Endpoint("192.0.2.2", 51820), Endpoint("198.51.100.2", 51820)


def test_clean_dedupes_and_drops_mapped():
    eps = [V4A, Endpoint("::ffff:192.0.2.2", 51820), V4A, Endpoint("2001:DB8:1:0::2", 51820)]
    assert cand.clean(eps) == [V4A, V6A]


def test_interleave_rfc8305():
    assert cand.interleave([V4A, V4B, V6A, V6B], 6) == [V6A, V4A, V6B, V4B]
    assert cand.interleave([V4A, V4B, V6A, V6B], 4) == [V4A, V6A, V4B, V6B]
    assert cand.interleave([V6A, V6B, V4A], 6, first_count=2) == [V6A, V6B, V4A]
    assert cand.interleave([V4A], 6) == [V4A]


def test_preferred_family():
    assert cand.preferred_family("auto") == 6
    assert cand.preferred_family("ipv6") == 6
    assert cand.preferred_family("ipv4") == 4


def test_alive_path_is_kept_even_if_not_first():
    d = policy.decide(V4A, True, [V6A, V4A], {}, 6)
    assert d == policy.Keep("path alive")


def test_icmp_answers_rank_first_but_silent_stay_in_list():
    probes = {V4A.address: ProbeResult(V4A.address, 5.0)}
    d = policy.decide(V6A, False, [V6A, V4A, V6B], probes, 6)
    assert isinstance(d, policy.Try)
    assert d.order == (V4A, V6A, V6B)


def test_preferred_family_beats_rtt_among_answered():
    probes = {V4A.address: ProbeResult(V4A.address, 1.0), V6A.address: ProbeResult(V6A.address, 50.0),
              V6B.address: ProbeResult(V6B.address, 20.0)}
    assert policy.rank([V4A, V6A, V6B], probes, 6) == [V6B, V6A, V4A]
    assert policy.rank([V4A, V6A, V6B], probes, 4) == [V4A, V6B, V6A]


def test_unknown_liveness_tries_current_first():
    probes = {V6A.address: ProbeResult(V6A.address, 1.0)}
    d = policy.decide(V4A, False, [V6A, V4A], probes, 6, unknown=True)
    assert isinstance(d, policy.Try) and d.order == (V4A, V6A)


def test_no_candidates_keeps_current():
    assert isinstance(policy.decide(V4A, False, [], {}, 6), policy.Keep)


def test_better_candidates_for_failback():
    order = [V6A, V4A, V6B, V4B]
    assert policy.better(V4A, order, 6) == [V6A]
    assert policy.better(V4B, order, 6) == [V6A, V6B]
    assert policy.better(V6B, order, 6) == []  # already on the preferred family
    assert policy.better(V6A, order, 4) == []  # nothing of the preferred family ahead
    assert policy.better(Endpoint("192.0.2.99", 1), order, 6) == []  # roamed: left alone
    assert policy.better(None, order, 6) == []
