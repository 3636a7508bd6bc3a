"""Synthetic whole-slide tile embeddings: TRIDENT-style .h5 bags whose planted signal lives in a few tiles.

What a slide is (docs/synthetic-cohort.md): tiles on a grid (256-pixel tiles
at 20x), each a 64-dimensional "embedding" drawn around one of eight tissue
prototypes, plus a stain offset shared by the slide. In EGFR-mutant tumours
a contiguous region of 3-10% of the tiles carries the planted morphology: a
shift of ``SIGNAL_SHIFT`` along one fixed direction, which the prototypes do
not use. The slide-level mean barely moves (a few percent of tiles, under the
stain offsets), so mean pooling sees little of it, while a pool that can
attend to single tiles can find it: the point of attention MIL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DIM = 64
PROTOTYPES = 8
ENCODER = "tumorboard-synth-tiles-64"
SIGNAL_SHIFT = 4.0
STAIN_SD = 0.5
TILE = 256


def _tissue(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The cohort's tissue prototypes and the unit direction of the planted morphology."""
    rng = np.random.default_rng([seed, 7_000])
    direction = rng.standard_normal(DIM)
    direction /= np.linalg.norm(direction)
    prototypes = rng.standard_normal((PROTOTYPES, DIM)) * 1.5
    prototypes -= np.outer(prototypes @ direction, direction)  # the signal direction is the morphology's own
    return prototypes, direction


def slide(rng: np.random.Generator, seed: int, mutant: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features tiles x DIM float32, coords tiles x 2, signal mask) of one slide."""
    prototypes, direction = _tissue(seed)
    n = int(rng.integers(80, 241))
    width = int(np.ceil(np.sqrt(n)))
    grid = np.stack([np.arange(n) % width, np.arange(n) // width], axis=1)
    mix = rng.dirichlet(np.ones(PROTOTYPES))
    kind = rng.choice(PROTOTYPES, n, p=mix)
    features = prototypes[kind] + rng.standard_normal((n, DIM)) + rng.normal(0, STAIN_SD, DIM)
    signal = np.zeros(n, bool)
    if mutant:
        k = max(2, int(round(rng.uniform(0.03, 0.10) * n)))
        centre = grid[rng.integers(n)]
        signal[np.argsort(((grid - centre) ** 2).sum(axis=1), kind="stable")[:k]] = True  # one contiguous region
        features[signal] += SIGNAL_SHIFT * direction
    return features.astype(np.float32), (grid * TILE).astype(np.int64), signal


def write_h5(path: Path, features: np.ndarray, coords: np.ndarray) -> None:
    """A bag as TRIDENT writes it: datasets features and coords, with the encoder and magnification."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=features).attrs["encoder"] = ENCODER
        c = f.create_dataset("coords", data=coords)
        c.attrs["patch_size"] = TILE
        c.attrs["target_magnification"] = 20
        c.attrs["level0_magnification"] = 40


def build(rng: np.random.Generator, seed: int, ids: list[str], egfr: np.ndarray, stage: Path
          ) -> tuple[list[dict], list[dict]]:
    """Write the slides of a chunk of patients; returns manifest rows and ground-truth tile rows."""
    manifest, truth = [], []
    for pid, mutant in zip(ids, egfr, strict=True):
        for k in range(1 if rng.random() < 0.7 else 2):
            features, coords, signal = slide(rng, seed, bool(mutant))
            slide_id = f"{pid}-S{k + 1}"
            relative = Path("slides") / f"{slide_id}.h5"
            write_h5(stage / "pathology" / relative, features, coords)
            manifest.append({"patient_id": pid, "slide": str(relative), "slide_id": slide_id})
            truth.extend({"slide_id": slide_id, "tile": t, "signal": bool(s)} for t, s in enumerate(signal))
    return manifest, truth
