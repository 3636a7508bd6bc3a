"""Built-in clinical modality: OMOP CDM or long event tables into patient features, with polars."""

from tumorboard.api import hookimpl

from .modality import EhrPolars


@hookimpl
def register_modalities(register):
    register(EhrPolars)
