"""Built-in omics modalities: a multi-layer autoencoder (Flax + optax) and PCA, with train-only preprocessing."""

from tumorboard.api import hookimpl

from .modality import OmicsAutoencoder, OmicsPCA


@hookimpl
def register_modalities(register):
    register(OmicsAutoencoder)
    register(OmicsPCA)
