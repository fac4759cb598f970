import os
import subprocess
from pathlib import Path

import pytest

from wg_endpointd.core.errors import WgError, WgUnavailable
from wg_endpointd.core.model import Endpoint, PeerDump
from wg_endpointd.system.wg import Reset, WgClient, parse_dump, reset_args

DUMP = (Path(__file__).parents[1] / "data" / "wg-dump.txt").read_text()
K1 = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
K2 = "HbTz4YbSm6CpZ3Nn2b9n1c4gDM8WZ7b9kqx3XWdd3Hk="
K3 = "kM3LQ3O8a0UuQKx2T7l4Ff0q8b5W8p7J4Vd2x1v9s2E="


def test_parse_dump_fields():
    dump = parse_dump("wg0", DUMP)
    assert dump.listen_port == 51821
    assert list(dump.peers) == [K1, K2, K3]
    p1, p2, p3 = dump.peers[K1], dump.peers[K2], dump.peers[K3]
    assert p1.endpoint == Endpoint("192.0.2.2", 51820)
    assert p1.allowed_ips == ("10.99.0.2/32",)
    assert (p1.latest_handshake, p1.rx_bytes, p1.tx_bytes, p1.keepalive) == (1795303127, 188, 212, None)
    assert p1.preshared_key is None
    assert p2.endpoint == Endpoint("2001:db8:1::2", 51820)
    assert p2.allowed_ips == ("0.0.0.0/0", "::/0")
    assert p2.keepalive == 25 and p2.preshared_key is not None
    assert p3.endpoint is None and p3.allowed_ips == () and p3.handshake_age(100.0) is None


def test_private_key_and_psk_never_in_repr():
    dump = parse_dump("wg0", DUMP)
    text = repr(dump)
    assert "mEd8328u" not in text  # private key
    assert "8Xh2Vq1o" not in text  # preshared key


@pytest.mark.parametrize("bad", ["", "a\tb\n", "a\tb\tc\td\nx\ty\n", "p\tk\t1\toff\nK\t(none)\tbad\t(none)\t0\t0\t0\toff\n"])
def test_parse_dump_rejects_malformed(bad):
    with pytest.raises(ValueError):
        parse_dump("wg0", bad)


def test_endpoint_format_and_parse():
    assert str(Endpoint("2001:db8::1", 5)) == "[2001:db8::1]:5"
    assert str(Endpoint("192.0.2.1", 51820)) == "192.0.2.1:51820"
    assert Endpoint.parse("[2001:db8::1]:5") == Endpoint("2001:db8::1", 5)
    assert Endpoint.parse("(none)") is None
    for bad in ("192.0.2.1", "host:1", "192.0.2.1:0", "192.0.2.1:70000"):
        with pytest.raises(ValueError):
            Endpoint.parse(bad)


def _peer(key=K1, psk=None, keepalive=None):
    return PeerDump(key, Endpoint("192.0.2.2", 51820), ("198.51.100.1/32", "2001:db8::/64"),
                    0, 0, 0, keepalive, psk)


def test_reset_args_restore_every_attribute_in_one_call():
    args, psks = reset_args([Reset(_peer(psk="S" * 43 + "="), Endpoint("2001:db8::9", 7)),
                             Reset(_peer(K2, keepalive=15), Endpoint("192.0.2.9", 8))])
    assert args == ["peer", K1, "remove", "peer", K1, "preshared-key", "@PSK0",
                    "endpoint", "[2001:db8::9]:7", "allowed-ips", "198.51.100.1/32,2001:db8::/64",
                    "persistent-keepalive", "25", "peer", K1, "persistent-keepalive", "off",
                    "peer", K2, "remove", "peer", K2, "endpoint", "192.0.2.9:8",
                    "allowed-ips", "198.51.100.1/32,2001:db8::/64", "persistent-keepalive", "15"]
    assert psks == ["S" * 43 + "="]


class Recorder:
    def __init__(self, rc=0, stdout="", exc=None):
        self.calls = []
        self.rc, self.stdout, self.exc = rc, stdout, exc

    def __call__(self, argv, **kw):
        fds = kw.get("pass_fds", ())
        self.calls.append((argv, kw, [os.read(fd, 100).decode() for fd in fds]))
        if self.exc:
            raise self.exc
        return subprocess.CompletedProcess(argv, self.rc, self.stdout, "Unable to access interface: No such device\n")


def test_client_uses_argv_timeout_and_no_dns_retries():
    rec = Recorder(stdout=DUMP)
    client = WgClient(run=rec, timeout=3)
    assert K1 in client.show("wg0").peers
    argv, kw, _ = rec.calls[0]
    assert argv == ["wg", "show", "wg0", "dump"]
    assert kw["timeout"] == 3 and kw["env"]["WG_ENDPOINT_RESOLUTION_RETRIES"] == "0"
    assert "shell" not in kw


def test_client_passes_psk_through_a_pipe_not_argv():
    rec = Recorder()
    psk = "S" * 43 + "="
    WgClient(run=rec).reset("wg0", [Reset(_peer(psk=psk), Endpoint("192.0.2.3", 1))])
    argv, kw, read = rec.calls[0]
    assert psk not in " ".join(argv)
    assert read == [psk + "\n"]
    assert any(a.startswith("/proc/self/fd/") for a in argv)
    assert not any("/dev/fd" in a for a in argv)  # a router has no /dev/fd
    assert len(rec.calls) == 1  # one `wg set`: nothing half-applied if we are killed
    assert argv[-4:] == ["peer", K1, "persistent-keepalive", "off"]


@pytest.mark.parametrize("exc,msg", [
    (FileNotFoundError(), "wg binary not found"),
    (subprocess.TimeoutExpired(["wg"], 5), "timed out"),
])
def test_client_errors_are_one_line(exc, msg):
    if isinstance(exc, FileNotFoundError):  # no wg at all: nothing can be known
        with pytest.raises(WgUnavailable):
            WgClient(run=Recorder(exc=exc)).show("wg0")
    with pytest.raises(WgError, match=msg):
        WgClient(run=Recorder(exc=exc)).show("wg0")


def test_client_reports_wg_failure():
    with pytest.raises(WgError, match="No such device"):
        WgClient(run=Recorder(rc=1)).show("wg9")


@pytest.mark.parametrize("iface,key", [("-x", K1), ("wg0", "--help"), ("wg0", "-" * 44)])
def test_values_that_could_be_options_never_reach_wg(iface, key):
    rec = Recorder()
    with pytest.raises(WgError):
        WgClient(run=rec).set_endpoint(iface, key, Endpoint("192.0.2.1", 1))
    assert rec.calls == []


def test_hanging_wg_is_killed_with_its_children(tmp_path):
    """A `wg` that forks and hangs: the timeout kills the whole process group."""
    pidfile = tmp_path / "child.pid"
    fake = tmp_path / "wg"
    fake.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pidfile}\nwait\n")
    fake.chmod(0o755)
    with pytest.raises(WgError, match="timed out"):
        WgClient(wg_path=str(fake), timeout=0.5).show("wg0")
    child = int(pidfile.read_text())
    for _ in range(100):  # bounded: the kill is immediate, reaping may lag a little
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{child}/stat").read_text().split(") ")[1].startswith("Z"):
            break
        import time
        time.sleep(0.02)
    else:
        pytest.fail(f"child {child} of the hung wg survived")
