"""Built-in explainers."""

from tumorboard.api import hookimpl

from .permutation import PermutationExplainer
from .saliency import SaliencyExplainer
from .shapley import ShapExplainer


@hookimpl
def register_explainers(register):
    register(PermutationExplainer)
    register(ShapExplainer)
    register(SaliencyExplainer)
