"""Unit tests of the config layer (UCI and the daemon's own file)."""
