"""Train-only preprocessing of numeric feature matrices, shared by modality plugins.

Statistics come from the training rows only: optional winsorising limits
(quantiles), fill values for missing cells (median or mean), and standardising
mean and SD. ``apply_numeric`` uses them on any rows, training or not.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass
class NumericStats:
    """What ``fit_numeric`` learned, per column."""

    low: np.ndarray
    high: np.ndarray
    fill: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    gaps: np.ndarray
    """Columns with a missing value among the training rows (candidates for indicators)."""


def fit_numeric(
    train: np.ndarray,
    impute: Literal["median", "mean"] = "median",
    winsor: tuple[float, float] | None = None,
    scale: bool = True,
) -> NumericStats:
    """Learn clipping limits, fill values and scaling from training rows (NaN = missing)."""
    columns = train.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns give NaN, replaced below
        if winsor is not None and len(train):
            low = np.nanquantile(train, winsor[0], axis=0)
            high = np.nanquantile(train, winsor[1], axis=0)
        else:
            low, high = np.full(columns, np.nan), np.full(columns, np.nan)
        low, high = np.nan_to_num(low, nan=-np.inf), np.nan_to_num(high, nan=np.inf)
        clipped = np.clip(train, low, high)
        fill = np.nanmedian(clipped, axis=0) if impute == "median" else np.nanmean(clipped, axis=0)
    fill = np.where(np.isfinite(fill), fill, 0.0)
    filled = np.where(np.isnan(clipped), fill, clipped)
    if scale and len(filled):
        mean, sd = filled.mean(axis=0), filled.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
    else:
        mean, sd = np.zeros(columns), np.ones(columns)
    return NumericStats(low, high, fill, mean, sd, np.isnan(train).any(axis=0))


def apply_numeric(values: np.ndarray, low: np.ndarray, high: np.ndarray, fill: np.ndarray,
                  mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Clip, fill missing cells and standardise with statistics learned by ``fit_numeric``."""
    return (np.where(np.isnan(values), fill, np.clip(values, low, high)) - mean) / scale
