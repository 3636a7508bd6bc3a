"""Built-in explainers."""

from tumorboard.api import hookimpl

from .permutation import PermutationExplainer
from .shapley import ShapExplainer


@hookimpl
def register_explainers(register):
    register(PermutationExplainer)
    register(ShapExplainer)
