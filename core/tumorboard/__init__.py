"""tumorboard: a plugin-based engine for personalized cancer analytics.

Plugins import from :mod:`tumorboard.api`; people run specs with the
``tumorboard`` command or :func:`tumorboard.engine.run`.
"""

from importlib import metadata

try:
    __version__ = metadata.version("tumorboard")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"
