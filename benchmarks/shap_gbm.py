"""explain.shap on model.gbm: SHAP values for 2,000 patients x 500 features.

    python benchmarks/shap_gbm.py
    python benchmarks/shap_gbm.py --patients 2000 --features 500 --agnostic 20

A binary outcome planted in 10 of the features (the rest noise), model.gbm
fitted on every patient (its defaults: up to 200 trees of 15 leaves), then
explain.shap explains all of them with TreeSHAP. Baselines measured in the
same run: the model's own fit time, and shap's model-agnostic permutation
explainer (what explain.shap falls back to for models without trees) on
``--agnostic`` patients, extrapolated to all of them. Checks that TreeSHAP's
values add up to the model's log-odds. Last line:
``shap_gbm seconds=X per_fit=Y speedup_vs_agnostic=Z``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--features", type=int, default=500)
    parser.add_argument("--agnostic", type=int, default=20, help="Patients explained by the permutation baseline.")
    args = parser.parse_args()

    from tumorboard.api import FeatureBlock, Target
    from tumorboard_explain.shapley import ShapExplainer
    from tumorboard_models.gbm import GradientBoostingModel

    rng = np.random.default_rng(0)
    n, p = args.patients, args.features
    x = rng.normal(size=(n, p))
    logit = x[:, :10] @ np.linspace(1.0, 0.3, 10)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    block = FeatureBlock(tuple(f"P{i}" for i in range(n)), x, tuple(f"f{j}" for j in range(p)), np.ones(n, bool), "fused")
    target = Target("binary", y, None, ("0", "1"))

    start = time.perf_counter()
    model = GradientBoostingModel(early_stopping=False).fit(block, target)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    attribution = ShapExplainer().explain(model, block, block.feature_names, target)
    shap_s = time.perf_counter() - start
    prob = np.clip(model.predict(block), 1e-12, 1 - 1e-12)
    error = np.abs(attribution.per_patient.sum(axis=1) + attribution.baseline - np.log(prob / (1 - prob))).max()
    planted = set(np.argsort(-attribution.importance)[:10]) == set(range(10))

    k = args.agnostic
    sample = block.take(np.arange(k))
    start = time.perf_counter()
    ShapExplainer(algorithm="permutation", background=100).explain(model, sample, block.feature_names, target.take(np.arange(k)))
    agnostic_s = (time.perf_counter() - start) * n / k

    print(f"model.gbm fit on {n} x {p}: {fit_s:.2f} s ({model.estimator_.n_iter_} trees)")
    print(f"explain.shap (TreeSHAP), all {n} patients: {shap_s:.2f} s; largest additivity error {error:.1e}; "
          f"top 10 features are the 10 planted: {planted}")
    print(f"model-agnostic permutation SHAP: {agnostic_s / n * k:.2f} s for {k} patients -> {agnostic_s:.0f} s for {n}")
    print(f"shap_gbm seconds={shap_s:.2f} per_fit={shap_s / fit_s:.2f} speedup_vs_agnostic={agnostic_s / shap_s:.0f}")


if __name__ == "__main__":
    main()
