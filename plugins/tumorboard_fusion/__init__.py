"""Built-in fusion strategies: early (concat), late (stacking), intermediate (attention)."""

from tumorboard.api import hookimpl

from .attention import AttentionFusion
from .concat import ConcatFusion
from .stacking import StackingFusion


@hookimpl
def register_fusions(register):
    register(ConcatFusion)
    register(StackingFusion)
    register(AttentionFusion)
