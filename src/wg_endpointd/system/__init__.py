"""What touches the system: `wg`, subprocesses, sockets and name resolution, ICMP, routes,
the run directory, the state file, signals, log set-up. Imports only `core`."""
