"""One exception tree; every error carries a one-line message for the user."""


class WgEndpointdError(Exception):
    """Root of all errors the daemon reports to the user."""


class ConfigError(WgEndpointdError):
    """Bad configuration: the message names the file and line, or the section."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line


class UsageError(WgEndpointdError):
    """Bad command-line usage (exit code 2)."""


class WgError(WgEndpointdError):
    """The wg binary is missing, failed or hung."""


class WgUnavailable(WgError):
    """The wg binary cannot be run at all (not installed, not executable): nothing is
    known about any peer, so none is judged."""


class WgMissing(WgError):
    """The WireGuard interface is not there (netifd may be re-creating it)."""


class ResolveError(Exception):
    """A name did not resolve; the message is one line for the log."""


class ResolvePending(ResolveError):
    """No answer yet: the round goes on with the last known addresses (not a fault)."""


class ProbeSetupError(WgEndpointdError):
    """ICMP probing cannot be set up (for example no permission for raw sockets)."""
