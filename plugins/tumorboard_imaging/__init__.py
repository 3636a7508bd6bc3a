"""Built-in imaging modalities: SimpleITK image pipeline, radiomic features (IBSI definitions), and Flax imaging networks."""

from tumorboard.api import hookimpl

from .cnn import ImagingCNN
from .modality import ImagingRadiomics


@hookimpl
def register_modalities(register):
    register(ImagingRadiomics)
    register(ImagingCNN)
