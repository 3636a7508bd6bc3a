"""Imaging backbones in Flax (linen), 2-D or 3-D by the input's rank.

- ``mixer`` (default): patch embedding + MLP-Mixer blocks. Every layer is a
  matmul, which XLA runs near the CPU's matmul peak; XLA's CPU convolutions
  reach only a few per cent of it.
- ``resnet``: a small ResNet of standard convolutions, for when a GPU is present.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp


def patchify(x: jnp.ndarray, patch: int) -> jnp.ndarray:
    """(N, *spatial, C) -> (N, tokens, patch^d * C): non-overlapping patches as vectors (a reshape, no copy of work)."""
    n, spatial, c = x.shape[0], x.shape[1:-1], x.shape[-1]
    grid = [s // patch for s in spatial]
    x = x[(slice(None), *[slice(0, g * patch) for g in grid])]
    x = x.reshape(n, *[v for g in grid for v in (g, patch)], c)
    d = len(spatial)
    order = [0] + [1 + 2 * i for i in range(d)] + [2 + 2 * i for i in range(d)] + [1 + 2 * d]
    return x.transpose(order).reshape(n, math.prod(grid), patch**d * c)


class Mixer(nn.Module):
    """Patch embedding and MLP-Mixer blocks; returns (embedding, head output)."""

    patch: int
    width: int
    depth: int
    outputs: int

    @nn.compact
    def __call__(self, x: jnp.ndarray):
        tokens = nn.Dense(self.width, name="embed")(patchify(x, self.patch))
        count = tokens.shape[1]
        tokens = tokens + self.param("position", nn.initializers.normal(0.02), (count, self.width))
        for d in range(self.depth):
            mixed = nn.LayerNorm(name=f"norm{d}a")(tokens).transpose(0, 2, 1)
            mixed = nn.Dense(count, name=f"token{d}_out")(nn.gelu(nn.Dense(2 * count, name=f"token{d}_in")(mixed)))
            tokens = tokens + mixed.transpose(0, 2, 1)
            hidden = nn.gelu(nn.Dense(2 * self.width, name=f"channel{d}_in")(nn.LayerNorm(name=f"norm{d}b")(tokens)))
            tokens = tokens + nn.Dense(self.width, name=f"channel{d}_out")(hidden)
        embedding = nn.LayerNorm(name="norm_out")(tokens.mean(axis=1))
        return embedding, nn.Dense(self.outputs, name="head")(embedding)


class ResNet(nn.Module):
    """A small ResNet (basic blocks, stride-2 stages); returns (embedding, head output)."""

    width: int
    depth: int
    outputs: int

    @nn.compact
    def __call__(self, x: jnp.ndarray):
        d = x.ndim - 2
        k3, k1 = (3,) * d, (1,) * d
        h = nn.relu(nn.Conv(self.width, k3, name="stem")(x))
        width = self.width
        for stage in range(self.depth):
            stride = (1,) * d if stage == 0 else (2,) * d
            width = self.width * 2**stage
            shortcut = nn.Conv(width, k1, strides=stride, name=f"skip{stage}")(h)
            y = nn.relu(nn.GroupNorm(num_groups=min(8, width), name=f"gn{stage}a")(
                nn.Conv(width, k3, strides=stride, name=f"conv{stage}a")(h)))
            y = nn.GroupNorm(num_groups=min(8, width), name=f"gn{stage}b")(nn.Conv(width, k3, name=f"conv{stage}b")(y))
            h = nn.relu(y + shortcut)
        embedding = h.mean(axis=tuple(range(1, d + 1)))
        return embedding, nn.Dense(self.outputs, name="head")(embedding)


def backbone(name: str, patch: int, width: int, depth: int, outputs: int) -> nn.Module:
    if name == "mixer":
        return Mixer(patch, width, depth, outputs)
    return ResNet(width, depth, outputs)
