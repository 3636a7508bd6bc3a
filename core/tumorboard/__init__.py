"""tumorboard: a plugin-based engine for personalized cancer analytics.

Plugins import from :mod:`tumorboard.api` (and test with :mod:`tumorboard.testing`);
everything else lives in the private package ``tumorboard._engine``. People run
specs with the ``tumorboard`` command or :func:`tumorboard.run`.
"""

from importlib import metadata

try:
    __version__ = metadata.version("tumorboard")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"


def __getattr__(name: str):
    # `tumorboard.run(spec)` and `tumorboard.load_spec(path)` for notebooks, imported on first use
    if name == "run":
        from ._engine.engine import run

        return run
    if name == "load_spec":
        from ._engine.spec import load_spec

        return load_spec
    raise AttributeError(f"module 'tumorboard' has no attribute {name!r}")
