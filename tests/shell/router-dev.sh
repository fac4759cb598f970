#!/bin/sh
# Run a command with /dev laid out as procd leaves it on a router.
# openwrt/procd initd/early.c, early_mounts(): a tmpfs (mode=0755,size=512K) on /dev,
# /dev/shm a link to /tmp/shm, /dev/pts for devpts, then early_dev(): device nodes
# made from /sys/dev (mkdev "*") and /dev/null. No /dev/fd, /dev/stdin, /dev/stdout
# or /dev/stderr links: only procd's jail (jail/jail.c) makes those.
# Usage: unshare -m sh router-dev.sh COMMAND [ARG...]  (needs root and a private
# mount namespace, so the real /dev of the machine is never touched).
set -e
mount -t tmpfs -o mode=0755,size=512k tmpfs /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/zero c 1 5
mknod -m 444 /dev/random c 1 8
mknod -m 444 /dev/urandom c 1 9
ln -s /tmp/shm /dev/shm
mkdir /dev/pts
exec "$@"
