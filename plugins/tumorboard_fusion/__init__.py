"""Built-in fusion strategies."""

from tumorboard.api import hookimpl

from .concat import ConcatFusion


@hookimpl
def register_fusions(register):
    register(ConcatFusion)
