"""Unit tests of the system layer's adapters."""
