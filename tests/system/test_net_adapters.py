"""The small network adapters the liveness checks use, against the real kernel (loopback
only) and a made-up /sys tree."""

import socket
import time

from wg_endpointd.system import net, tunnel


def test_rx_packets_reads_the_kernel_counter(tmp_path):
    stats = tmp_path / "class" / "net" / "wg0" / "statistics"
    stats.mkdir(parents=True)
    (stats / "rx_packets").write_text("1234\n")
    assert net.rx_packets("wg0", str(tmp_path)) == 1234
    assert net.rx_packets("wg1", str(tmp_path)) is None
    (stats / "rx_packets").write_text("garbage\n")
    assert net.rx_packets("wg0", str(tmp_path)) is None


def test_rx_packets_of_loopback_grows_with_traffic():
    before = net.rx_packets("lo")
    assert before is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", ("127.0.0.1", 9))
    after = net.rx_packets("lo")
    assert after is not None and after > before


def test_tunnel_sender_keeps_one_socket_and_replaces_a_broken_one():
    send = tunnel.TunnelSender()
    assert send("lo", "127.0.0.1") and send("lo", "127.0.0.1")
    assert len(send._socks) == 1
    kept = send._socks[("lo", socket.AF_INET)]
    kept.close()  # as if it went bad: the next send opens a fresh one
    assert send("lo", "127.0.0.1")
    assert send._socks[("lo", socket.AF_INET)] is not kept
    assert not send("no-such-if0", "127.0.0.1")  # cannot bind: not sent, nothing kept
    assert ("no-such-if0", socket.AF_INET) not in send._socks
    send.close()
    assert send._socks == {}


def test_tunnel_sender_hears_the_far_stacks_answer_and_only_after_the_datagram():
    """A datagram to a closed port draws an ICMP port unreachable (here from the loopback
    stack): the sender reports who answered, once, and a send after an unread answer
    still goes out."""
    times = iter(range(100, 1000))
    send = tunnel.TunnelSender(clock=lambda: float(next(times)))
    assert send("lo", "127.0.0.1")
    heard = {}
    for _ in range(50):  # bounded: the answer is there within milliseconds
        heard = send.answers()
        if heard:
            break
        time.sleep(0.01)
    assert list(heard) == [("lo", "127.0.0.1")]
    assert send.answers() == {}  # reported once
    assert send("lo", "127.0.0.1") and send("lo", "127.0.0.1")  # pending errors: still sent
    time.sleep(0.05)
    assert ("lo", "127.0.0.1") in send.answers()
    assert send("lo", "::1")
    for _ in range(50):
        heard = send.answers()
        if heard:
            break
        time.sleep(0.01)
    assert list(heard) == [("lo", "::1")]
    send.close()


def test_a_slow_resolver_holds_a_round_only_for_names_with_nothing_known(monkeypatch):
    """Issue 18: DNS stops answering. A name whose last answer is known waits `patience`
    at most; its answer, when it comes, lands in `late` for the next round."""
    import threading

    release = threading.Event()

    def slow(host):
        if host == "slow.test":
            release.wait(5)
            return ["192.0.2.9"]
        return ["192.0.2.1"]

    monkeypatch.setattr(net, "resolve_one", slow)
    late: dict = {}
    start = time.monotonic()
    out = net.resolve_many(["slow.test", "fast.test"], known={"slow.test"}, patience=0.1,
                           late=late)
    took = time.monotonic() - start
    assert isinstance(out["slow.test"], net.ResolvePending) and out["fast.test"] == ["192.0.2.1"]
    assert took < 1.0
    release.set()
    for _ in range(100):  # bounded: the thread finishes at once now
        if "slow.test" in late:
            break
        time.sleep(0.01)
    assert late["slow.test"] == ["192.0.2.9"]
    release.clear()
    start = time.monotonic()
    out = net.resolve_many(["slow.test"], known=(), patience=0.1, stop=lambda: time.monotonic()
                           - start > 0.5)
    assert time.monotonic() - start >= 0.5  # nothing known: the round waits for it
    release.set()
