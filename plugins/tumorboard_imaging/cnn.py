"""``imaging.cnn``: a Flax imaging network trained inside each training fold; its embedding becomes features."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from tumorboard.api import Attribution, ComponentError, DataError, FeatureBlock, Target, training_options

from .modality import ImagingInputs, ImagingSource
from .preprocess import Preparation, prepare, unusable, warn_unusable


def _centred(array: np.ndarray, centre: np.ndarray, shape: tuple[int, ...], fill: float) -> np.ndarray:
    """A ``shape`` window of ``array`` centred on ``centre`` (voxel index), padded with ``fill`` past the edges."""
    lo = np.round(centre).astype(int) - np.array(shape) // 2
    out = np.full(shape, fill, dtype=array.dtype)
    src = tuple(slice(max(a, 0), min(a + n, size)) for a, n, size in zip(lo, shape, array.shape, strict=True))
    dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo, strict=True))
    out[dst] = array[src]
    return out


@functools.lru_cache(maxsize=4096)
def _load(image: Path, mask: Path | None, shape: tuple[int, ...], spacing, window, margin, label, cache,
          field: str = "box") -> tuple[np.ndarray, np.ndarray | None]:
    """One patient's image at the network's ``shape``, z-scored, and its mask the same way (None without one).

    ``field = "box"``: the mask's bounding box plus ``margin`` mm, resized to
    ``shape`` (every lesion fills the input: scale is lost). ``"fixed"``: a
    window of ``shape`` voxels at ``spacing`` centred on the mask's centroid,
    not resized, so a larger lesion covers more of the input.
    """
    import SimpleITK as sitk
    from scipy.ndimage import zoom

    from .io import read_image

    region = None
    if mask is not None:
        crop = None if field == "fixed" else margin
        array, region, _ = prepare(image, mask, Preparation(spacing, "linear", window, crop, label), cache)
    else:
        array = sitk.GetArrayFromImage(read_image(image)).astype(np.float32)
        if window is not None:
            array = np.clip(array, *window)
    array = np.squeeze(array)
    if array.ndim != len(shape):
        raise DataError(f"{image}: the image is {array.ndim}-D but shape asks for {len(shape)}-D input; "
                        f"set shape to {len(shape) if array.ndim == len(shape) else array.ndim} sizes")
    if field == "fixed" and region is not None:
        centre = np.argwhere(np.squeeze(region)).mean(axis=0)
        resized = _centred(array, centre, shape, float(array.min()))
        region = _centred(np.squeeze(region), centre, shape, False)
    else:
        factors = [t / s for t, s in zip(shape, array.shape, strict=True)]
        box = tuple(slice(0, t) for t in shape)
        resized = zoom(array, factors, order=1)[box]
        if region is not None:
            region = zoom(np.squeeze(region).astype(np.uint8), factors, order=0)[box].astype(bool)
    sd = resized.std()
    return ((resized - resized.mean()) / (sd if sd > 0 else 1.0)).astype(np.float32), region


def rotate(images, angles):
    """Rotate each image of a batch (n, *spatial, 1) by its angle (radians) in the last two spatial axes.

    About the centre, with linear interpolation; edges repeat. For volumes this
    is an in-plane (axial) rotation, the pose change scans actually show.
    """
    import jax
    import jax.numpy as jnp
    from jax.scipy.ndimage import map_coordinates

    spatial = images.shape[1:-1]
    grids = jnp.meshgrid(*[jnp.arange(n, dtype=jnp.float32) for n in spatial], indexing="ij")
    cy, cx = (spatial[-2] - 1) / 2, (spatial[-1] - 1) / 2
    y, x = grids[-2] - cy, grids[-1] - cx

    def one(image, angle):
        c, s = jnp.cos(angle), jnp.sin(angle)
        coords = [*grids[:-2], c * y - s * x + cy, s * y + c * x + cx]
        return map_coordinates(image[..., 0], coords, order=1, mode="nearest")[..., None]

    return jax.vmap(one)(images, angles)


def augment(images, key, max_shift: int, max_rotation_deg: float):
    """Random flips along every spatial axis, a shift, a small rotation and intensity jitter (scale, offset)."""
    import jax
    import jax.numpy as jnp

    spatial = tuple(range(1, images.ndim - 1))
    per_image = (images.shape[0],) + (1,) * (images.ndim - 1)
    keys = jax.random.split(key, len(spatial) + 4)
    for axis, k in zip(spatial, keys, strict=False):
        images = jnp.where(jax.random.bernoulli(k, 0.5, per_image), jnp.flip(images, axis=axis), images)
    if max_rotation_deg:
        limit = jnp.deg2rad(max_rotation_deg)
        images = rotate(images, jax.random.uniform(keys[-4], (images.shape[0],), minval=-limit, maxval=limit))
    if max_shift:
        shifts = jax.random.randint(keys[-3], (len(spatial),), -max_shift, max_shift + 1)
        images = jnp.roll(images, shifts, axis=spatial)
    scale = 1 + 0.1 * jax.random.normal(keys[-2], per_image)
    offset = 0.1 * jax.random.normal(keys[-1], per_image)
    return images * scale + offset


class ImagingCNN(ImagingSource):
    """An imaging network (Flax) trained on the run's target inside each training fold.

    2-D or 3-D by ``shape``. Each image is cropped around its mask with a
    margin (when a mask is given), resized to ``shape`` and z-scored. The
    default ``mixer`` backbone (patch embedding + MLP-Mixer: all matmuls) is
    the fast one on a CPU; ``resnet`` is a small ResNet of standard
    convolutions, for a GPU. Trained with optax AdamW, augmentation (random
    flips, shifts of up to ``max_shift`` voxels, in-plane rotations of up to
    ``max_rotation_deg``, intensity jitter) and early
    stopping on a validation split of the training patients, under the seed.
    Outputs the penultimate embedding (and with ``output_head`` the network's
    own prediction). Parameters are saved with Flax's msgpack serialisation.
    A patient with no image is marked absent.
    """

    name = "imaging.cnn"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})

    class Options(ImagingInputs, training_options(epochs=100, patience=15, batch_size=64)):
        shape: list[PositiveInt] = Field([32, 32, 32], min_length=2, max_length=3,
                                         description="Network input size: 3 sizes (z, y, x) for volumes, 2 for images.")
        backbone: Literal["mixer", "resnet"] = Field("mixer", description="mixer (fast on CPUs) or resnet (convolutions).")
        patch: PositiveInt = Field(4, description="Patch size of the mixer backbone (voxels per side).")
        width: PositiveInt = Field(64, description="Embedding width (mixer) or first-stage channels (resnet).")
        depth: PositiveInt = Field(2, description="Mixer blocks or ResNet stages.")
        label: int | None = Field(None, description="Mask label of the region (default: the 1s of a 0/1 mask).")
        spacing: tuple[PositiveFloat, PositiveFloat, PositiveFloat] | None = Field(None, description="Resample first (mm).")
        window: tuple[float, float] | None = Field(None, description="Clip intensities to [low, high] (HU for CT).")
        crop_margin_mm: float | None = Field(20.0, description="Crop around the mask with this margin (None: whole image).")
        field: Literal["box", "fixed"] = Field(
            "box", description="box: the mask's bounding box plus the margin, resized to shape (scale is lost); "
                               "fixed: shape voxels at spacing centred on the mask (keeps lesion size; needs spacing).")
        augment: bool = Field(True, description="Random flips, shifts, rotations and intensity jitter while training.")
        max_shift: int = Field(2, ge=0, description="Largest random shift in voxels.")
        max_rotation_deg: float = Field(10.0, ge=0, le=180, description="Largest random in-plane rotation (degrees).")
        output_head: bool = Field(False, description="Add the network's own prediction as one more feature.")
        saliency_steps: PositiveInt = Field(32, description="Integration steps of the saliency maps (integrated gradients).")
        saliency_baseline: Literal["black", "blur"] = Field("black", description="Reference image of the saliency maps.")
        saliency_blur: PositiveFloat = Field(3.0, description="Gaussian sigma (voxels) of the 'blur' baseline.")
        cache: Path | None = Field(Path(".tumorboard-cache/imaging"), description="Cache of prepared arrays (None: no cache).")

        @model_validator(mode="after")
        def _fixed_needs_spacing(self):
            if self.field == "fixed" and self.spacing is None:
                raise ValueError("field = 'fixed' needs spacing (the mm per voxel of the fixed window)")
            return self

    def _images(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        shape = tuple(o.shape)
        out = np.zeros((len(ids), *shape, 1), np.float32)
        present = np.zeros(len(ids), bool)
        bad: list = []
        for k, patient in enumerate(ids):
            found = self._locate(str(patient))
            if found is None:
                continue
            image = _load(found[0], found[1], shape, o.spacing, o.window, o.crop_margin_mm, o.label, o.cache, o.field)[0]
            why = unusable(image)
            if why is not None:
                bad.append((found[0], why))
                continue
            out[k, ..., 0] = image
            present[k] = True
        warn_unusable(self.name, bad)
        return out, present

    def saliency(self, ids: Sequence[str]) -> Attribution | None:
        """Integrated gradients of the network's own head for each patient's image (voxel maps).

        The baseline is ``saliency_baseline`` (see ``_baseline``); a binary
        head explains the class it predicts. For
        each patient the slice (first axis) with the largest mask area is
        kept, with the image and mask, ``inside``: the share of the positive
        attribution mass, over the whole image, that lies inside the mask
        (NaN without a mask), ``mask_share``: the mask's share of the
        input's voxels, what ``inside`` would be by chance, and
        ``support_share``: the mask's share of the voxels that differ from the
        baseline — the only ones integrated gradients can credit (with the
        black baseline, air and lung clipped at the window's low end get
        exactly zero), so a stricter chance level.
        """
        import jax
        import jax.numpy as jnp

        from tumorboard_neural import head_score, integrated_gradients

        self.check_is_fitted()
        o = self.options
        net, params = self._net(), self._fitted_params()
        # a binary head explains the class it predicts: positive attribution is evidence for that prediction
        ig = jax.jit(lambda images, base, sign: integrated_gradients(
            lambda z: sign * head_score(self.kind_, net.apply({"params": params}, z)[1]), images, base,
            steps=o.saliency_steps))
        predict = jax.jit(lambda images: head_score(self.kind_, net.apply({"params": params}, images)[1]))
        maps: dict[str, dict[str, np.ndarray]] = {}
        for patient in map(str, ids):
            found = self._locate(patient)
            if found is None:
                continue
            image, mask = _load(found[0], found[1], tuple(o.shape), o.spacing, o.window, o.crop_margin_mm, o.label,
                                o.cache, o.field)
            share = float(mask.mean()) if mask is not None else np.nan
            x = jnp.asarray(image[None, ..., None])
            sign = jnp.where(predict(x) < 0, -1.0, 1.0) if self.kind_ == "binary" else jnp.ones(1)
            baseline = self._baseline(image)
            attribution = np.asarray(ig(x, jnp.asarray(baseline[None, ..., None]), sign))[0, ..., 0]
            support = image != baseline
            support_share = float(mask[support].mean()) if mask is not None and support.any() else np.nan
            positive = np.clip(attribution, 0, None)
            inside = float(positive[mask].sum() / positive.sum()) if mask is not None and positive.sum() > 0 else np.nan
            if image.ndim == 3:
                z = int(np.argmax(mask.sum(axis=(1, 2)))) if mask is not None else image.shape[0] // 2
                image, attribution, mask = image[z], attribution[z], (mask[z] if mask is not None else None)
            maps[patient] = {"image": image, "saliency": attribution, "inside": np.float32(inside),
                             "mask_share": np.float32(share), "support_share": np.float32(support_share)}
            if mask is not None:
                maps[patient]["mask"] = mask.astype(np.float32)
        return Attribution(method="integrated gradients", feature_names=(), importance=np.zeros(0),
                           ids=tuple(maps), images={self.name: maps}, units=f"{self.kind_} head output")

    def _baseline(self, image: np.ndarray) -> np.ndarray:
        """The reference image of integrated gradients.

        ``black``: the image's minimum everywhere (the window's low end: air), as in the IG paper, so voxels
        at the minimum get no attribution and tissue is measured against its absence. ``blur``: the image
        blurred by a Gaussian of ``saliency_blur`` voxels, which keeps coarse anatomy and asks what the
        fine structure (texture, edges) contributed.
        """
        if self.options.saliency_baseline == "black":
            return np.full_like(image, image.min())
        from scipy.ndimage import gaussian_filter

        return gaussian_filter(image, self.options.saliency_blur).astype(image.dtype)

    def _fitted_params(self):
        import jax
        import jax.numpy as jnp

        from tumorboard_neural import params_from_bytes

        if getattr(self, "_params", None) is None:
            template = self._net().init(jax.random.PRNGKey(0), jnp.zeros((1, *self.options.shape, 1)))["params"]
            self._params = params_from_bytes(template, self.params_)
        return self._params

    def _net(self):
        from tumorboard_neural import head_outputs

        from .networks import backbone

        o = self.options
        if o.backbone == "mixer" and any(s % o.patch for s in o.shape):
            raise ComponentError(f"{self.name}: every size in shape {o.shape} must be a multiple of patch = {o.patch}")
        return backbone(o.backbone, o.patch, o.width, o.depth, head_outputs(self.kind_, self.n_classes_))

    def fit(self, ids: Sequence[str], y: Target) -> Self:
        import jax
        import jax.numpy as jnp

        from tumorboard_neural import fit_network, head_loss

        if len(ids) != len(y):
            raise ComponentError(f"{self.name}: fit() got {len(ids)} ids but {len(y)} target values")
        o = self.options
        self.kind_, self.n_classes_ = y.kind, y.n_classes
        x, present = self._images(ids)
        if not present.any():
            raise DataError(f"{self.name}: none of the {len(ids)} training patients has an image")
        target = np.asarray(y.values, np.float32)
        if y.kind == "regression":
            target = (target - target.mean()) / (target.std() or 1.0)
        event = np.asarray(y.event if y.event is not None else np.ones(len(y)), np.float32)
        net = self._net()
        params = net.init(jax.random.PRNGKey(self.seed), jnp.zeros((1, *o.shape, 1)))["params"]

        def loss_fn(params, batch, key):
            images, target_b, event_b = batch
            if key is not None and o.augment:
                images = augment(images, key, o.max_shift, o.max_rotation_deg)
            _, head = net.apply({"params": params}, images)
            return head_loss(self.kind_, head, target_b, event_b, jnp.ones(images.shape[0]))

        take = lambda r: (x[r], target[r], event[r])  # noqa: E731
        fit_network(self, params, loss_fn, take, np.flatnonzero(present), o)
        return self

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._params = None

    def transform(self, ids: Sequence[str]) -> FeatureBlock:
        import jax

        self.check_is_fitted()
        net = self._net()
        params = self._fitted_params()
        x, present = self._images(ids)
        apply = jax.jit(lambda p, images: net.apply({"params": p}, images))
        embeddings, heads = [], []
        for lo in range(0, len(x), 256):
            e, h = apply(params, x[lo:lo + 256])
            embeddings.append(np.asarray(e))
            heads.append(np.asarray(h))
        emb = np.concatenate(embeddings) if embeddings else np.zeros((0, self.options.width))
        names = [f"embedding_{j + 1}" for j in range(emb.shape[1])]
        values = emb
        if self.options.output_head:
            head = np.concatenate(heads)
            names += ["head"] if head.shape[1] == 1 else [f"head_{j + 1}" for j in range(head.shape[1])]
            values = np.concatenate([emb, head], axis=1)
        values = values.astype(np.float64)
        values[~present] = np.nan
        return FeatureBlock(tuple(map(str, ids)), values, names, present, self.name)
