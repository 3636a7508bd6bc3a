"""explain.shap and modality shares: additivity, the planted features found, shares that add up."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from tumorboard.api import Attribution, FeatureBlock, Target, component_class
from tumorboard._engine.cohort import load_cohort
from tumorboard._engine.explanations import modality_shares
from tumorboard._engine.pipeline import Pipeline
from tumorboard_synth import SynthOptions, generate
from tumorboard_synth.omics import layer_params
from tumorboard_synth.params import PROGRAM_MARKERS
from tumorboard_explain.shapley import ShapExplainer


def _block(n: int = 300, p: int = 6, seed: int = 0) -> tuple[FeatureBlock, Target]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, p))
    logit = 1.5 * values[:, 0] - values[:, 1] + 0.5 * values[:, 2] * values[:, 3]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    names = tuple(f"f{j}" for j in range(p))
    sources = tuple("a" if j < 3 else "b" for j in range(p))
    block = FeatureBlock(tuple(f"P{i}" for i in range(n)), values, names, np.ones(n, bool), "fused", sources)
    return block, Target("binary", y, None, ("0", "1"))


@pytest.mark.parametrize(("model", "algorithm"), [("model.gbm", "tree"), ("model.logistic", "linear"),
                                                  pytest.param("model.gbm", "permutation", marks=pytest.mark.slow)])  # 6 s
def test_shap_values_add_up_to_the_model_log_odds(model, algorithm):
    X, y = _block()
    fitted = component_class("model", model)().fit(X, y)
    a = ShapExplainer(algorithm=algorithm, background=50, max_patients=40).explain(fitted, X, X.feature_names, y)
    rows = np.array([X.ids.index(i) for i in a.ids])
    p = np.clip(fitted.predict(X.take(rows)), 1e-9, 1 - 1e-9)
    np.testing.assert_allclose(a.per_patient.sum(axis=1) + a.baseline, np.log(p / (1 - p)), atol=1e-4)
    assert a.units == "log-odds of 1"
    # the two strong planted features (weights 1.5 and -1) lead; f4 and f5 are pure noise
    assert set(np.argsort(-a.importance)[:2]) == {0, 1} and a.importance[:2].min() > 2 * a.importance[4:].max()


def test_tree_path_asked_of_a_linear_model_is_refused():
    X, y = _block()
    fitted = component_class("model", "model.logistic")().fit(X, y)
    with pytest.raises(Exception, match="algorithm = 'tree' needs a scikit-learn tree ensemble"):
        ShapExplainer(algorithm="tree").explain(fitted, X, X.feature_names, y)


def test_modality_shares_sum_to_one_per_patient():
    a = Attribution("x", ("a1", "a2", "b1"), np.ones(3), ids=("P1", "P2", "P3"),
                    per_patient=np.array([[1.0, -1.0, 2.0], [0.0, 0.0, 0.0], [3.0, 0.0, -1.0]]),
                    sources=("a", "a", "b"))
    frame, overall = modality_shares(a)
    assert frame["a"].to_list() == [0.5, 0.0, 0.75] and frame["b"].to_list() == [0.5, 0.0, 0.25]
    assert overall == pytest.approx({"a": 5 / 8, "b": 3 / 8})
    assert modality_shares(Attribution("x", ("a1",), np.ones(1))) is None


def test_top_shap_features_are_the_planted_ones():
    """At least 8 of the 10 features with the largest mean |SHAP| carry planted response signal.

    Planted (core/tumorboard/synth): ECOG, stage, haemoglobin, CEA; EGFR and
    KRAS (through the treatment interaction); and the RNA genes loading on the
    immune program (its 20 markers, plus the genes the generator gave a
    diffuse immune loading, |w| > 0.1). Everything else is noise.
    """
    seed = 5
    folder = generate(Path(tempfile.mkdtemp(prefix="tumorboard-shap-")) / "c",
                      SynthOptions(patients=2000, seed=seed, images=False))
    cohort = load_cohort(folder / "outcomes.csv", id_column="patient_id", task="binary", target="response")
    tab = component_class("modality", "tabular.file")
    modalities = [("clinical", tab(path=folder / "tables/clinical_baseline.csv")),
                  ("mutation", tab(path=folder / "omics/mutation.parquet", scale=False, missing_indicators=False)),
                  ("rna", tab(path=folder / "omics/rna.parquet"))]
    model = component_class("model", "model.gbm")(learning_rate=0.05, max_leaf_nodes=4)
    pipeline = Pipeline(modalities, component_class("fusion", "fusion.concat")(), model).fit(list(cohort.ids), cohort.target)
    X = pipeline.features(list(cohort.ids))
    a = ShapExplainer().explain(pipeline.model, X, X.feature_names, cohort.target)

    params = layer_params(seed, 2000)
    immune = PROGRAM_MARKERS["immune"] + [g for g, w in zip(params.genes, params.loadings[:, 0], strict=True) if abs(w) > 0.1]
    planted = {"clinical:ecog", "clinical:stage", "clinical:hemoglobin_g_dl", "clinical:cea_ng_ml",
               "mutation:EGFR", "mutation:KRAS", *(f"rna:{g}" for g in immune)}
    top = [X.feature_names[j] for j in np.argsort(-a.importance)[:10]]
    print("top 10 by mean |SHAP|:", top)
    assert sum(f in planted for f in top) >= 8, top
    assert len(a.ids) == 2000 and a.per_patient.shape == (2000, len(X.feature_names))


# --- integrated gradients and explain.saliency ------------------------------------------------

def test_integrated_gradients_is_exact_for_linear_and_complete_for_nonlinear_functions():
    import jax.numpy as jnp

    from tumorboard_neural import integrated_gradients

    rng = np.random.default_rng(0)
    x, w = jnp.asarray(rng.normal(size=(5, 7)), jnp.float32), jnp.asarray(rng.normal(size=7), jnp.float32)
    linear = np.asarray(integrated_gradients(lambda z: z @ w, x))
    np.testing.assert_allclose(linear, np.asarray(x * w), rtol=1e-5, atol=1e-6)

    def f(z):
        return jnp.tanh(z @ w) + (z[:, 0] * z[:, 1]) ** 2

    baseline = jnp.full_like(x, 0.3)
    ig = np.asarray(integrated_gradients(f, x, baseline, steps=256))
    np.testing.assert_allclose(ig.sum(axis=1), np.asarray(f(x) - f(baseline)), rtol=2e-3, atol=2e-3)


@pytest.mark.slow  # over 10 s on 2 cores: trains a Flax network
def test_omics_saliency_adds_up_to_the_supervised_head():
    from tumorboard_omics.autoencoder import encode

    folder = generate(Path(tempfile.mkdtemp(prefix="tumorboard-ig-")) / "c", SynthOptions(patients=120, seed=2, images=False))
    cohort = load_cohort(folder / "outcomes.csv", id_column="patient_id", task="binary", target="response")
    ids = list(cohort.ids)
    ae = component_class("modality", "omics.autoencoder")(
        layers=[{"name": "rna", "path": str(folder / "omics/rna.parquet"), "top_k": 50}], supervised=True,
        epochs=5, latent=4, hidden=[16])
    a = ae.fit(ids, cohort.target).saliency(ids)
    assert a.per_patient.shape == (len(a.ids), 50) and all(name.startswith("rna:") for name in a.feature_names)
    xs, _, present = ae._values(list(a.ids))
    model, params = ae._model(ae.task_, ae.n_classes_), ae._fitted_params()
    _, head = encode(model, params, tuple(xs), present)
    _, head0 = encode(model, params, tuple(np.zeros_like(x) for x in xs), present)
    # completeness up to the 32-step discretisation of the path integral (ReLU kinks)
    np.testing.assert_allclose(a.per_patient.sum(axis=1), (head - head0)[:, 0], atol=2e-2)
    unsupervised = component_class("modality", "omics.autoencoder")(
        layers=[{"name": "rna", "path": str(folder / "omics/rna.parquet"), "top_k": 50}], epochs=2, latent=4)
    assert unsupervised.fit(ids, cohort.target).saliency(ids) is None


def test_saliency_explainer_says_which_modalities_it_needs():
    from tumorboard_explain.saliency import SaliencyExplainer

    X, y = _block()
    folder = Path(tempfile.mkdtemp(prefix="tumorboard-sal-"))
    (folder / "t.csv").write_text("patient_id,a\nP0,1\n", encoding="utf-8")
    tab = component_class("modality", "tabular.file")(path=folder / "t.csv")
    with pytest.raises(Exception, match=r"none of the modalities \(clinical = tabular.file\) has a network with a supervised head; use imaging.cnn"):
        SaliencyExplainer().explain(None, X, X.feature_names, y, modalities={"clinical": tab})
    with pytest.raises(Exception, match="needs the fitted modalities"):
        SaliencyExplainer().explain(None, X, X.feature_names, y)


def test_multiclass_shap_explains_each_patients_predicted_class():
    import shap

    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=(n, 5))
    labels = np.argmax(x[:, :3] + rng.normal(0, 0.5, (n, 3)), axis=1)
    X = FeatureBlock(tuple(f"P{i}" for i in range(n)), x, tuple(f"f{j}" for j in range(5)), np.ones(n, bool), "fused")
    y = Target("multiclass", labels, None, ("a", "b", "c"))
    model = component_class("model", "model.gbm")().fit(X, y)
    a = ShapExplainer(max_patients=40).explain(model, X, X.feature_names, y)
    rows = np.array([X.ids.index(i) for i in a.ids])
    chosen = model.predict(X.take(rows)).argmax(axis=1)
    raw = model.estimator_.decision_function(x[rows])[np.arange(len(rows)), chosen]
    expected = np.asarray(shap.TreeExplainer(model.estimator_).expected_value)[chosen]
    np.testing.assert_allclose(a.per_patient.sum(axis=1) + expected, raw, atol=1e-6)
    assert a.units == "raw score (softmax logit) of the predicted class" and a.baseline is None
    assert set(np.argsort(-a.importance)[:3]) == {0, 1, 2}  # the planted features, not the two noise ones


@pytest.mark.slow
def test_imaging_saliency_lies_inside_the_tumour():
    """Most positive attribution of a response-trained imaging net falls in the tumour, and training put it there.

    The synthetic tumours sit in lung parenchyma, which the lung window clips to the black baseline, so the
    tumour is already most of the voxels integrated gradients can credit (``support_share``): the test also
    asks that the trained net beat that and the same net at random initialisation (the model-randomisation
    check of Adebayo et al. 2018), which a map drawn by the anatomy alone would not.
    """
    import jax
    import jax.numpy as jnp

    folder = generate(Path(tempfile.mkdtemp(prefix="tumorboard-saliency-")) / "c", SynthOptions(patients=400, seed=4))
    cohort = load_cohort(folder / "outcomes.csv", id_column="patient_id", task="binary", target="response")
    ids = list(cohort.ids)
    n = int(0.8 * len(ids))
    cnn = component_class("modality", "imaging.cnn")(
        manifest=folder / "imaging/manifest.csv", folder=folder, time_point="baseline", window=[-150.0, 250.0],
        field="fixed", spacing=(1.0, 1.0, 2.0), shape=[16, 32, 32], epochs=60, patience=15, output_head=True)
    cnn.fit(ids[:n], cohort.target.take(np.arange(n)))

    def shares() -> tuple[np.ndarray, np.ndarray]:
        maps = cnn.saliency(ids[n:]).images["imaging.cnn"]  # held-out patients only
        return (np.array([float(m["inside"]) for m in maps.values()]),
                np.array([float(m["support_share"]) for m in maps.values()]))

    inside, support = shares()
    cnn._params = cnn._net().init(jax.random.PRNGKey(7), jnp.zeros((1, 16, 32, 32, 1)))["params"]
    untrained, _ = shares()
    print(f"inside {inside.mean():.3f} (median {np.median(inside):.3f}), untrained net {untrained.mean():.3f}, "
          f"support share {support.mean():.3f}, patients above their support share {np.mean(inside > support):.2f}")
    assert len(inside) > 50 and inside.mean() >= 0.60
    assert inside.mean() >= untrained.mean() + 0.05
    assert np.mean(inside > support) >= 0.7
