"""tumorboard's internals: the engine, the spec loader, the plugin registry, the run directory.

Private: plugins import :mod:`tumorboard.api` and :mod:`tumorboard.testing` only (an
import-linter contract in CI keeps it so). Nothing here is a stable interface.
"""
