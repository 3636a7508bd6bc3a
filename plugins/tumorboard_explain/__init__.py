"""Built-in explainers."""

from tumorboard.api import hookimpl

from .permutation import PermutationExplainer


@hookimpl
def register_explainers(register):
    register(PermutationExplainer)
