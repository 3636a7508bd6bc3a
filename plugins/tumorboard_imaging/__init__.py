"""Built-in imaging modality: SimpleITK image pipeline and radiomic features (IBSI definitions)."""

from tumorboard.api import hookimpl

from .modality import ImagingRadiomics


@hookimpl
def register_modalities(register):
    register(ImagingRadiomics)
