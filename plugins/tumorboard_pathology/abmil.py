"""Gated-attention multiple-instance pooling (ABMIL; Ilse, Tomczak and Welling, ICML 2018) in Flax.

A patient's tiles (a bag) pass through one dense layer; a gated attention
score per tile, ``w . (tanh(V h) * sigmoid(U h))``, is turned into weights
by a softmax over the bag's real tiles (padding is masked out); the weighted
mean of the tiles is the patient's embedding, and a head on it is trained on
the run's target with the shared training loop (tumorboard_neural). Bags are
padded to a common size for batching; at inference each bag is scored whole,
padded to the next power of two so a handful of compiled shapes serve any
bag size.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class GatedAttentionPool(nn.Module):
    """tiles (batch x tiles x dim), mask (batch x tiles) -> (embedding, head, attention weights)."""

    hidden: int
    attention: int
    head: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, tiles: jnp.ndarray, mask: jnp.ndarray, key: jnp.ndarray | None = None):
        h = nn.relu(nn.Dense(self.hidden, name="embed")(tiles))
        if key is not None and self.dropout > 0:
            keep = jax.random.bernoulli(key, 1.0 - self.dropout, h.shape)
            h = jnp.where(keep, h / (1.0 - self.dropout), 0.0)
        gate = jnp.tanh(nn.Dense(self.attention, name="attention_v")(h)) * nn.sigmoid(
            nn.Dense(self.attention, name="attention_u")(h))
        score = nn.Dense(1, name="attention_w")(gate)[..., 0]
        score = jnp.where(mask > 0, score, -1e30)
        weights = jax.nn.softmax(score, axis=-1) * (mask.sum(axis=-1, keepdims=True) > 0)
        embedding = jnp.einsum("bt,bth->bh", weights, h)
        return embedding, nn.Dense(self.head, name="head")(embedding), weights


def padded_bags(features: np.ndarray, bags: list[np.ndarray], size: int, rng: np.random.Generator | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(bags x size x dim tiles, bags x size mask); a bag larger than ``size`` keeps a random sample
    of its tiles (``rng``) or, without one, its first ``size``."""
    out = np.zeros((len(bags), size, features.shape[1]), np.float32)
    mask = np.zeros((len(bags), size), np.float32)
    for b, tiles in enumerate(bags):
        if len(tiles) > size:
            tiles = np.sort(rng.choice(tiles, size, replace=False)) if rng is not None else tiles[:size]
        out[b, :len(tiles)] = features[tiles]
        mask[b, :len(tiles)] = 1.0
    return out, mask


def bucket(n: int, smallest: int = 64) -> int:
    """The next power of two at or above ``n`` (at least ``smallest``)."""
    return max(smallest, 1 << max(0, int(np.ceil(np.log2(max(n, 1))))))


def pool_bags(model: GatedAttentionPool, params, features, bags: list[np.ndarray],
              max_cells: int = 1 << 25) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(embeddings, heads, per-bag attention over all its tiles) for every bag, whole.

    ``features`` (all tiles x dim, numpy or already a JAX array) goes to the
    device once; each call gathers its bags' tiles there by index, so no
    padded copy of the tiles is ever built on the host. Bags of similar size go
    through together (same padded size), at most ``max_cells`` tile-dims per
    call so memory stays bounded for slides of tens of thousands of tiles.
    """
    features = jnp.asarray(features)

    @jax.jit
    def apply(p, tiles, index, mask):  # tiles as an argument: closed over, it would be baked into the program
        return model.apply({"params": p}, tiles[index], mask, None)

    embeddings = np.zeros((len(bags), model.hidden), np.float32)
    heads = np.zeros((len(bags), model.head), np.float32)
    attention: list[np.ndarray] = [np.zeros(0, np.float32)] * len(bags)
    sizes = np.array([bucket(len(b)) for b in bags])
    for size in np.unique(sizes):
        members = np.flatnonzero(sizes == size)
        # bags per call: a power of two (so a few compiled shapes serve every cohort), within max_cells
        per_call = min(bucket(len(members), 1), 1 << int(np.log2(max(1, max_cells // (int(size) * features.shape[1])))))
        for lo in range(0, len(members), per_call):
            chunk = members[lo:lo + per_call]
            index = np.zeros((per_call, int(size)), np.int32)
            mask = np.zeros((per_call, int(size)), np.float32)
            for k, i in enumerate(chunk):
                index[k, :len(bags[i])] = bags[i]
                mask[k, :len(bags[i])] = 1.0
            e, h, w = (np.asarray(a)[:len(chunk)] for a in apply(params, features, index, mask))
            embeddings[chunk], heads[chunk] = e, h
            for k, i in enumerate(chunk):
                attention[i] = w[k, :len(bags[i])]
    return embeddings, heads, attention


def template(model: GatedAttentionPool, dim: int):
    """Parameters of the right structure, for restoring saved ones."""
    return jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 2, dim)), jnp.ones((1, 2)))["params"]
