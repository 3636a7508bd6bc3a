"""omics.autoencoder and omics.pca on the synthetic cohort's omics layers (and TCGA-UCEC when shared/data is present)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl
import pytest
from conftest import SHARED_DATA
from sklearn.cross_decomposition import CCA
from tumorboard.api import DataError, Target
from tumorboard_neural import cox_loss
from tumorboard._engine.engine import run
from tumorboard_synth import SynthOptions, generate
from tumorboard.testing import parametrize_with_checks
from tumorboard_omics.autoencoder import LayerAutoencoder, Settings, encode, make_loss
from tumorboard_omics.modality import OmicsAutoencoder, OmicsPCA
from tumorboard_omics.prepare import cox_scores

COHORT = generate(Path(tempfile.mkdtemp(prefix="tumorboard-omics-")) / "c",
                  SynthOptions(patients=400, seed=8, images=False, rna_genes=200))
OUTCOMES = pl.read_csv(COHORT / "outcomes.csv")
IDS = OUTCOMES["patient_id"].to_list()
TINY = {"hidden": [16], "latent": 4, "epochs": 4, "patience": 2}


def layer(name: str, **extra) -> dict:
    return {"name": name, "path": COHORT / "omics" / f"{name}.parquet", **extra}


def response(ids) -> Target:
    y = OUTCOMES.filter(pl.col("patient_id").is_in(list(ids)))
    return Target("binary", y["response"].to_numpy(), None, ("0", "1"))


@parametrize_with_checks([OmicsPCA(layers=[layer("rna"), layer("cnv")], components=3),
                          OmicsAutoencoder(layers=[layer("rna", top_k=50), layer("protein")], **TINY)],
                         tasks=["binary"])  # unsupervised: one task is enough here
def test_follows_the_component_contract(component, check):
    check(component)


@parametrize_with_checks([OmicsAutoencoder(layers=[layer("mutation", scale=False)], variational=True, supervised=True,
                                           output_head=True, **TINY)],
                         tasks=["binary", "survival"], other_tasks_marks=[pytest.mark.slow])
# a supervised head: a classification and a Cox loss (test_head_trains_for_every_task covers the other two heads)
def test_supervised_autoencoder_follows_the_component_contract(component, check):
    check(component)


def _program_correlations(component, train: list[str], test: list[str]) -> dict[str, float]:
    """Canonical correlation of the features with each planted program, fitted on train, scored on test."""
    component.fit(train, response(train))
    truth = pl.read_parquet(COHORT / "ground_truth.parquet")
    programs = [c for c in truth.columns if c.startswith("program_")]

    def aligned(ids):
        block = component.transform(ids)
        have = [i for i, h in zip(ids, block.presence, strict=True) if h]
        z = block.values[block.presence]
        p = truth.filter(pl.col("patient_id").is_in(have)).sort(pl.col("patient_id").replace_strict(
            {i: k for k, i in enumerate(have)}, return_dtype=pl.Int64)).select(programs).to_numpy()
        return z, p

    z_train, p_train = aligned(train)
    z_test, p_test = aligned(test)
    result = {}
    for j, name in enumerate(programs):
        cca = CCA(1).fit(z_train, p_train[:, [j]])
        a, b = cca.transform(z_test, p_test[:, [j]])
        result[name] = abs(float(np.corrcoef(a[:, 0], b[:, 0])[0, 1]))
    return result


def test_autoencoder_latent_recovers_the_planted_programs():
    # fitted on 300 patients, the canonical correlation measured on the other 100
    ae = OmicsAutoencoder(layers=[layer("rna")], latent=8, hidden=[64], epochs=150, patience=20)
    ae.seed = 3
    r = _program_correlations(ae, IDS[:300], IDS[300:])
    print({k: round(v, 3) for k, v in r.items()})
    assert max(r.values()) >= 0.8
    assert min(r.values()) > 0.6  # every program is in the latent, not only the strongest


def test_missing_layer_neither_contributes_nor_is_reconstructed():
    model = LayerAutoencoder((6, 4), (8,), 3, False, 0)
    params = model.init(jax.random.PRNGKey(0), (jnp.zeros((1, 6)), jnp.zeros((1, 4))), jnp.ones((1, 2)))["params"]
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 6)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    present = np.array([[1, 0]] * 5, np.float32)  # nobody has layer b
    z1, _ = encode(model, params, (a, b), present)
    z2, _ = encode(model, params, (a, b * 100 + 7), present)
    np.testing.assert_array_equal(z1, z2)
    loss = make_loss(model, Settings("none"))
    batch = lambda bb: ((jnp.asarray(a), jnp.asarray(bb)), (jnp.ones((5, 6)), jnp.ones((5, 4))), jnp.asarray(present),
                        jnp.zeros(5), jnp.ones(5))
    assert float(loss(params, batch(b), None)) == pytest.approx(float(loss(params, batch(b * 100 + 7), None)), rel=1e-6)
    # and with the layer present, its values do matter
    both = np.ones((5, 2), np.float32)
    z3, _ = encode(model, params, (a, b), both)
    assert not np.allclose(z1, z3)


def test_fitted_state_ignores_test_patients(tmp_path):
    train, test = IDS[:200], IDS[200:]
    rna = pl.read_parquet(COHORT / "omics" / "rna.parquet")
    changed = rna.with_columns([pl.when(pl.col("patient_id").is_in(test)).then(pl.col(c) * 3 + 5).otherwise(pl.col(c)).alias(c)
                                for c in rna.columns[1:]])
    changed.write_parquet(tmp_path / "rna.parquet")

    def fitted(path):
        ae = OmicsAutoencoder(layers=[{"name": "rna", "path": path, "top_k": 60}], select="supervised", supervised=True, **TINY)
        return ae.fit(train, response(train)).get_state()

    a, b = fitted(COHORT / "omics" / "rna.parquet"), fitted(tmp_path / "rna.parquet")
    np.testing.assert_array_equal(a["params_"], b["params_"])
    for key in ("columns", "fill", "mean", "scale"):
        np.testing.assert_array_equal(a["layer_state_"]["rna"][key], b["layer_state_"]["rna"][key])


def test_cox_score_ranks_the_prognostic_feature_first():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 20))
    time = rng.exponential(np.exp(-0.8 * x[:, 7]))
    event = rng.random(400) < 0.7
    scores = cox_scores(x, time, event.astype(float))
    assert int(np.argmax(scores)) == 7
    assert scores[7] > 10 * np.median(scores)


def test_cox_loss_matches_the_partial_likelihood():
    rng = np.random.default_rng(2)
    risk, time, event = rng.normal(size=30), rng.exponential(size=30), (rng.random(30) < 0.6).astype(float)
    expected = -sum(risk[i] - np.log(np.exp(risk[time >= time[i]]).sum()) for i in range(30) if event[i]) / event.sum()
    got = float(cox_loss(jnp.asarray(risk), jnp.asarray(time), jnp.asarray(event), jnp.ones(30)))
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow  # trains a Flax network: 5 s on 2 cores
def test_supervised_head_learns_survival():
    times = OUTCOMES["os_months"].to_numpy()
    events = OUTCOMES["os_event"].to_numpy()
    y = Target("survival", times[:300], events[:300])
    ae = OmicsAutoencoder(layers=[layer("rna", top_k=100), layer("mutation", scale=False)], select="supervised",
                          supervised=True, output_head=True, head_weight=5.0, latent=8, hidden=[32], epochs=100, patience=15)
    block = ae.fit(IDS[:300], y).transform(IDS[300:])
    from sksurv.metrics import concordance_index_censored

    have = block.presence
    c = concordance_index_censored(events[300:][have].astype(bool), times[300:][have], block.values[have, -1])[0]
    # the truth's full log hazard reaches 0.74 on these patients; omics carry about a third of it
    print("held-out C-index of the Cox head", round(c, 3))
    assert c > 0.56


def test_pca_per_layer_marks_a_missing_layer_unknown():
    pca = OmicsPCA(layers=[layer("rna"), layer("metabolite")], components=2).fit(IDS, response(IDS))
    block = pca.transform(IDS)
    have_metab = set(pl.read_parquet(COHORT / "omics" / "metabolite.parquet")["patient_id"].to_list())
    lacking = [k for k, i in enumerate(IDS) if i not in have_metab]
    assert lacking and np.isnan(block.values[lacking][:, 2:]).all()
    assert np.isfinite(block.values[[k for k, i in enumerate(IDS) if i in have_metab]][:, 2:]).all()


def test_features_by_patients_orientation_reads_the_same_matrix(tmp_path):
    rna = pl.read_parquet(COHORT / "omics" / "rna.parquet").head(50)
    genes = rna.columns[1:]
    transposed = pl.DataFrame({"gene": genes, **{pid: rna.filter(pl.col("patient_id") == pid).select(genes).row(0)
                                                for pid in rna["patient_id"]}})
    transposed.write_csv(tmp_path / "rna_t.csv")
    ids = rna["patient_id"].to_list()
    a = OmicsPCA(layers=[{"name": "rna", "path": COHORT / "omics" / "rna.parquet"}], components=3).fit(ids, response(ids))
    b = OmicsPCA(layers=[{"name": "rna", "path": tmp_path / "rna_t.csv", "orientation": "features_by_patients"}],
                 components=3).fit(ids, response(ids))
    np.testing.assert_allclose(a.transform(ids).values, b.transform(ids).values, rtol=1e-4, atol=1e-4)


# --- bad input -------------------------------------------------------------

def _write(tmp_path: Path, frame: pl.DataFrame, name: str = "m.csv") -> Path:
    frame.write_csv(tmp_path / name)
    return tmp_path / name


def _small(n: int = 30, genes: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame({"patient_id": IDS[:n], **{f"G{j}": rng.normal(size=n) for j in range(genes)}})


def test_non_numeric_cell_names_row_and_column(tmp_path):
    frame = _small().with_columns(pl.col("G2").cast(pl.String)).with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("high")).otherwise(pl.col("G2")).alias("G2"))
    path = _write(tmp_path, frame)
    with pytest.raises(DataError, match=r"(?s)m\.csv: line 6 .*'G2' holds 'high'"):
        OmicsPCA(layers=[{"name": "rna", "path": path}]).available_ids()


def test_constant_layer_is_an_error_naming_it(tmp_path):
    frame = pl.DataFrame({"patient_id": IDS[:30], "G0": [1.0] * 30, "G1": [0.0] * 30})
    path = _write(tmp_path, frame)
    with pytest.raises(DataError, match="every feature of layer 'cnv' is constant"):
        OmicsPCA(layers=[{"name": "cnv", "path": path}]).fit(IDS[:30], response(IDS[:30]))


def test_duplicated_feature_names_are_an_error(tmp_path):
    (tmp_path / "m.tsv").write_text("patient_id\tTP53\tTP53\nP1\t1\t2\n", encoding="utf-8")
    with pytest.raises(DataError, match="repeats feature name"):
        OmicsPCA(layers=[{"name": "mutation", "path": tmp_path / "m.tsv"}]).available_ids()


def test_transposed_matrix_is_recognised_and_the_option_named(tmp_path):
    rna = _small(30, 200)
    genes = rna.columns[1:]
    transposed = pl.DataFrame({"patient_id": genes, **{pid: rna.filter(pl.col("patient_id") == pid).select(genes).row(0)
                                                      for pid in rna["patient_id"]}})
    path = _write(tmp_path, transposed)
    pca = OmicsPCA(layers=[{"name": "rna", "path": path}])
    message = pca.explain_id_mismatch(set(IDS))
    assert message and "looks transposed" in message and 'orientation = "features_by_patients"' in message
    assert "200 rows against 30 columns" in message


def test_patient_with_only_missing_values_lacks_the_layer(tmp_path):
    frame = _small().with_columns([pl.when(pl.col("patient_id") == IDS[3]).then(None).otherwise(pl.col(c)).alias(c)
                                   for c in ["G0", "G1", "G2", "G3", "G4"]])
    path = _write(tmp_path, frame)
    pca = OmicsPCA(layers=[{"name": "rna", "path": path}], components=2)
    assert IDS[3] not in pca.available_ids()
    block = pca.fit(IDS[:30], response(IDS[:30])).transform(IDS[:30])
    assert not block.presence[3] and block.presence.sum() == 29
    from tumorboard_omics.layers import LayerSpec, read_layer
    assert "only missing values" in read_layer(LayerSpec(name="rna", path=path)).report[0]


def _spec(tmp_path: Path, path: Path) -> Path:
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
[run]
name = "omics-ids"
task = "binary"
output = "{(tmp_path / 'run').as_posix()}"
[cohort]
outcomes = "{(COHORT / 'outcomes.csv').as_posix()}"
target = "response"
[[modality]]
name = "omics"
plugin = "omics.pca"
options = {{ layers = [{{ name = "rna", path = "{path.as_posix()}" }}], components = 2 }}
[model]
plugin = "model.logistic"
[evaluation]
folds = 3
bootstrap = 0
""", encoding="utf-8")
    return spec


def test_ids_that_match_no_cohort_patient(tmp_path):
    # none match: an error before anything runs, and no run directory is left
    frame = _small().with_columns(("X" + pl.col("patient_id")).alias("patient_id"))
    spec = _spec(tmp_path, _write(tmp_path, frame))
    with pytest.raises(DataError, match="none of its 30 patient ids match"):
        run(spec)
    assert not (tmp_path / "run").exists()
    # some do not: counted in a warning, the run goes on with the rest
    mixed = pl.concat([_small(), frame.head(5)])
    result = run(_spec(tmp_path, _write(tmp_path, mixed, "mixed.csv")))
    assert any("5 ids in the file are not in the cohort" in n for n in result.warnings)


NO_TCGA = "shared/data/tcga-ucec-mcat is absent (TCGA-UCEC with MCAT's folds)"


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "tcga-ucec-mcat").exists(), reason=NO_TCGA)
def test_tcga_ucec_pca_beats_the_genomic_only_baseline(tmp_path):
    import subprocess
    import sys

    examples = Path(__file__).resolve().parent.parent / "examples"
    subprocess.run([sys.executable, str(examples / "prepare_tcga_ucec.py"), str(tmp_path / "data" / "tcga-ucec")], check=True)
    spec = (examples / "tcga-ucec-pca.toml").read_text(encoding="utf-8").replace('output = "runs/tcga-ucec-pca"',
                                                                                 f'output = "{(tmp_path / "run").as_posix()}"')
    (tmp_path / "spec.toml").write_text(spec, encoding="utf-8")
    result = run(tmp_path / "spec.toml")
    folds = result.metrics["per_fold"]["c_index"]
    print(f"TCGA-UCEC omics.pca: C-index {folds['mean']:.3f} +/- {folds['sd']:.3f} over MCAT's folds")
    assert len(folds["values"]) == 5
    assert folds["mean"] > 0.53  # published genomic-only SNN: 0.493 +/- 0.096


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_head_trains_for_every_task(task):
    ids = IDS[:200]
    stage = OUTCOMES.filter(pl.col("patient_id").is_in(ids))["age_band"].to_list()
    classes = sorted(set(stage))
    y = (Target("multiclass", np.array([classes.index(s) for s in stage]), None, tuple(classes)) if task == "multiclass"
         else Target("regression", OUTCOMES["os_months"].to_numpy()[:200]))
    ae = OmicsAutoencoder(layers=[layer("rna", top_k=40)], supervised=True, output_head=True, **TINY)
    block = ae.fit(ids, y).transform(ids)
    heads = [n for n in block.feature_names if n.startswith("head")]
    assert len(heads) == (len(classes) if task == "multiclass" else 1)
    assert np.isfinite(block.values[block.presence]).all()
