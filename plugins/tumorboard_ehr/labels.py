"""Readable names for ehr.polars' features, for reports and patient cards.

``measurement:Hemoglobin [Mass/volume] in Blood [3000963]:mean@30d`` becomes
``Hemoglobin in Blood, mean over the last 30 days``; ``note:egfr:negated``
becomes ``notes mention EGFR (negated)``. The engine asks the fitted modality
(``feature_labels``) and writes the answers into the run directory, so a
report never has to know this grammar.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

WINDOWS = {"all": "any time before the index date"}


def _window(window: str) -> str:
    match = re.fullmatch(r"(\d+)([dmy])", window)
    if not match:
        return window
    n, unit = int(match[1]), {"d": "day", "m": "month", "y": "year"}[match[2]]
    return f"{n} {unit}{'s' if n != 1 else ''}"


def label(feature: str) -> str | None:
    """The readable name of one feature (without a ``__missing`` suffix), or None for a plain column name."""
    parts = feature.split(":")
    if len(parts) >= 3 and "@" in parts[-1]:  # domain:concept:statistic@window
        stat, _, window = parts[-1].partition("@")
        concept = re.sub(r"\s*\[[^\]]*\]", "", ":".join(parts[1:-1])).strip()
        when = WINDOWS.get(window, f"over the last {_window(window)}")
        return f"{concept}, {stat.replace('_', ' ')} {when}"
    if len(parts) == 3 and parts[0] == "note":
        return f"notes mention {parts[1].upper()} ({parts[2]})"
    return None


def feature_labels(names: Sequence[str]) -> dict[str, str]:
    out = {}
    for name in names:
        text = label(name.removesuffix("__missing"))
        if text is not None:
            out[name.removesuffix("__missing")] = text
    return out
