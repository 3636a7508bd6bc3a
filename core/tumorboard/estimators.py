"""Saving fitted scikit-learn / scikit-survival estimators without pickle, and finding components.

Estimators are stored with skops.io, whose format rebuilds only types that the
loader trusts; we trust types from scikit-learn, scikit-survival and numpy and
refuse anything else, so a tampered pipeline file cannot run code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ComponentError

TRUSTED_PACKAGES = ("sklearn", "sksurv", "numpy", "scipy")


def dump_estimator(estimator: Any) -> np.ndarray:
    """A fitted estimator as a uint8 array (a skops archive), ready for a component's state."""
    import skops.io as sio

    return np.frombuffer(sio.dumps(estimator), dtype=np.uint8).copy()


def load_estimator(blob: np.ndarray, owner: str = "estimator") -> Any:
    """Rebuild what ``dump_estimator`` stored; refuse types outside the trusted packages."""
    import skops.io as sio

    data = np.asarray(blob, dtype=np.uint8).tobytes()
    types = sio.get_untrusted_types(data=data)
    foreign = [t for t in types if t.split(".")[0] not in TRUSTED_PACKAGES]
    if foreign:
        raise ComponentError(f"{owner}: saved state holds untrusted types {foreign!r}; refusing to load it")
    return sio.loads(data, trusted=types)


_ACTIVE_REGISTRY = None


def use_registry(registry) -> None:
    """Make ``registry`` the one ``component_class`` answers from (set while a spec loads)."""
    global _ACTIVE_REGISTRY
    _ACTIVE_REGISTRY = registry


def component_class(family: str, name: str) -> type:
    """The installed component class of ``family`` called ``name`` (for ensembles of components)."""
    global _ACTIVE_REGISTRY
    if _ACTIVE_REGISTRY is None:
        from .plugins import load_plugins

        _ACTIVE_REGISTRY = load_plugins()
    cls = _ACTIVE_REGISTRY.get(family, name)
    if cls is None:
        known = ", ".join(_ACTIVE_REGISTRY.names(family))
        raise ComponentError(f"no {family} component {name!r}; installed: {known}")
    return cls
