"""Built-in imaging modalities: SimpleITK image pipeline, radiomic features (IBSI definitions), longitudinal response (RECIST 1.1, delta radiomics), and Flax imaging networks."""

from tumorboard.api import hookimpl

from .cnn import ImagingCNN
from .longitudinal import ImagingLongitudinal
from .modality import ImagingRadiomics


@hookimpl
def register_modalities(register):
    register(ImagingRadiomics)
    register(ImagingCNN)
    register(ImagingLongitudinal)
