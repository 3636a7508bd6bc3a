"""Built-in generic modality: features from any CSV or Parquet table keyed by patient id."""

from tumorboard.api import hookimpl

from .file import TabularFile


@hookimpl
def register_modalities(register):
    register(TabularFile)
