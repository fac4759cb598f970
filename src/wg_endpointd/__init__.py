"""wg-endpointd: keep WireGuard peers on endpoints that WireGuard can reach."""

__version__ = "0.1.0"
__all__ = ["__version__"]
