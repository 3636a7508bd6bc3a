"""``fusion.attention``: intermediate fusion — attention across the modalities each patient has (Flax)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from pydantic import Field, PositiveInt

from tumorboard.api import ComponentError, FeatureBlock, Fusion, Target, train_settings, training_options

from .checks import check_fit_inputs, check_transform_inputs
from .concat import ConcatFusion


def _network(dims: tuple[int, ...], width: int, heads: int, depth: int, outputs: int):
    import flax.linen as nn
    import jax.numpy as jnp

    class ModalityAttention(nn.Module):
        """Per-modality projections to tokens, masked self-attention over present modalities, pooled."""

        @nn.compact
        def __call__(self, xs, present):
            tokens = jnp.stack([nn.Dense(width, name=f"project{m}")(x) for m, x in enumerate(xs)], axis=1)
            tokens = tokens + self.param("modality_embedding", nn.initializers.normal(0.02), (len(dims), width))
            mask = present[:, None, :, None] * present[:, None, None, :]  # (batch, 1 head, query, key)
            for d in range(depth):
                attended = nn.MultiHeadDotProductAttention(heads, qkv_features=width, name=f"attention{d}")(
                    tokens, tokens, mask=mask > 0)
                tokens = nn.LayerNorm(name=f"norm{d}a")(tokens + attended)
                hidden = nn.Dense(2 * width, name=f"mlp{d}_in")(tokens)
                tokens = nn.LayerNorm(name=f"norm{d}b")(tokens + nn.Dense(width, name=f"mlp{d}_out")(nn.gelu(hidden)))
            weight = present / jnp.maximum(present.sum(axis=1, keepdims=True), 1.0)
            fused = jnp.einsum("bm,bmw->bw", weight, tokens)  # mean over the modalities present
            return fused, nn.Dense(outputs, name="head")(fused)

    return ModalityAttention()


class AttentionFusion(Fusion):
    """Intermediate fusion: attention across the modalities a patient has, trained on the run's task.

    Each modality's block (standardised with training statistics, missing
    values at the training mean) is projected to a token of a shared width,
    plus a learned modality embedding; self-attention runs over the tokens of
    the modalities present (absent ones are masked out of every attention
    weight and of the pooling), and the mean of the attended tokens is the
    fused embedding. A head on it is trained with optax on the run's target
    (logistic, softmax, squared error or Cox partial likelihood), with
    modality dropout (present modalities hidden at random, never all) so
    the network does not lean on one modality. Outputs the embedding and,
    by default, the head's prediction as one more feature.
    """

    name = "fusion.attention"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})
    requires = ("jax", "flax", "optax")
    install = 'pip install "tumorboard[neural]"'

    class Options(training_options(batch_size=128, weight_decay=1e-3)):
        width: PositiveInt = Field(32, description="Shared token width (the fused embedding's size).")
        heads: PositiveInt = Field(4, description="Attention heads (width must be divisible by it).")
        depth: PositiveInt = Field(1, description="Attention blocks.")
        modality_dropout: float = Field(0.2, ge=0, lt=1, description="Chance of hiding each present modality in a training step.")
        output_head: bool = Field(True, description="Add the head's prediction as a feature.")

    def _net(self):
        from tumorboard_neural import head_outputs

        if self.options.width % self.options.heads:
            raise ComponentError(f"{self.name}: width {self.options.width} is not divisible by heads {self.options.heads}")
        return _network(tuple(self.dims_), self.options.width, self.options.heads, self.options.depth,
                        head_outputs(self.kind_, self.n_classes_))

    def _inputs(self, blocks: Sequence[FeatureBlock]) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        xs = tuple(np.asarray(scaler.transform([b]).values, np.float32) for scaler, b in zip(self.scalers_, blocks, strict=True))
        present = np.stack([b.presence for b in blocks], axis=1).astype(np.float32)
        return xs, present

    def fit(self, blocks: Sequence[FeatureBlock], y: Target) -> Self:
        import jax
        import jax.numpy as jnp

        from tumorboard_neural import fit_adamw, head_loss, params_to_bytes, split_validation

        check_fit_inputs(self.name, blocks, y)
        o = self.options
        self.kind_, self.n_classes_ = y.kind, y.n_classes
        self.modalities_ = [b.modality for b in blocks]
        self.feature_names_ = [list(b.feature_names) for b in blocks]
        self.dims_ = [len(b.feature_names) for b in blocks]
        self.scalers_ = [ConcatFusion(presence_indicators=False).fit([b], y) for b in blocks]
        xs, present = self._inputs(blocks)
        target = np.asarray(y.values, np.float32)
        if y.kind == "regression":
            self.target_scale_ = np.array([target.mean(), target.std() or 1.0])
            target = (target - self.target_scale_[0]) / self.target_scale_[1]
        event = np.asarray(y.event if y.event is not None else np.ones(len(y)), np.float32)
        net = self._net()
        params = net.init(jax.random.PRNGKey(self.seed), tuple(jnp.zeros((1, d)) for d in self.dims_),
                          jnp.ones((1, len(blocks))))["params"]
        drop = o.modality_dropout

        def loss_fn(params, batch, key):
            xs_b, present_b, target_b, event_b = batch
            if key is not None and drop > 0:
                keep = jax.random.bernoulli(key, 1 - drop, present_b.shape).astype(jnp.float32) * present_b
                # never hide every modality of a patient: keep the original row then
                present_b = jnp.where(keep.sum(axis=1, keepdims=True) > 0, keep, present_b)
            _, head = net.apply({"params": params}, xs_b, present_b)
            return head_loss(self.kind_, head, target_b, event_b, (present_b.sum(axis=1) > 0).astype(jnp.float32))

        rows = np.flatnonzero(present.sum(axis=1) > 0)
        fit_rows, val_rows = split_validation(rows, o.validation_fraction, self.seed)
        take = lambda r: (tuple(x[r] for x in xs), present[r], target[r], event[r])  # noqa: E731
        params, history = fit_adamw(params, loss_fn, take(fit_rows), take(val_rows) if len(val_rows) else None,
                                    train_settings(o), self.seed)
        self.params_ = params_to_bytes(params)
        self.best_epoch_ = int(history["best_epoch"])
        self._params = params
        return self

    def set_state(self, state: dict[str, Any]) -> None:
        scalers = []
        for s in state.pop("scalers_"):
            scaler = ConcatFusion(presence_indicators=False)
            scaler.set_state(s)
            scalers.append(scaler)
        super().set_state(state)
        self.scalers_ = scalers
        self._params = None

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["scalers_"] = [s.get_state() for s in self.scalers_]
        return state

    def transform(self, blocks: Sequence[FeatureBlock]) -> FeatureBlock:
        import jax
        import jax.numpy as jnp

        from tumorboard_neural import params_from_bytes

        self.check_is_fitted()
        check_transform_inputs(self.name, blocks, self.modalities_, self.feature_names_)
        net = self._net()
        if getattr(self, "_params", None) is None:
            template = net.init(jax.random.PRNGKey(0), tuple(jnp.zeros((1, d)) for d in self.dims_), jnp.ones((1, len(self.dims_))))
            self._params = params_from_bytes(template["params"], self.params_)
        xs, present = self._inputs(blocks)
        fused, head = jax.jit(lambda p, x, m: net.apply({"params": p}, x, m))(self._params, xs, present)
        fused, head = np.asarray(fused, np.float64), np.asarray(head, np.float64)
        names = [f"attention:{j + 1}" for j in range(fused.shape[1])]
        values = fused
        if self.options.output_head:
            names += ["attention:head"] if head.shape[1] == 1 else [f"attention:head_{j}" for j in range(head.shape[1])]
            values = np.concatenate([fused, head], axis=1)
        nobody = present.sum(axis=1) == 0
        values[nobody] = 0.0  # no modality at all: the embedding of nothing carries no information
        return FeatureBlock(blocks[0].ids, values, tuple(names), np.ones(len(blocks[0].ids), bool), "fused",
                            tuple(["attention"] * len(names)))
