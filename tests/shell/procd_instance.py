#!/usr/bin/env python3
"""Test stand-in for one procd service instance with `stdout 1` and `stderr 1`.

    procd_instance.py --syslog FILE [--facility NAME] [--root DIR] [--pidfile FILE]
                      [--term-timeout S] -- COMMAND [ARG...]

COMMAND is the instance's `command` param, one argument per word, as the init
script's procd_set_param gave it. What openwrt/procd service/instance.c does
with it, and this does too:

- instance_start forks with a pipe for stdout and one for stderr, and
  instance_run execs `execvp(argv[0], argv)`, argv being the command as given,
  with stdin on /dev/null. instance_writepid puts the child's pid in the pid
  file, when there is one.
- instance_stdio names every relayed line: `arg0 = basename(argv[0])`, then
  `snprintf(ident, sizeof(ident), "%s[%d]", arg0, in->proc.pid)` into a
  `char ident[32]`, and `ulog_open(ULOG_SYSLOG, in->syslog_facility, ident)`.
  So the tag is the file name of the command's first word and the pid procd
  started, whatever that process execs later; a command run through
  `/bin/sh -c ...` is tagged `sh[PID]`.
- instance_stdout relays at LOG_INFO, instance_stderr at LOG_ERR. The facility
  is LOG_DAEMON (instance_init) unless the `facility` param names another
  (instance_config_parse, syslog_facility_str_to_int; an unknown name keeps
  daemon).
- Only whole lines go out: text without a newline waits for more (unless the
  ustream buffer is full), and what is left unterminated when the pipe closes
  is never relayed.
- libubox's ulog calls `openlog(ident, 0, facility)`: no LOG_PID, so the pid in
  the ident is the only one in the line.
- instance_stop: SIGTERM, then SIGKILL after term_timeout (5 s by default).

Not done here: procd also sets LD_PRELOAD=/lib/libsetlbf.so (line-buffered C
stdio) for an instance whose stdout it reads; that library exists only on the
router, and Python's logging flushes every record itself.

Each relayed line is appended to FILE as logread prints it, minus the time
(openwrt/ubox log/logread.c: facility and level by their first names in
<syslog.h>'s tables, then the message "IDENT: text"), for example
`daemon.info wg-endpointd[1234]: INFO: started`. tests/shell/logger writes the
init and hotplug scripts' lines to the same file the same way.

--root DIR lays DIR over / for the command's first exec only: an absolute
argv[0], and the interpreter of its `#!` line, are taken from DIR when they are
there (DIR/bin/sh may be a link to busybox, which picks its applet from
argv[0]) and from / when not (the tests' own files). The ident is still made
from argv[0] as given, as procd makes it.
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

LEVELS = {"stdout": "info", "stderr": "err"}  # LOG_INFO, LOG_ERR as logread names them
FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
              "cron", "authpriv", "ftp", *(f"local{i}" for i in range(8)))
IDENT_SIZE = 32  # char ident[32] in instance_stdio


def ident(argv0: str, pid: int) -> str:
    """The tag instance_stdio gives every line of the instance started as pid."""
    return f"{os.path.basename(argv0)}[{pid}]"[:IDENT_SIZE - 1]


def facility_name(name: str | None) -> str:
    """The `facility` param as logread prints it: daemon when unset or unknown."""
    if name is None:
        return "daemon"
    low = name.lower()
    low = "auth" if low == "security" else low
    return low if low in FACILITIES else "daemon"


def _overlaid(root: Path, path: str) -> str:
    if not path.startswith("/"):
        raise SystemExit(f"procd_instance: with --root, paths must be absolute: {path}")
    local = root / path.lstrip("/")
    return str(local) if os.path.lexists(local) else path


def resolve(argv: list[str], root: Path | None) -> tuple[str, list[str]]:
    """Return (file to exec, argv) for COMMAND, with root laid over / when given."""
    if root is None:
        return argv[0], argv
    local = _overlaid(root, argv[0])
    with open(local, "rb") as f:
        head = f.readline(256)
    if not head.startswith(b"#!"):
        return local, argv
    words = head[2:].decode().strip().split(None, 1)  # the kernel's: one optional argument
    interp = words[0]
    return _overlaid(root, interp), [interp, *words[1:], local, *argv[1:]]


class Relay:
    """Reads the instance's stdout and stderr, appending whole lines to the syslog file."""

    def __init__(self, proc: subprocess.Popen[bytes], tag: str, facility: str,
                 syslog: Path) -> None:
        self.tag, self.facility, self.syslog = tag, facility, syslog
        self.sel = selectors.DefaultSelector()
        self.pending: dict[str, bytes] = {}
        for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)
            self.sel.register(pipe, selectors.EVENT_READ, name)
            self.pending[name] = b""

    @property
    def open(self) -> bool:
        return bool(self.sel.get_map())

    def poll(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            name = key.data
            try:
                chunk = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:  # EOF: an unterminated rest is never relayed
                self.sel.unregister(key.fileobj)
                self.pending[name] = b""
                continue
            *lines, self.pending[name] = (self.pending[name] + chunk).split(b"\n")
            with open(self.syslog, "a") as out:
                for line in lines:
                    text = line.decode(errors="replace")
                    out.write(f"{self.facility}.{LEVELS[name]} {self.tag}: {text}\n")


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--syslog", type=Path, required=True)
    parser.add_argument("--facility")
    parser.add_argument("--root", type=Path)
    parser.add_argument("--pidfile", type=Path)
    parser.add_argument("--term-timeout", type=float, default=5.0)
    parser.add_argument("command", nargs="+")
    opts = parser.parse_args(args)

    stopping: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, _f: stopping.append(s))

    executable, argv = resolve(opts.command, opts.root)
    proc = subprocess.Popen(argv, executable=executable, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if opts.pidfile is not None:
        tmp = opts.pidfile.with_name(opts.pidfile.name + ".tmp")
        tmp.write_text(f"{proc.pid}\n")
        tmp.replace(opts.pidfile)
    relay = Relay(proc, ident(opts.command[0], proc.pid), facility_name(opts.facility),
                  opts.syslog)
    kill_at: float | None = None
    drain_until: float | None = None  # a child's child may hold the pipes open
    while relay.open or proc.poll() is None:
        now = time.monotonic()
        if stopping and kill_at is None:
            proc.send_signal(signal.SIGTERM)  # instance_stop
            kill_at = now + opts.term_timeout
        if kill_at is not None and now > kill_at and proc.poll() is None:
            proc.kill()
        if proc.poll() is not None:
            drain_until = drain_until or now + 2.0
            if now > drain_until:
                break
        if relay.open:
            relay.poll(0.05)
        else:
            time.sleep(0.01)
    code = proc.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
