"""Shared fixtures: tiny quickstart cohorts with a planted answer."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

# Runs in the default suite fit their folds in this process: many tests patch a component here
# (monkeypatch does not reach worker processes), and a worker pool per test would cost more than
# these tiny runs. tests/test_execution.py runs the same specs on 2 local workers and on Ray and
# checks the bytes are the same. The thread budget for this one worker: native pools at the
# cores pytest may use (tumorboard's executor sets the same limits inside each task).
os.environ.setdefault("TUMORBOARD_WORKERS", "1")
# a user's own registry file (~/.config/tumorboard/registry.toml) never changes what the tests see
os.environ["TUMORBOARD_USER_REGISTRY"] = os.devnull

# JAX compiles a network's training loop anew for every fit (the loss closes over that fit's model),
# and the same programs recur across the kit's checks and the folds of the tiny test runs: a
# compilation cache for this session spares most of those compiles (a tiny autoencoder refit:
# 1.3 s -> 0.2 s). Set before anything imports JAX; removed when the session ends.
_JAX_CACHE = tempfile.mkdtemp(prefix="tumorboard-jax-cache-")
atexit.register(shutil.rmtree, _JAX_CACHE, ignore_errors=True)
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _JAX_CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

from tumorboard_synth.quickstart import write_quickstart

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def fast(spec: Path, bootstrap: int = 100, **evaluation: object) -> Path:
    """Shrink a quickstart spec's bootstrap (tests need the behaviour, not tight CIs)."""
    text = spec.read_text(encoding="utf-8")
    extra = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in evaluation.items())
    text = text.replace("[evaluation]\n", f"[evaluation]\nbootstrap = {bootstrap}\n{extra}", 1)
    spec.write_text(text)
    return spec


def set_key(spec: Path, key: str, value: str) -> Path:
    """Replace the first `key = ...` line of a spec."""
    text = re.sub(rf"(?m)^{re.escape(key)}\s*=.*$", f"{key} = {value}", spec.read_text(encoding="utf-8"), count=1)
    spec.write_text(text)
    return spec


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    """A 200-patient quickstart folder; returns the spec path (bootstrap shrunk)."""
    return fast(write_quickstart(tmp_path / "qs", patients=200, seed=1))

# The kit checks of the Flax components compile and train a network per check (5-13 s each on 2 cores):
# they run in the slow pass (`python -m pytest -q -m slow`, which CI runs); the default suite runs the
# kit on every other component.
# The omics autoencoder's kit runs on two configurations: the plain one stays in the default suite,
# the variational, supervised one with an output head (ids ending in 1]) joins the slow pass.
HEAVY_KIT_CHECKS = ("[imaging.cnn-check_", "[fusion.attention-check_")
HEAVY_SECOND_CONFIGURATION = ("[omics.autoencoder-check_", "[pathology.slides-check_")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        heavy = any(marker in item.nodeid for marker in HEAVY_KIT_CHECKS)
        second = any(marker in item.nodeid for marker in HEAVY_SECOND_CONFIGURATION) and item.nodeid.endswith("1]")
        if heavy or second:
            item.add_marker(pytest.mark.slow)


# the example third-party plugin has its own suite, run by test_third_party.py
# against a real install of the package
collect_ignore = ["third_party"]
