"""Input checks every fusion shares: aligned blocks, matching targets, the modalities it was fitted on."""

from __future__ import annotations

from collections.abc import Sequence

from tumorboard.api import ComponentError, FeatureBlock, Target


def check_aligned(name: str, blocks: Sequence[FeatureBlock]) -> None:
    """Every block lists the same patients in the same order."""
    first = blocks[0].ids
    for block in blocks[1:]:
        if block.ids != first:
            raise ComponentError(
                f"{name}: block {block.modality!r} lists different patients than {blocks[0].modality!r}; "
                "every block must have one row per patient, in the same order"
            )


def check_fit_inputs(name: str, blocks: Sequence[FeatureBlock], y: Target) -> None:
    """At least one block, aligned, with one target value per patient."""
    if not blocks:
        raise ComponentError(f"{name}: needs at least one block")
    check_aligned(name, blocks)
    if len(blocks[0].ids) != len(y):
        raise ComponentError(f"{name}: fit() got {len(blocks[0].ids)} patients but {len(y)} target values")


def check_transform_inputs(name: str, blocks: Sequence[FeatureBlock], modalities: list[str],
                           feature_names: list[list[str]]) -> None:
    """The same modalities, in the same order, with the same features as in fit."""
    check_aligned(name, blocks)
    got = [b.modality for b in blocks]
    if got != list(modalities):
        raise ComponentError(f"{name}: fitted on modalities {list(modalities)}, given {got}")
    for block, names in zip(blocks, feature_names, strict=True):
        if list(block.feature_names) != list(names):
            raise ComponentError(f"{name}: block {block.modality!r} has different features than in fit")
