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
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization


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


def cox_loss(risk: jnp.ndarray, time: jnp.ndarray, event: jnp.ndarray, weight: jnp.ndarray) -> jnp.ndarray:
    """Negative Cox partial log-likelihood (Breslow), averaged over events; ``weight`` masks patients out."""
    order = jnp.argsort(-time)
    r, e, w = risk[order], event[order] * weight[order], weight[order]
    # log of the summed hazard over each risk set (everyone with a later or equal time)
    masked = jnp.where(w > 0, r, -jnp.inf)
    log_risk_set = jax.lax.cumlogsumexp(masked)
    return -jnp.sum(e * (r - log_risk_set)) / jnp.maximum(e.sum(), 1.0)


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
    """How to train: loss weights, optimiser, epochs, early stopping."""

    task: str  # "none" (no head), binary, multiclass, regression, survival
    beta: float = 1e-3
    head_weight: float = 1.0
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    epochs: int = 200
    patience: int = 20


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
            n = jnp.maximum(anyone.sum(), 1.0)
            if settings.task == "binary":
                term = jnp.sum(anyone * optax.sigmoid_binary_cross_entropy(head[:, 0], target)) / n
            elif settings.task == "multiclass":
                term = jnp.sum(anyone * optax.softmax_cross_entropy_with_integer_labels(head, target.astype(jnp.int32))) / n
            elif settings.task == "regression":
                term = jnp.sum(anyone * (head[:, 0] - target) ** 2) / n
            else:
                term = cox_loss(head[:, 0], target, event, anyone)
            total = total + settings.head_weight * term
        return total

    return loss_fn


def _batches(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """One epoch's batches (n_batches x size): a permutation, the last batch topped up from a second one."""
    count = -(-n // size)
    order = np.concatenate([rng.permutation(n), rng.permutation(n)])[: count * size] if count * size > n else rng.permutation(n)
    return order.reshape(count, size).astype(np.int32)


def train(model: LayerAutoencoder, settings: Settings, data: TrainData, validation: TrainData | None,
          seed: int, on_epoch: Callable[[int, float, float], None] | None = None) -> tuple[dict, dict]:
    """Fit with AdamW and early stopping on the validation loss; returns (best params, history)."""
    key = jax.random.PRNGKey(seed)
    key, init_key = jax.random.split(key)
    batch_size = min(settings.batch_size, len(data))
    sample = tuple(jnp.zeros((1, x.shape[1]), jnp.float32) for x in data.xs)
    params = model.init(init_key, sample, jnp.ones((1, len(data.xs)), jnp.float32))["params"]
    tx = optax.adamw(settings.learning_rate, weight_decay=settings.weight_decay)
    opt_state = tx.init(params)
    loss_fn = make_loss(model, settings)
    arrays = _device(data)

    @jax.jit
    def epoch(params, opt_state, order, key):
        def step(carry, idx):
            params, opt_state, key = carry
            key, sub = jax.random.split(key)
            batch = jax.tree.map(lambda a: a[idx], arrays)
            loss, grads = jax.value_and_grad(loss_fn)(params, batch, sub)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, key), loss

        (params, opt_state, key), losses = jax.lax.scan(step, (params, opt_state, key), order)
        return params, opt_state, losses.mean()

    evaluate = jax.jit(lambda params, batch: loss_fn(params, batch, None))
    held_out = _device(validation) if validation is not None and len(validation) else None
    rng = np.random.default_rng(seed)
    best, best_loss, waited = params, np.inf, 0
    history = {"train": [], "validation": [], "best_epoch": 0}
    for e in range(settings.epochs):
        key, sub = jax.random.split(key)
        params, opt_state, train_loss = epoch(params, opt_state, _batches(rng, len(data), batch_size), sub)
        val_loss = float(evaluate(params, held_out)) if held_out is not None else float(train_loss)
        history["train"].append(float(train_loss))
        history["validation"].append(val_loss)
        if on_epoch is not None:
            on_epoch(e, float(train_loss), val_loss)
        if not np.isfinite(val_loss):
            break
        if val_loss < best_loss - 1e-6:
            best, best_loss, waited, history["best_epoch"] = params, val_loss, 0, e
        else:
            waited += 1
            if waited >= settings.patience:
                break
    return best, history


def _device(data: TrainData) -> tuple:
    return (tuple(jnp.asarray(x, jnp.float32) for x in data.xs), tuple(jnp.asarray(o, jnp.float32) for o in data.observed),
            jnp.asarray(data.present, jnp.float32), jnp.asarray(data.target, jnp.float32), jnp.asarray(data.event, jnp.float32))


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


def params_to_bytes(params: dict) -> np.ndarray:
    """Flax's msgpack serialisation (no pickle) as a uint8 array for the run directory."""
    return np.frombuffer(serialization.to_bytes(params), dtype=np.uint8).copy()


def params_from_bytes(model: LayerAutoencoder, blob: np.ndarray) -> dict:
    sample = tuple(jnp.zeros((1, d), jnp.float32) for d in model.dims)
    template = model.init(jax.random.PRNGKey(0), sample, jnp.ones((1, len(model.dims)), jnp.float32))["params"]
    return serialization.from_bytes(template, np.asarray(blob, dtype=np.uint8).tobytes())
