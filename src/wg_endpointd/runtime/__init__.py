"""What runs: one round (engine, verification, test datagrams), groups at run time, repairs
beside the loop, the daemon loop and its start-up, status and the snapshot. Imports any
layer."""
