"""Built-in pathology modality: whole-slide tile embeddings (TRIDENT/CLAM .h5, .npz or Parquet bags)
pooled per patient by mean, max or a trained gated-attention MIL pool (Flax + optax)."""

from tumorboard.api import hookimpl

from .modality import PathologySlides


@hookimpl
def register_modalities(register):
    register(PathologySlides)
