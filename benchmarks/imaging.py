"""Imaging speed on this machine: preprocessing volumes/s and imaging-net training against the matmul peak.

    python benchmarks/imaging.py
    python benchmarks/imaging.py --size 32 --batch 64 --epochs 6

1. Preprocessing: synthetic CT volumes and masks (NIfTI) read, checked,
   resampled to 1.5 mm, cropped around the tumour, without the cache:
   volumes/s.
2. Training each imaging.cnn backbone at its default size (3-D input
   size^3, batch ``--batch``) with the plugin's own training loop (one jitted
   ``lax.scan`` per epoch): samples/s, and achieved GFLOP/s from XLA's own
   cost analysis of the compiled training step, as a fraction of a float32
   matmul peak measured in the same process with a jitted JAX matmul.
Last line: ``imaging cnn_peak_fraction=X preprocess_vps=Y`` (X for the default backbone).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl

from omics_autoencoder import matmul_peak


def preprocess_rate(count: int) -> float:
    from tumorboard_synth import SynthOptions, generate
    from tumorboard_imaging.preprocess import Preparation, prepare

    with tempfile.TemporaryDirectory() as tmp:
        cohort = generate(Path(tmp) / "c", SynthOptions(patients=count, seed=1))
        rows = pl.read_csv(cohort / "imaging" / "manifest.csv").filter(pl.col("timepoint") == "baseline")
        start = time.perf_counter()
        for image, mask in rows.select("image", "mask").iter_rows():
            prepare(cohort / image, cohort / mask, Preparation(spacing=(1.5, 1.5, 1.5), crop_margin_mm=20.0), None)
        return rows.height / (time.perf_counter() - start)


def train_rate(backbone: str, size: int, batch: int, epochs: int, patients: int) -> tuple[float, float, float]:
    """(samples/s, GFLOP per sample, compile s) for one backbone at the plugin's default options."""
    from tumorboard.api import TrainSettings
    from tumorboard_neural import fit_adamw, head_loss
    from tumorboard_imaging.cnn import ImagingCNN
    from tumorboard_imaging.networks import backbone as make

    defaults = ImagingCNN.Options.model_fields
    net = make(backbone, defaults["patch"].default, defaults["width"].default if backbone == "mixer" else 16,
               defaults["depth"].default, 1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(patients, size, size, size, 1)).astype(np.float32)
    y = (x[:, size // 2 - 4:size // 2 + 4].mean(axis=(1, 2, 3, 4)) > 0).astype(np.float32)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, size, size, size, 1)))["params"]

    def loss_fn(p, b, key):
        _, head = net.apply({"params": p}, b[0])
        return head_loss("binary", head, b[1], b[1], jnp.ones(b[0].shape[0]))

    sample = (jnp.asarray(x[:batch]), jnp.asarray(y[:batch]))
    cost = jax.jit(jax.value_and_grad(loss_fn)).lower(params, sample, None).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost["flops"]) / batch
    stamps: list[float] = []
    start = time.perf_counter()
    fit_adamw(params, loss_fn, (x, y), None, TrainSettings(batch_size=batch, epochs=epochs, patience=epochs + 1), 0,
              on_epoch=lambda *_: stamps.append(time.perf_counter()))
    steady = float(np.median(np.diff(stamps)))
    samples = -(-patients // batch) * batch
    return samples / steady, flops / 1e9, stamps[0] - start - steady


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--patients", type=int, default=512)
    parser.add_argument("--volumes", type=int, default=12)
    parser.add_argument("--no-resnet", action="store_true", help="Skip the (slow on CPUs) resnet measurement.")
    args = parser.parse_args()
    vps = preprocess_rate(args.volumes)
    print(f"preprocessing (read, check, resample to 1.5 mm, crop): {vps:.1f} volumes/s")
    peak = matmul_peak()
    print(f"float32 matmul peak (jitted 2048^3): {peak:.1f} GFLOP/s on {jax.devices()[0].platform}")
    fractions = {}
    for name in ("mixer", "resnet"):
        # XLA's CPU convolutions are slow: the resnet gets two one-step epochs of half a batch (about 7 minutes
        # on 2 cores, compile included); --no-resnet leaves it out
        small = name == "resnet"
        if small and args.no_resnet:
            continue
        batch = max(args.batch // 2, 1) if small else args.batch
        rate, gflop, compile_s = train_rate(name, args.size, batch, 2 if small else args.epochs,
                                            2 * batch if small else args.patients)
        fractions[name] = rate * gflop / peak
        print(f"{name:7s} {args.size}^3 batch {batch}: {rate:8.2f} samples/s, {gflop * 1e3:.1f} MFLOP/sample "
              f"(XLA cost analysis), {rate * gflop:.1f} GFLOP/s = {fractions[name]:.2f} of peak; compile {compile_s:.1f} s")
    print(f"imaging cnn_peak_fraction={fractions['mixer']:.2f} preprocess_vps={vps:.1f}")


if __name__ == "__main__":
    main()
