"""Unit tests of the core layer (pure rules and values)."""
