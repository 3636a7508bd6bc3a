"""``fusion.concat``: early fusion by concatenation, with per-block scaling and presence indicators."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Self

import numpy as np
from pydantic import Field

from tumorboard.api import FeatureBlock, Fusion, Options, Target

from .checks import check_fit_inputs, check_transform_inputs


class ConcatFusion(Fusion):
    """Concatenates every modality's features into one complete matrix.

    Each block is standardised with the mean and SD of the training patients
    who have it; missing values and absent modalities become the training mean
    (0 after scaling), and a ``MODALITY:present`` column per block tells the
    model which patients had that modality at all.
    """

    name = "fusion.concat"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})

    class Options(Options):
        scale: bool = Field(True, description="Standardise each feature with training mean and SD.")
        presence_indicators: bool = Field(True, description="Add one MODALITY:present column per block.")

    def fit(self, blocks: Sequence[FeatureBlock], y: Target) -> Self:
        check_fit_inputs(self.name, blocks, y)
        self.modalities_ = [b.modality for b in blocks]
        self.feature_names_ = [list(b.feature_names) for b in blocks]
        self.means_, self.scales_ = [], []
        for block in blocks:
            rows = block.values[block.presence]
            with warnings.catch_warnings():
                # an all-missing column gives NaN here; it is replaced just below
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(rows, axis=0) if len(rows) else np.zeros(block.values.shape[1])
                sd = np.nanstd(rows, axis=0) if len(rows) else np.ones(block.values.shape[1])
            mean = np.where(np.isfinite(mean), mean, 0.0)
            sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
            self.means_.append(mean if self.options.scale else np.zeros_like(mean))
            self.scales_.append(sd if self.options.scale else np.ones_like(sd))
        return self

    def transform(self, blocks: Sequence[FeatureBlock]) -> FeatureBlock:
        self.check_is_fitted()
        check_transform_inputs(self.name, blocks, self.modalities_, self.feature_names_)
        parts, names, sources = [], [], []
        for block, mean, scale, fitted_names in zip(blocks, self.means_, self.scales_, self.feature_names_, strict=True):
            scaled = (block.values - mean) / scale
            scaled[~block.presence] = 0.0
            parts.append(np.nan_to_num(scaled, nan=0.0))
            names += [f"{block.modality}:{n}" for n in block.feature_names]
            sources += [block.modality] * len(block.feature_names)
            if self.options.presence_indicators:
                parts.append(block.presence[:, None].astype(np.float64))
                names.append(f"{block.modality}:present")
                sources.append(block.modality)
        values = np.concatenate(parts, axis=1)
        return FeatureBlock(blocks[0].ids, values, tuple(names), np.ones(len(blocks[0].ids), bool), "fused", tuple(sources))

