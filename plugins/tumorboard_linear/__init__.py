"""Built-in linear models."""

from tumorboard.api import hookimpl

from .logistic import LogisticModel


@hookimpl
def register_models(register):
    register(LogisticModel)
