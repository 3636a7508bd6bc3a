"""Built-in clinical modality: OMOP CDM, MEDS, FHIR R4 or long event tables into patient features,
with polars; and ``tumorboard ehr-convert`` (OMOP into MEDS or FHIR)."""

from tumorboard.api import hookimpl

from .commands import register_commands
from .modality import EhrPolars

__all__ = ["EhrPolars", "register_commands", "register_modalities"]


@hookimpl
def register_modalities(register):
    register(EhrPolars)
