"""``explain.saliency``: integrated gradients through the modalities' own networks (images, genes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import Field, PositiveInt

from tumorboard.api import Attribution, ComponentError, Explainer, FeatureBlock, Modality, Model, Options, Target


class SaliencyExplainer(Explainer):
    """Integrated gradients (jax.grad) of each network modality's supervised head w.r.t. its raw inputs.

    Asks every fitted modality for its ``saliency``: ``imaging.cnn`` answers
    with voxel maps (the slice with the largest tumour area is kept per
    patient, with the share of positive attribution inside the mask);
    ``omics.autoencoder`` with ``supervised = true`` answers with per-gene
    scores. These explain what each modality's network learned from the
    run's target, not the final model (which may be a tree ensemble with no
    gradient); ``explain.shap`` explains that.
    """

    name = "explain.saliency"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})

    class Options(Options):
        max_patients: PositiveInt = Field(1000, description="Explain at most this many patients (sampled).")

    def explain(self, model: Model, X: FeatureBlock, feature_names: Sequence[str], y: Target | None = None,
                modalities: Mapping[str, Modality] | None = None) -> Attribution:
        if modalities is None:
            raise ComponentError(f"{self.name}: needs the fitted modalities (the engine passes them; "
                                 "called by hand, pass modalities={name: component})")
        ids = list(X.ids)
        if len(ids) > self.options.max_patients:
            rng = np.random.default_rng(self.seed)
            ids = [ids[i] for i in np.sort(rng.choice(len(ids), self.options.max_patients, replace=False))]
        parts = {name: m.saliency(ids) for name, m in modalities.items()}
        parts = {name: a for name, a in parts.items() if a is not None}
        if not parts:
            raise ComponentError(
                f"{self.name}: none of the modalities ({', '.join(f'{n} = {m.name}' for n, m in modalities.items())}) "
                "has a network with a supervised head; use imaging.cnn, or omics.autoencoder with supervised = true")
        names: list[str] = []
        sources: list[str] = []
        columns: list[np.ndarray] = []
        images: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for name, part in parts.items():
            if part.images:
                images[name] = next(iter(part.images.values()))
            if part.per_patient is None or not part.feature_names:
                continue
            row = {pid: k for k, pid in enumerate(part.ids)}
            block = np.zeros((len(ids), len(part.feature_names)))  # a patient the modality lacks gets 0
            for k, pid in enumerate(ids):
                if pid in row:
                    block[k] = part.per_patient[row[pid]]
            columns.append(block)
            names += [f"{name}:{f}" for f in part.feature_names]
            sources += [name] * len(part.feature_names)
        per_patient = np.concatenate(columns, axis=1) if columns else np.zeros((len(ids), 0))
        units = "; ".join(f"{name}: {part.units}" for name, part in parts.items() if part.units)
        return Attribution(
            method=self.name, feature_names=tuple(names), importance=np.abs(per_patient).mean(axis=0),
            ids=tuple(ids), per_patient=per_patient, sources=tuple(sources), units=units or None,
            images=images or None,
        )
