"""`WgClient.set_allowed_ips`: one `wg set` for a group's move, argv only, validated."""

import subprocess

import pytest

from wg_endpointd.core.errors import WgError
from wg_endpointd.system.wg import WgClient

KA = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
KB = "HbTz4YbSm6CpZ3Nn2b9n1c4gDM8WZ7b9kqx3XWdd3Hk="


def client(calls):
    def run(argv, **kwargs):
        calls.append((argv, kwargs))
        return subprocess.CompletedProcess(argv, 0, "", "")
    return WgClient(run=run)


def test_one_call_moves_the_allowed_ips_and_strips_the_old_holder():
    calls = []
    client(calls).set_allowed_ips("wg0", [(KA, ("10.8.0.1/32", "0.0.0.0/0")), (KB, ())])
    [(argv, kwargs)] = calls
    assert argv == ["wg", "set", "wg0", "peer", KA, "allowed-ips", "10.8.0.1/32,0.0.0.0/0",
                    "peer", KB, "allowed-ips", ""]
    assert kwargs["env"]["WG_ENDPOINT_RESOLUTION_RETRIES"] == "0" and kwargs["timeout"] > 0


@pytest.mark.parametrize("changes", [
    [(KA, ("0.0.0.0/0; reboot",))], [(KA, ("-x",))], [("not-a-key", ("0.0.0.0/0",))]])
def test_nothing_unvalidated_reaches_the_command_line(changes):
    calls = []
    with pytest.raises(WgError):
        client(calls).set_allowed_ips("wg0", changes)
    assert calls == []


def test_no_change_no_call():
    calls = []
    client(calls).set_allowed_ips("wg0", [])
    assert calls == []
