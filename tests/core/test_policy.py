from wg_endpointd.core import candidates as cand
from wg_endpointd.core import policy
from wg_endpointd.core.model import Endpoint, ProbeResult

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
    d = policy.decide(None, False, [V6A, V4A, V6B], probes, 6)
    assert isinstance(d, policy.Try)
    assert d.order == (V4A, V6A, V6B)


def test_current_endpoint_just_shown_dead_is_tried_last():
    probes = {V4A.address: ProbeResult(V4A.address, 1.0)}  # the current one answers no ping
    d = policy.decide(V6A, False, [V6A, V4A, V6B], probes, 6)
    assert d.order == (V4A, V6B, V6A)
    pinged = {V6A.address: ProbeResult(V6A.address, 1.0)}  # still answers ping: keeps rank
    assert policy.decide(V6A, False, [V6A, V4A, V6B], pinged, 6).order[0] == V6A
    unknown = policy.decide(V6A, False, [V6A, V4A, V6B], pinged, 6, unknown=True)
    assert unknown.order[0] == V6A  # untested: the current one first


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


def test_untestable_peer_kept_on_fresh_handshake_or_when_idle():
    from wg_endpointd.core.model import Endpoint
    from wg_endpointd.core.policy import Keep, Try, untestable

    t = Try((Endpoint("192.0.2.1", 1),), "liveness unknown")
    assert untestable(t, 30.0, True) == Keep("handshake 30 s ago", "healthy")
    assert untestable(t, None, True).status == "untested"
    assert untestable(t, 30.0, False) is t  # an event or `once`: test it by switching


def test_untestable_peer_dead_only_when_traffic_gets_no_answer():
    from wg_endpointd.core import state as st

    idle = st.PeerState(last_alive=0.0, last_sent=None)
    assert st.is_dead(idle, 100.0, 30.0, testable=True)
    assert not st.is_dead(idle, 100.0, 30.0, testable=False)
    sending = st.PeerState(last_alive=0.0, last_sent=50.0)
    assert st.is_dead(sending, 100.0, 30.0, testable=False)
    assert not st.is_dead(sending, 20.0, 30.0, testable=False)


def test_tunnel_gateway_from_the_routers_own_subnet():
    import ipaddress

    from wg_endpointd.system.net import tunnel_gateway

    assert tunnel_gateway([ipaddress.ip_interface("198.51.100.130/25")]) == "198.51.100.129"
    assert tunnel_gateway([ipaddress.ip_interface("198.51.100.129/25")]) == "198.51.100.130"
    assert tunnel_gateway([ipaddress.ip_interface("198.51.100.130/32"),
                           ipaddress.ip_interface("fe80::1/64")]) is None
    assert tunnel_gateway([ipaddress.ip_interface("2001:db8:ffff::2/64")]) == "2001:db8:ffff::1"


def test_reapply_puts_the_verified_endpoint_first_unless_ping_argues_against_it():
    decision = policy.Try((V4A, V6A), "no endpoint")
    answered = {V4A.address: ProbeResult(V4A.address, 5.0)}
    both = {**answered, V6A.address: ProbeResult(V6A.address, 9.0)}
    assert policy.reapply(decision, V6A, "wg0", both).order == (V6A, V4A)
    assert policy.reapply(decision, V6A, "wg0", {}).order == (V6A, V4A)  # no ICMP at all
    # its path went silent while another answers: rank decides, it is still tried
    assert policy.reapply(decision, V6A, "wg0", answered) == decision


def test_a_round_tries_a_few_candidates_and_the_others_take_turns():
    eps = tuple(Endpoint(f"192.0.2.{i}", 51820) for i in range(1, 11))
    pinged = {eps[7].address: ProbeResult(eps[7].address, 5.0)}
    decision = policy.Try((eps[3], *[e for e in eps if e != eps[3]]), "why")
    first, turn = policy.capped(decision, pinged, 0, cap=4)
    # the policy's own first choice, then the one that answered ping, then silent in turn
    assert first.order == (eps[3], eps[7], eps[0], eps[1]) and first.reason == "why"
    second, turn = policy.capped(decision, pinged, turn, cap=4)
    assert second.order == (eps[3], eps[7], eps[2], eps[4])
    seen = set()
    for _ in range(5):  # bounded: every silent candidate gets its turn
        d, turn = policy.capped(decision, pinged, turn, cap=4)
        seen |= set(d.order)
    assert seen == set(eps)
    small = policy.Try(eps[:3], "why")
    assert policy.capped(small, {}, 7, cap=4) == (small, 0)
