"""Training speed of the default omics.autoencoder against this machine's float32 matmul peak.

    python benchmarks/omics_autoencoder.py
    python benchmarks/omics_autoencoder.py --genes 5000 --patients 2000 --batch 256 --epochs 30

Trains the default architecture (one layer of 5,000 genes, hidden [256],
latent 32; the plugin's own training loop, one jitted ``lax.scan`` per epoch)
on 2,000 synthetic patients with a planted low-rank structure, and measures:
compile time (first epoch minus a steady epoch), samples/s over the steady
epochs, achieved GFLOP/s (matmul FLOPs of forward and backward, counted
exactly for this network), and that as a fraction of a float32 matmul peak
measured in the same process with a jitted JAX matmul.
Last line: ``omics_ae peak_fraction=X samples_per_s=Y``.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np


def matmul_peak(n: int = 2048, repeats: int = 20) -> float:
    """Best GFLOP/s of a jitted float32 n x n matmul."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    f = jax.jit(lambda x, y: x @ y)
    f(a, b).block_until_ready()
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        f(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def train_flops(dims: list[int], input_gradient: bool) -> float:
    """Matmul FLOPs of one training sample through Dense layers of widths ``dims`` (input first).

    Forward 2*in*out per layer; backward the weight gradient (2*in*out) for
    every layer, and the input gradient for every layer but the first unless
    ``input_gradient`` (the data needs none, and XLA does not compute it; a
    decoder's input is the latent, which does).
    """
    pairs = list(zip(dims[:-1], dims[1:], strict=True))
    forward = sum(2 * i * o for i, o in pairs)
    return 3 * forward - (0 if input_gradient else 2 * pairs[0][0] * pairs[0][1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--genes", type=int, default=5000)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()

    from tumorboard.api import TrainSettings
    from tumorboard_omics.autoencoder import (
        LayerAutoencoder,
        Settings,
        TrainData,
        train,
    )
    from tumorboard_omics.modality import OmicsAutoencoder

    defaults = OmicsAutoencoder.Options.model_fields
    hidden, latent = list(defaults["hidden"].default), defaults["latent"].default
    rng = np.random.default_rng(0)
    programs = rng.normal(size=(args.patients, 8))
    x = (programs @ rng.normal(size=(8, args.genes)) + rng.normal(0, 1, (args.patients, args.genes))).astype(np.float32)
    x = (x - x.mean(0)) / x.std(0)
    data = TrainData((x,), (np.ones_like(x),), np.ones((args.patients, 1), np.float32),
                     np.zeros(args.patients, np.float32), np.ones(args.patients, np.float32))
    model = LayerAutoencoder((args.genes,), tuple(hidden), latent, False, 0)
    settings = Settings("none", loop=TrainSettings(batch_size=args.batch, epochs=args.epochs, patience=args.epochs + 1))

    stamps: list[float] = []
    start = time.perf_counter()
    train(model, settings, data, None, seed=0, on_epoch=lambda *_: stamps.append(time.perf_counter()))
    first = stamps[0] - start
    steady = np.diff(stamps)
    epoch_s = float(np.median(steady))
    samples = -(-args.patients // args.batch) * args.batch  # the last batch is topped up to full size
    samples_per_s = samples / epoch_s
    # encoder genes -> hidden -> latent, decoder latent -> reversed(hidden) -> genes
    flops = train_flops([args.genes, *hidden, latent], False) + train_flops([latent, *reversed(hidden), args.genes], True)
    achieved = flops * samples_per_s / 1e9
    peak = matmul_peak()
    print(f"architecture: {args.genes} genes -> {hidden} -> latent {latent} -> {hidden[::-1]} -> {args.genes}; "
          f"batch {args.batch}; {args.patients} patients; {args.epochs} epochs")
    print(f"compile (first epoch minus a steady one): {first - epoch_s:.2f} s")
    print(f"steady epoch: {epoch_s * 1000:.1f} ms (median of {len(steady)}), {samples_per_s:,.0f} samples/s")
    print(f"training FLOPs per sample: {flops / 1e6:.2f} M; achieved {achieved:.1f} GFLOP/s")
    print(f"float32 matmul peak (jitted 2048^3): {peak:.1f} GFLOP/s on {jax.devices()[0].platform}")
    print(f"omics_ae peak_fraction={achieved / peak:.2f} samples_per_s={samples_per_s:.0f}")


if __name__ == "__main__":
    main()
