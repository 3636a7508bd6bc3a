"""A multi-layer omics autoencoder in Flax (linen), trained with optax.

Each layer has its own encoder into a shared latent; the joint latent is the
mean over the layers a patient has (a presence mask), so a missing layer
neither contributes to the latent nor is reconstructed. Optionally
variational, and optionally with a supervised head trained jointly on the
run's target (logistic, softmax, squared error, or Cox partial likelihood).

One jitted call trains a whole epoch (``lax.scan`` over its batches): no
Python between steps, which on a CPU costs as much as a step of this size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tumorboard.api import TrainSettings

from tumorboard_neural import fit_adamw, head_loss


class LayerAutoencoder(nn.Module):
    """Per-layer encoders and decoders around one masked joint latent, with an optional head."""

    dims: tuple[int, ...]
    hidden: tuple[int, ...]
    latent: int
    variational: bool
    head: int  # outputs of the supervised head; 0 = none

    @nn.compact
    def __call__(self, xs: tuple[jnp.ndarray, ...], present: jnp.ndarray, key: jnp.ndarray | None = None):
        mus, logvars = [], []
        for i, x in enumerate(xs):
            h = x
            for j, width in enumerate(self.hidden):
                h = nn.relu(nn.Dense(width, name=f"enc{i}_{j}")(h))
            mus.append(nn.Dense(self.latent, name=f"enc{i}_mu")(h))
            if self.variational:
                logvars.append(nn.Dense(self.latent, name=f"enc{i}_logvar")(h))
        weight = present / jnp.maximum(present.sum(axis=1, keepdims=True), 1.0)
        mu = sum(w[:, None] * m for w, m in zip(weight.T, mus, strict=True))
        logvar = sum(w[:, None] * v for w, v in zip(weight.T, logvars, strict=True)) if self.variational else None
        z = mu if (key is None or not self.variational) else mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
        recons = []
        for i, d in enumerate(self.dims):
            h = z
            for j, width in enumerate(reversed(self.hidden)):
                h = nn.relu(nn.Dense(width, name=f"dec{i}_{j}")(h))
            recons.append(nn.Dense(d, name=f"dec{i}_out")(h))
        head = nn.Dense(self.head, name="head")(z) if self.head else None
        return mu, logvar, tuple(recons), head


@dataclass
class TrainData:
    """Training arrays: per-layer values and observed-cell masks, layer presence, target."""

    xs: tuple[np.ndarray, ...]
    observed: tuple[np.ndarray, ...]
    present: np.ndarray
    target: np.ndarray  # binary/multiclass labels, regression values, or survival times
    event: np.ndarray  # survival events (ones otherwise)

    def __len__(self) -> int:
        return len(self.present)

    def take(self, rows: np.ndarray) -> TrainData:
        return TrainData(tuple(x[rows] for x in self.xs), tuple(o[rows] for o in self.observed),
                         self.present[rows], self.target[rows], self.event[rows])


@dataclass
class Settings:
    """How to train: loss weights, and the optimiser and stopping rule (``loop``)."""

    task: str  # "none" (no head), binary, multiclass, regression, survival
    beta: float = 1e-3
    head_weight: float = 1.0
    loop: TrainSettings = field(default_factory=TrainSettings)


def make_loss(model: LayerAutoencoder, settings: Settings) -> Callable:
    """The training loss of one batch: masked reconstruction, KL (variational), and the head's loss."""

    def loss_fn(params, batch, key):
        xs, observed, present, target, event = batch
        mu, logvar, recons, head = model.apply({"params": params}, xs, present, key)
        total = 0.0
        for i, (x, o, xr) in enumerate(zip(xs, observed, recons, strict=True)):
            mask = o * present[:, i:i + 1]  # cells measured, in layers the patient has
            total = total + jnp.sum(mask * (x - xr) ** 2) / jnp.maximum(mask.sum(), 1.0)
        anyone = (present.sum(axis=1) > 0).astype(jnp.float32)
        if logvar is not None:
            kl = -0.5 * jnp.sum(1 + logvar - mu**2 - jnp.exp(logvar), axis=1)
            total = total + settings.beta * jnp.sum(anyone * kl) / jnp.maximum(anyone.sum(), 1.0)
        if head is not None:
            total = total + settings.head_weight * head_loss(settings.task, head, target, event, anyone)
        return total

    return loss_fn


def train(model: LayerAutoencoder, settings: Settings, data: TrainData, validation: TrainData | None,
          seed: int, on_epoch: Callable[[int, float, float], None] | None = None) -> tuple[dict, dict]:
    """Fit with AdamW and early stopping on the validation loss; returns (best params, history)."""
    init_key = jax.random.split(jax.random.PRNGKey(seed))[1]
    sample = tuple(jnp.zeros((1, x.shape[1]), jnp.float32) for x in data.xs)
    params = model.init(init_key, sample, jnp.ones((1, len(data.xs)), jnp.float32))["params"]
    held_out = _arrays(validation) if validation is not None and len(validation) else None
    return fit_adamw(params, make_loss(model, settings), _arrays(data), held_out, settings.loop, seed, on_epoch)


def _arrays(data: TrainData) -> tuple:
    return (tuple(np.asarray(x, np.float32) for x in data.xs), tuple(np.asarray(o, np.float32) for o in data.observed),
            np.asarray(data.present, np.float32), np.asarray(data.target, np.float32), np.asarray(data.event, np.float32))


def encode(model: LayerAutoencoder, params: dict, xs: tuple[np.ndarray, ...], present: np.ndarray,
           chunk: int = 4096) -> tuple[np.ndarray, np.ndarray | None]:
    """(latent mean, head output) for any patients, in chunks."""
    apply = jax.jit(lambda p, x, m: model.apply({"params": p}, x, m, None))
    latents, heads = [], []
    for lo in range(0, len(present), chunk):
        mu, _, _, head = apply(params, tuple(jnp.asarray(x[lo:lo + chunk], jnp.float32) for x in xs),
                               jnp.asarray(present[lo:lo + chunk], jnp.float32))
        latents.append(np.asarray(mu))
        if head is not None:
            heads.append(np.asarray(head))
    latent = np.concatenate(latents) if latents else np.zeros((0, model.latent), np.float32)
    return latent, (np.concatenate(heads) if heads else None)


def template(model: LayerAutoencoder) -> dict:
    """Parameters of the right structure, for restoring saved ones."""
    sample = tuple(jnp.zeros((1, d), jnp.float32) for d in model.dims)
    return model.init(jax.random.PRNGKey(0), sample, jnp.ones((1, len(model.dims)), jnp.float32))["params"]
