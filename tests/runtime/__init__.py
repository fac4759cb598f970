"""Unit tests of the runtime layer: rounds, the loop, groups, status."""
