"""``omics.autoencoder`` and ``omics.pca``: omics layers into a few patient features.

Both read the same layer matrices and share the train-only per-layer
preprocessing (``prepare.py``); they differ in the reduction: a jointly
trained multi-layer autoencoder (Flax) or principal components.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Self

import numpy as np
from pydantic import Field, PositiveInt
from tumorboard.api import Attribution, ComponentError, FeatureBlock, Modality, Options, Target, train_settings, training_options

from .layers import LayerSpec, check_orientation, read_layer, transposed_hint
from .prepare import apply_layer, fit_layer


class _LayerOptions(Options):
    layers: list[LayerSpec] = Field(min_length=1, description="The omics layers, each a matrix file.")
    select: Literal["variance", "supervised"] = Field(
        "variance", description="Rank features by training variance, or (supervised) by univariate association "
        "with the run's target on training patients (F test; Cox score test for survival).")


class _OmicsModality(Modality):
    """Shared by the omics components: reading layers, presence, and per-layer preprocessing."""

    Options = _LayerOptions

    def _layers(self):
        names = [s.name for s in self.options.layers]
        if len(set(names)) != len(names):
            raise ComponentError(f"{self.name}: layer names must be unique; got {names}")
        return [read_layer(s) for s in self.options.layers]

    def available_ids(self) -> set[str]:
        return set().union(*(layer.ids for layer in self._layers()))

    def explain_id_mismatch(self, cohort_ids: set[str]) -> str | None:
        hints = (transposed_hint(layer, cohort_ids, spec.orientation)
                 for layer, spec in zip(self._layers(), self.options.layers, strict=True))
        return next((h for h in hints if h), None)

    def input_files(self) -> list:
        return [s.path for s in self.options.layers]

    def _rows(self, ids: Sequence[str]) -> list[np.ndarray]:
        """Per layer: each id's row in that layer's matrix, -1 where the patient lacks the layer."""
        return [np.array([layer.row_of.get(str(i), -1) for i in ids], dtype=np.int64) for layer in self._layers()]

    def _fit_layers(self, ids: Sequence[str], y: Target) -> None:
        if len(ids) != len(y):
            raise ComponentError(f"{self.name}: fit() got {len(ids)} ids but {len(y)} target values")
        self.layer_state_ = {}
        for layer, spec, rows in zip(self._layers(), self.options.layers, self._rows(ids), strict=True):
            check_orientation(layer, list(map(str, ids)), spec.orientation)
            have = rows >= 0
            self.layer_state_[spec.name] = fit_layer(layer, rows[have], y.take(np.flatnonzero(have)), spec,
                                                     self.options.select)
        self.feature_counts_ = [len(self.layer_state_[s.name]["columns"]) for s in self.options.layers]

    def _values(self, ids: Sequence[str]) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """Per layer preprocessed values and observed masks (zeros where absent), and presence (n x layers)."""
        xs, observed, present = [], [], []
        for layer, spec, rows in zip(self._layers(), self.options.layers, self._rows(ids), strict=True):
            state = self.layer_state_[spec.name]
            have = rows >= 0
            x = np.zeros((len(ids), len(state["columns"])), np.float32)
            o = np.zeros_like(x)
            if have.any():
                x[have], o[have] = apply_layer(layer, rows[have], state, spec)
            xs.append(x)
            observed.append(o)
            present.append(have)
        return xs, observed, np.stack(present, axis=1).astype(np.float32)


class OmicsPCA(_OmicsModality):
    """Principal components of omics layers: the linear baseline.

    ``mode = "per_layer"`` gives each layer its own components (a patient
    lacking a layer has NaN there, imputed downstream); ``"joint"`` runs one
    PCA over the concatenated standardised layers, a missing layer counting
    as the training mean. Fitted on training patients only.
    """

    name = "omics.pca"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})

    class Options(_LayerOptions):
        components: PositiveInt = Field(16, description="Components per layer (per_layer) or in all (joint).")
        mode: Literal["per_layer", "joint"] = Field("per_layer", description="One PCA per layer, or one over all.")

    def fit(self, ids: Sequence[str], y: Target) -> Self:
        from sklearn.decomposition import PCA

        self._fit_layers(ids, y)
        xs, _, present = self._values(ids)
        blocks = [(spec.name, x, present[:, i] > 0) for i, (spec, x) in enumerate(zip(self.options.layers, xs, strict=True))]
        if self.options.mode == "joint":
            blocks = [("joint", np.concatenate(xs, axis=1), present.sum(axis=1) > 0)]
        self.pca_ = {}
        for name, x, have in blocks:
            k = max(1, min(self.options.components, int(have.sum()) - 1, x.shape[1]))
            pca = PCA(k, random_state=self.seed).fit(x[have])
            self.pca_[name] = {"mean": pca.mean_, "components": pca.components_}
        self.feature_names_ = [f"{name}:pc{j + 1}" for name, state in self.pca_.items() for j in range(len(state["components"]))]
        return self

    def transform(self, ids: Sequence[str]) -> FeatureBlock:
        self.check_is_fitted()
        xs, _, present = self._values(ids)
        if self.options.mode == "joint":
            parts = [("joint", np.concatenate(xs, axis=1), present.sum(axis=1) > 0)]
        else:
            parts = [(spec.name, x, present[:, i] > 0) for i, (spec, x) in enumerate(zip(self.options.layers, xs, strict=True))]
        columns = []
        for name, x, have in parts:
            state = self.pca_[name]
            scores = (x - state["mean"]) @ state["components"].T
            scores[~have] = np.nan  # a layer the patient lacks: unknown, not zero
            columns.append(scores)
        return FeatureBlock(tuple(map(str, ids)), np.concatenate(columns, axis=1), self.feature_names_,
                            present.sum(axis=1) > 0, self.name)


class OmicsAutoencoder(_OmicsModality):
    """A multi-layer omics autoencoder (Flax + optax) whose joint latent becomes the features.

    Per-layer encoders feed one latent, averaged over the layers a patient has
    (a missing layer neither contributes nor is reconstructed); per-layer
    decoders reconstruct the measured cells. Optionally variational, and
    optionally with a supervised head trained jointly with the run's target
    (logistic, softmax, squared error, or Cox partial likelihood for
    survival). AdamW with early stopping on a validation split carved from
    the training patients; deterministic under the seed; parameters saved with
    Flax's msgpack serialisation (no pickle).
    """

    name = "omics.autoencoder"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})
    requires = ("jax", "flax", "optax")
    install = 'pip install "tumorboard[omics]"'

    class Options(_LayerOptions, training_options(batch_size=256)):
        hidden: list[PositiveInt] = Field([256], description="Widths of the hidden layers of each encoder (decoders mirror them).")
        latent: PositiveInt = Field(32, description="Width of the joint latent (the output features).")
        variational: bool = Field(False, description="A variational latent (KL term weighted by beta).")
        beta: float = Field(1e-3, ge=0, description="Weight of the KL term (variational only).")
        supervised: bool = Field(False, description="Train a head on the run's target jointly with the reconstruction.")
        head_weight: float = Field(1.0, ge=0, description="Weight of the head's loss against the reconstruction.")
        output_head: bool = Field(False, description="Add the head's prediction as one more feature (needs supervised).")

    def _model(self, task: str, n_classes: int):
        from .autoencoder import LayerAutoencoder

        o = self.options
        head = 0 if not o.supervised else (n_classes if task == "multiclass" else 1)
        return LayerAutoencoder(tuple(self.feature_counts_), tuple(o.hidden), o.latent, o.variational, head)

    def fit(self, ids: Sequence[str], y: Target) -> Self:
        from tumorboard_neural import params_to_bytes, split_validation

        from .autoencoder import Settings, TrainData, train

        o = self.options
        if o.output_head and not o.supervised:
            raise ComponentError(f"{self.name}: output_head = true needs supervised = true (there is no head otherwise)")
        self._fit_layers(ids, y)
        xs, observed, present = self._values(ids)
        target = np.asarray(y.values, np.float32)
        if y.kind == "regression":  # the head learns a standardised target; transform undoes nothing (it is a feature)
            target = (target - target.mean()) / (target.std() or 1.0)
        event = np.asarray(y.event if y.event is not None else np.ones(len(y)), np.float32)
        data = TrainData(tuple(xs), tuple(observed), present, target, event)
        fit_rows, val = split_validation(np.flatnonzero(present.sum(axis=1) > 0), o.validation_fraction, self.seed)
        n_val = len(val)
        self.task_ = y.kind if o.supervised else "none"
        self.n_classes_ = y.n_classes
        model = self._model(y.kind, y.n_classes)
        settings = Settings(self.task_, o.beta, o.head_weight, train_settings(o))
        params, history = train(model, settings, data.take(fit_rows), data.take(val) if n_val else None, self.seed)
        self.params_ = params_to_bytes(params)
        self.best_epoch_ = int(history["best_epoch"])
        self.epochs_run_ = len(history["train"])
        self.validation_loss_ = np.asarray(history["validation"], np.float64)
        self._params = params
        return self

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self._params = None

    def _fitted_params(self):
        from tumorboard_neural import params_from_bytes

        from .autoencoder import template

        if getattr(self, "_params", None) is None:
            self._params = params_from_bytes(template(self._model(self.task_, self.n_classes_)), self.params_)
        return self._params

    def saliency(self, ids: Sequence[str]) -> Attribution | None:
        """Integrated gradients of the supervised head w.r.t. each selected gene of each layer.

        The baseline is the training mean (zero after standardisation); a
        layer the patient lacks gets 0 (it does not enter the latent).
        ``None`` without a supervised head.
        """
        import jax
        import jax.numpy as jnp

        from tumorboard_neural import head_score, integrated_gradients

        self.check_is_fitted()
        if self.task_ == "none":
            return None
        model, params = self._model(self.task_, self.n_classes_), self._fitted_params()
        xs, _, present = self._values(ids)
        have = present.sum(axis=1) > 0

        @jax.jit
        def ig(x, m):
            return integrated_gradients(lambda z: head_score(self.task_, model.apply({"params": params}, z, m, None)[3]), x)

        scores = []
        for lo in range(0, len(ids), 512):
            chunk = tuple(jnp.asarray(x[lo:lo + 512]) for x in xs)
            scores.append(np.concatenate([np.asarray(a) for a in ig(chunk, jnp.asarray(present[lo:lo + 512]))], axis=1))
        values = np.concatenate(scores) * np.repeat(present, self.feature_counts_, axis=1)
        names = [f"{spec.name}:{layer.features[c]}" for layer, spec in zip(self._layers(), self.options.layers, strict=True)
                 for c in self.layer_state_[spec.name]["columns"]]
        kept = [str(i) for i, h in zip(ids, have, strict=True) if h]
        return Attribution(method="integrated gradients", feature_names=tuple(names),
                           importance=np.abs(values[have]).mean(axis=0) if have.any() else np.zeros(len(names)),
                           ids=tuple(kept), per_patient=values[have], units=f"{self.task_} head output")

    def transform(self, ids: Sequence[str]) -> FeatureBlock:
        from .autoencoder import encode

        self.check_is_fitted()
        xs, _, present = self._values(ids)
        latent, head = encode(self._model(self.task_, self.n_classes_), self._fitted_params(), tuple(xs), present)
        names = [f"latent_{j + 1}" for j in range(latent.shape[1])]
        values = latent
        if self.options.output_head and head is not None:
            names += [f"head_{j + 1}" if head.shape[1] > 1 else "head" for j in range(head.shape[1])]
            values = np.concatenate([latent, head], axis=1)
        have = present.sum(axis=1) > 0
        values = values.astype(np.float32)
        values[~have] = np.nan
        return FeatureBlock(tuple(map(str, ids)), values, names, have, self.name)

