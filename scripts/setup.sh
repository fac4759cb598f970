#!/bin/sh
# Installs what the tests and the demo lab need on a Debian machine (idempotent).
set -eu
cd "$(dirname "$0")/.."
need=""
for tool in wireguard-go:wireguard-go wg:wireguard-tools dnsmasq:dnsmasq-base nft:nftables \
            iptables:iptables ip:iproute2 ping:iputils-ping busybox:busybox shellcheck:shellcheck \
            pgrep:procps node:nodejs lua5.1:lua5.1 promtool:prometheus \
            lintian:lintian systemd-analyze:systemd; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need="$need ${tool#*:}"
done
if [ -n "$need" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086 # word splitting of the package list is wanted
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need
fi
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# Debian 12's icmplib, apart, for tests/system/test_probe_icmplib2.py
[ -f build/icmplib-2.1.1/icmplib/__init__.py ] ||
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
        --target build/icmplib-2.1.1 icmplib==2.1.1
