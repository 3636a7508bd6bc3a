"""Saving component state without pickle: arrays in ``.npz``, everything else as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


class StateEncodingError(TypeError):
    """A component's state holds a value that cannot be saved without pickle."""


def _encode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            if all(isinstance(v, str) for v in value.ravel()):
                value = value.astype(str)
            else:
                raise StateEncodingError(f"{where}: object arrays cannot be saved without pickle")
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"__ndarray__": key}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise StateEncodingError(f"{where}: dict keys must be strings to be saved")
        if "__ndarray__" in value or "__tuple__" in value:
            raise StateEncodingError(f"{where}: reserved key in state dict")
        return {k: _encode(v, arrays, f"{where}.{k}") for k, v in value.items()}
    raise StateEncodingError(
        f"{where}: cannot save a {type(value).__name__} without pickle; "
        "override get_state/set_state to store arrays and plain values"
    )


def _decode(value: Any, arrays: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__ndarray__"}:
            return arrays[value["__ndarray__"]]
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v, arrays) for v in value["__tuple__"])
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


def save_state(state: dict[str, Any], folder: Path, stem: str, owner: str = "state") -> None:
    """Write ``stem.json`` (and ``stem.npz`` when there are arrays) into ``folder``."""
    arrays: dict[str, np.ndarray] = {}
    encoded = _encode(state, arrays, owner)
    (folder / f"{stem}.json").write_text(json.dumps(encoded, indent=1, sort_keys=True), encoding="utf-8")
    if arrays:
        np.savez(folder / f"{stem}.npz", **arrays)


def load_state(folder: Path, stem: str) -> dict[str, Any]:
    encoded = json.loads((folder / f"{stem}.json").read_text(encoding="utf-8"))
    npz = folder / f"{stem}.npz"
    if npz.exists():
        with np.load(npz, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    else:
        arrays = {}
    return _decode(encoded, arrays)
