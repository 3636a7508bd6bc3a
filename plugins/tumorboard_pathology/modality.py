"""``pathology.slides``: whole-slide tile embeddings (TRIDENT/CLAM bags) pooled into patient features."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self

import numpy as np
from pydantic import Field, PositiveInt

from tumorboard.api import (
    Attribution,
    ComponentError,
    DataError,
    FeatureBlock,
    InputPath,
    Modality,
    Target,
    training_options,
)

from .bags import Slides, read_slides


class PathologySlides(Modality):
    """Tile embeddings of whole-slide images (one bag file per slide), pooled per patient.

    A manifest maps slides to patients (several slides per patient make one
    bag of all their tiles). ``pooling``: ``mean`` or ``max`` over the tiles,
    or ``abmil``, a gated-attention pool (Ilse et al. 2018) trained with the
    run's target on training patients only; its output is the attention-pooled
    embedding. Tile embeddings are standardised with training tiles' mean and
    SD. The encoder name and the embedding dimension must agree across slides.
    With ``abmil``, ``saliency`` returns each patient's most-attended tiles
    with their slide and coordinates (``explain.saliency`` saves them; the
    patient card lists them).
    """

    name = "pathology.slides"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})
    requires = ("h5py", "jax", "flax", "optax")
    install = 'pip install "tumorboard[pathology]"'

    # small batches: a MIL pool learns from few positive bags and needs many steps to find their tiles. No
    # validation split by default: the log loss of a handful of held-out positive bags rises as the pool grows
    # confident and stopped training before it found the tiles (AUROC 0.50 against 0.94 without it); weight
    # decay regularises and training stops when the training loss stops improving.
    class Options(training_options(epochs=100, patience=20, batch_size=8, learning_rate=2e-3, validation_fraction=0.0)):
        manifest: InputPath = Field(description="Table with columns patient_id and slide (a bag file per row, relative "
                                                "to the manifest's folder); optional slide_id.")
        folder: InputPath | None = Field(None, description="Folder the slide paths are relative to (default: the "
                                                           "manifest's folder).")
        pooling: Literal["mean", "max", "abmil"] = Field(
            "abmil", description="mean or max over tiles, or abmil (gated attention trained on the target).")
        encoder: str | None = Field(None, description="The patch encoder every slide must declare (checked when "
                                                      "bags carry an encoder attribute).")
        hidden: PositiveInt = Field(64, description="abmil: width of the tile embedding (the output features).")
        attention: PositiveInt = Field(32, description="abmil: width of the gated attention layer.")
        dropout: float = Field(0.1, ge=0, lt=1, description="abmil: dropout on tile embeddings while training.")
        max_tiles: PositiveInt = Field(512, description="abmil: tiles per patient while training (a seeded sample of "
                                                        "larger bags); inference uses every tile.")
        output_head: bool = Field(False, description="abmil: add the attention head's prediction as a feature.")
        balance_classes: bool = Field(True, description="abmil, binary and multiclass: weight each class equally in "
                                                        "the loss (few positive bags otherwise barely move the attention).")
        top_tiles: PositiveInt = Field(8, description="abmil: most-attended tiles listed per patient by saliency.")

    # --- data ------------------------------------------------------------------------------------------------------

    def _slides(self) -> Slides:
        o = self.options
        paths = [Path(o.manifest)] + ([Path(o.folder)] if o.folder else [])
        stamp = tuple((str(p), p.stat().st_mtime_ns) for p in paths)
        slides = read_slides(Path(o.manifest), Path(o.folder) if o.folder else None, o.encoder, stamp)
        return slides

    def available_ids(self) -> set[str]:
        return set(self._slides().tiles_of)

    def input_files(self) -> list[Path]:
        return self._slides().files

    def _bags(self, ids: Sequence[str]) -> tuple[list[np.ndarray], np.ndarray]:
        tiles_of = self._slides().tiles_of
        empty = np.zeros(0, np.int64)
        bags = [tiles_of.get(str(i), empty) for i in ids]
        return bags, np.array([len(b) > 0 for b in bags])

    # --- fitting ---------------------------------------------------------------------------------------------------

    def fit(self, ids: Sequence[str], y: Target) -> Self:
        if len(ids) != len(y):
            raise ComponentError(f"{self.name}: fit() got {len(ids)} ids but {len(y)} target values")
        slides = self._slides()
        bags, present = self._bags(ids)
        if not present.any():
            raise DataError(f"{self.name}: none of the {len(ids)} training patients has a slide")
        train_tiles = np.concatenate([b for b in bags if len(b)])
        sample = train_tiles if len(train_tiles) <= 200_000 else np.random.default_rng(self.seed).choice(
            train_tiles, 200_000, replace=False)
        # standardisation from training patients' tiles only
        self.tile_mean_ = slides.features[sample].mean(axis=0).astype(np.float32)
        self.tile_scale_ = (slides.features[sample].std(axis=0) + 1e-6).astype(np.float32)
        self.dim_ = int(slides.features.shape[1])
        self.encoder_ = slides.encoder or ""
        if self.options.pooling == "abmil":
            self._fit_attention(bags, present, y)
        else:
            pooled = self._simple_pool(bags, present)
            self.pool_mean_ = np.nanmean(pooled[present], axis=0)
            self.pool_scale_ = np.nanstd(pooled[present], axis=0) + 1e-6
        return self

    def _standardised(self) -> np.ndarray:
        slides = self._slides()
        cached = getattr(self, "_z", None)
        if cached is None or cached[0] is not slides:
            self._z = (slides, (slides.features - self.tile_mean_) / self.tile_scale_)
        return self._z[1]

    def _device_tiles(self):
        """The standardised tiles as a JAX array, copied to the device once per fitted pool and input version."""
        import jax.numpy as jnp

        slides = self._slides()
        cached = getattr(self, "_on_device", None)
        if cached is None or cached[0] is not slides:
            self._on_device = (slides, jnp.asarray(self._standardised()))
        return self._on_device[1]

    def _simple_pool(self, bags: list[np.ndarray], present: np.ndarray) -> np.ndarray:
        z = self._standardised()
        reduce = np.mean if self.options.pooling == "mean" else np.max
        out = np.full((len(bags), z.shape[1]), np.nan, np.float32)
        for k, tiles in enumerate(bags):
            if len(tiles):
                out[k] = reduce(z[tiles], axis=0)
        return out

    def _model(self):
        from tumorboard_neural import head_outputs

        from .abmil import GatedAttentionPool

        o = self.options
        return GatedAttentionPool(o.hidden, o.attention, head_outputs(self.kind_, self.n_classes_), o.dropout)

    def _fit_attention(self, bags: list[np.ndarray], present: np.ndarray, y: Target) -> None:
        import jax

        from tumorboard_neural import fit_network, head_loss

        from .abmil import padded_bags

        o = self.options
        self.kind_, self.n_classes_ = y.kind, y.n_classes
        target = np.asarray(y.values, np.float32)
        if y.kind == "regression":
            target = (target - target.mean()) / (target.std() or 1.0)
        event = np.asarray(y.event if y.event is not None else np.ones(len(y)), np.float32)
        rows = np.flatnonzero(present)
        weight = np.ones(len(y), np.float32)
        if o.balance_classes and y.kind in ("binary", "multiclass"):
            # a few positive bags among many: weighting classes equally lets their tiles drive the attention
            codes = np.asarray(y.values)[rows].astype(int)
            counts = np.bincount(codes, minlength=max(y.n_classes, 2)).astype(np.float32)
            weight[rows] = len(rows) / (np.count_nonzero(counts) * counts[codes])
        size = int(min(o.max_tiles, max(len(bags[r]) for r in rows)))
        x, mask = padded_bags(self._standardised(), [bags[r] for r in rows], size, np.random.default_rng([self.seed, 5]))
        model = self._model()
        # one compiled init: an eager flax init compiles each of its small ops on its own (about 5 s here)
        params = jax.jit(model.init)(jax.random.PRNGKey(self.seed), x[:1], mask[:1])["params"]

        def loss_fn(params, batch, key):
            tiles, m, target_b, event_b, weight_b = batch
            _, head, _ = model.apply({"params": params}, tiles, m, key)
            return head_loss(self.kind_, head, target_b, event_b, weight_b)  # a class-weighted mean

        take = lambda r: (x[r], mask[r], target[rows][r], event[rows][r], weight[rows][r])  # noqa: E731
        fit_network(self, params, loss_fn, take, np.arange(len(rows)), o)

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self._params = None

    def __getstate__(self) -> dict:
        # a fitted pool travels back from a worker process: without its caches, which hold every tile
        # of the cohort (standardised, and a copy on the device); they are rebuilt from the files on use
        state = self.__dict__.copy()
        for cache in ("_z", "_on_device", "_params"):
            state.pop(cache, None)
        return state

    def _fitted_params(self):
        from tumorboard_neural import params_from_bytes

        from .abmil import template

        if getattr(self, "_params", None) is None:
            self._params = params_from_bytes(template(self._model(), self.dim_), self.params_)
        return self._params

    def _check_dimension(self) -> None:
        dim = int(self._slides().features.shape[1])
        if dim != self.dim_:
            raise DataError(f"{self.name}: the slides have {dim}-dimensional embeddings, the fitted pool expects "
                            f"{self.dim_} (encoder {self.encoder_ or 'unknown'}): embed the new slides with the same encoder")

    # --- output ----------------------------------------------------------------------------------------------------

    def attention(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """(embeddings, heads, each patient's tile indices, their attention weights) with the fitted pool."""
        from .abmil import pool_bags

        self.check_is_fitted()
        if self.options.pooling != "abmil":
            raise ComponentError(f"{self.name}: attention weights exist only with pooling = 'abmil'")
        self._check_dimension()
        bags, _ = self._bags(ids)
        embeddings, heads, weights = pool_bags(self._model(), self._fitted_params(), self._device_tiles(), bags)
        return embeddings, heads, bags, weights

    def transform(self, ids: Sequence[str]) -> FeatureBlock:
        self.check_is_fitted()
        self._check_dimension()
        bags, present = self._bags(ids)
        if self.options.pooling == "abmil":
            embeddings, heads, _, _ = self.attention(ids)
            names = [f"attention_pool_{j + 1}" for j in range(embeddings.shape[1])]
            values = embeddings
            if self.options.output_head:
                names += ["attention_head"] if heads.shape[1] == 1 else [f"attention_head_{j + 1}" for j in range(heads.shape[1])]
                values = np.concatenate([embeddings, heads], axis=1)
        else:
            values = (self._simple_pool(bags, present) - self.pool_mean_) / self.pool_scale_
            names = [f"tile_{self.options.pooling}_{j + 1}" for j in range(values.shape[1])]
        values = values.astype(np.float32)
        values[~present] = np.nan
        return FeatureBlock(tuple(map(str, ids)), values, names, present, self.name)

    def saliency(self, ids: Sequence[str]) -> Attribution | None:
        """Each patient's ``top_tiles`` most-attended tiles: slide (its place in the manifest's list of the
        patient's slides), x, y (level-0 pixels) and attention weight. ``None`` unless pooling = abmil."""
        if self.options.pooling != "abmil":
            return None
        slides = self._slides()
        _, _, bags, weights = self.attention(ids)
        per_patient: dict[str, dict[str, np.ndarray]] = {}
        for pid, tiles, w in zip(ids, bags, weights, strict=True):
            if not len(tiles):
                continue
            top = np.argsort(-w, kind="stable")[: self.options.top_tiles]
            own = sorted(set(slides.slide_of_tile[tiles].tolist()))
            per_patient[str(pid)] = {
                "tile_attention": w[top],
                "tile_slide": np.array([own.index(s) + 1 for s in slides.slide_of_tile[tiles[top]]], np.float32),
                "tile_x": slides.coords[tiles[top], 0], "tile_y": slides.coords[tiles[top], 1],
                "tile_count": np.array(len(tiles), np.float32),
            }
        return Attribution(method="attention weights", feature_names=(), importance=np.zeros(0),
                           ids=tuple(per_patient), images={self.name: per_patient},
                           units="share of the patient's attention (the weights of a bag add up to 1)")
