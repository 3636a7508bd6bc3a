"""Shared pieces for plugins that train JAX networks: task losses and one AdamW training loop.

A built-in library package (it registers no component): the omics autoencoder,
the imaging networks and attention fusion import it, and a third-party network
plugin may too (``pip install "tumorboard[neural]"``). Those plugins import it
inside ``fit``, so that listing plugins never imports JAX. The loop trains a whole epoch in one jitted call
(``lax.scan`` over its batches) — on a CPU a Python call per step costs about
as much as a step of a small network — and stops early on a validation loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tumorboard.api import TrainSettings, train_settings


def cox_loss(risk: jnp.ndarray, time: jnp.ndarray, event: jnp.ndarray, weight: jnp.ndarray) -> jnp.ndarray:
    """Negative Cox partial log-likelihood (Breslow), averaged over events; ``weight`` 0 leaves a patient out."""
    order = jnp.argsort(-time)
    r, e, w = risk[order], event[order] * weight[order], weight[order]
    # log of the summed hazard over each risk set (everyone with a later or equal time)
    log_risk_set = jax.lax.cumlogsumexp(jnp.where(w > 0, r, -jnp.inf))
    return -jnp.sum(e * (r - log_risk_set)) / jnp.maximum(e.sum(), 1.0)


def head_loss(task: str, head: jnp.ndarray, target: jnp.ndarray, event: jnp.ndarray, weight: jnp.ndarray) -> jnp.ndarray:
    """The loss of a prediction head for a run's task, averaged over patients with ``weight`` 1.

    binary: logistic (one logit); multiclass: softmax cross-entropy (class
    codes in ``target``); regression: squared error; survival: Cox partial
    likelihood of the risk (``target`` = times).
    """
    n = jnp.maximum(weight.sum(), 1.0)
    if task == "binary":
        return jnp.sum(weight * optax.sigmoid_binary_cross_entropy(head[:, 0], target)) / n
    if task == "multiclass":
        return jnp.sum(weight * optax.softmax_cross_entropy_with_integer_labels(head, target.astype(jnp.int32))) / n
    if task == "regression":
        return jnp.sum(weight * (head[:, 0] - target) ** 2) / n
    if task == "survival":
        return cox_loss(head[:, 0], target, event, weight)
    raise ValueError(f"no head loss for task {task!r}")


def head_outputs(task: str, n_classes: int) -> int:
    """Width of a prediction head for the task."""
    return n_classes if task == "multiclass" else 1


def epoch_batches(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """One epoch's batches (n_batches x size): a permutation, the last batch topped up from a second one."""
    count = -(-n // size)
    order = rng.permutation(n) if count * size == n else np.concatenate([rng.permutation(n), rng.permutation(n)])[: count * size]
    return order.reshape(count, size).astype(np.int32)


def fit_adamw(params: Any, loss_fn: Callable, data: Any, validation: Any | None, settings: TrainSettings, seed: int,
              on_epoch: Callable[[int, float, float], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """Train ``params`` with AdamW, keeping the parameters of the best validation loss.

    ``data`` and ``validation`` are pytrees of arrays with one row per patient
    (leading axis); ``loss_fn(params, batch, key)`` is a batch's loss, with
    ``key`` None when evaluating (no sampling, no dropout). Without a
    validation set the training loss decides. Deterministic under ``seed``.
    """
    n = len(jax.tree.leaves(data)[0])
    key = jax.random.PRNGKey(seed)
    tx = optax.adamw(settings.learning_rate, weight_decay=settings.weight_decay)
    opt_state = tx.init(params)
    data = jax.tree.map(jnp.asarray, data)

    @jax.jit
    def epoch(params, opt_state, order, key):
        def step(carry, idx):
            params, opt_state, key = carry
            key, sub = jax.random.split(key)
            batch = jax.tree.map(lambda a: a[idx], data)
            loss, grads = jax.value_and_grad(loss_fn)(params, batch, sub)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, key), loss

        (params, opt_state, key), losses = jax.lax.scan(step, (params, opt_state, key), order)
        return params, opt_state, losses.mean()

    evaluate = jax.jit(lambda params, batch: loss_fn(params, batch, None))
    held_out = jax.tree.map(jnp.asarray, validation) if validation is not None else None
    rng = np.random.default_rng(seed)
    batch_size = min(settings.batch_size, n)
    best, best_loss, waited = params, np.inf, 0
    history: dict[str, Any] = {"train": [], "validation": [], "best_epoch": 0}
    for e in range(settings.epochs):
        key, sub = jax.random.split(key)
        params, opt_state, train_loss = epoch(params, opt_state, epoch_batches(rng, n, batch_size), sub)
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


def params_to_bytes(params: Any) -> np.ndarray:
    """Flax's msgpack serialisation (no pickle) as a uint8 array, for a component's saved state."""
    from flax import serialization

    return np.frombuffer(serialization.to_bytes(params), dtype=np.uint8).copy()


def params_from_bytes(template: Any, blob: np.ndarray) -> Any:
    """Parameters saved by ``params_to_bytes``, restored into the structure of ``template``."""
    from flax import serialization

    return serialization.from_bytes(template, np.asarray(blob, dtype=np.uint8).tobytes())


def split_validation(rows: np.ndarray, fraction: float, seed: int, minimum: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation rows) carved from training rows; no validation under ``minimum`` patients."""
    shuffled = np.random.default_rng(seed).permutation(rows)
    n_val = int(round(fraction * len(rows))) if len(rows) >= minimum else 0
    return np.sort(shuffled[n_val:]), np.sort(shuffled[:n_val])


def fit_network(component: Any, params: Any, loss_fn: Callable, take: Callable[[np.ndarray], Any], rows: np.ndarray,
                options: Any) -> dict[str, Any]:
    """Train a component's network on ``rows`` and keep the result on it.

    Carves the validation rows (``options.validation_fraction``) off ``rows``,
    trains with ``fit_adamw`` on ``take(rows)`` batches' data under the
    options' training settings and the component's seed, and sets the fitted
    state every network component saves: ``params_`` (msgpack bytes),
    ``best_epoch_``, ``epochs_run_`` (and ``_params``, the live parameters).
    Returns the training history.
    """
    fit_rows, val_rows = split_validation(rows, options.validation_fraction, component.seed)
    params, history = fit_adamw(params, loss_fn, take(fit_rows), take(val_rows) if len(val_rows) else None,
                                train_settings(options), component.seed)
    component.params_ = params_to_bytes(params)
    component.best_epoch_ = int(history["best_epoch"])
    component.epochs_run_ = len(history["train"])
    component._params = params
    return history


def integrated_gradients(fn: Callable[[Any], jnp.ndarray], x: Any, baseline: Any | None = None,
                         steps: int = 32) -> Any:
    """Integrated gradients (Sundararajan et al., 2017) of a function giving one value per sample.

    ``fn`` maps a batch (an array, or a pytree of arrays sharing the leading
    sample axis) to one value per sample, each sample's value depending on that
    sample only. The path integral from ``baseline`` (zeros by default: the
    training mean of standardised inputs) to ``x`` is a midpoint sum over
    ``steps`` points; per sample the attributions add up to
    fn(x) - fn(baseline) up to that discretisation. Returns x's structure.
    """
    baseline = jax.tree.map(jnp.zeros_like, x) if baseline is None else baseline
    grad = jax.grad(lambda z: fn(z).sum())  # samples are independent: the sum's gradient is each one's

    def body(total, alpha):
        point = jax.tree.map(lambda b, v: b + alpha * (v - b), baseline, x)
        return jax.tree.map(jnp.add, total, grad(point)), None

    alphas = (jnp.arange(steps, dtype=jnp.float32) + 0.5) / steps
    total, _ = jax.lax.scan(body, jax.tree.map(jnp.zeros_like, x), alphas)
    return jax.tree.map(lambda t, v, b: t / steps * (v - b), total, x, baseline)


def head_score(task: str, head: jnp.ndarray) -> jnp.ndarray:
    """One value per sample from a network head, for attributions: the logit, value or risk;
    for multiclass heads, the log-probability of the class each sample is predicted to be."""
    if head.shape[-1] == 1:
        return head[:, 0]
    log_p = jax.nn.log_softmax(head, axis=-1)
    return jnp.take_along_axis(log_p, jnp.argmax(jax.lax.stop_gradient(head), axis=-1)[:, None], axis=-1)[:, 0]
