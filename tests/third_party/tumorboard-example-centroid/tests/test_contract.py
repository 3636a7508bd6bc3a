"""The plugin author's own CI: tumorboard's conformance kit on this plugin."""

from tumorboard.testing import parametrize_with_checks
from tumorboard_example_centroid import CentroidModel


@parametrize_with_checks([CentroidModel(temperature=1.0)])
def test_follows_the_component_contract(component, check):
    check(component)
