"""pathology.slides: bags of tile embeddings (TRIDENT/CLAM .h5, .npz, Parquet), pooled per patient.

The synthetic cohort's slides plant a morphology in a few tiles of EGFR-mutant
patients' slides (tumorboard_synth/slides.py): the attention pool must find
those tiles on held-out patients and beat mean pooling.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from tumorboard.api import DataError, Target
from tumorboard.testing import parametrize_with_checks
from tumorboard_pathology.bags import read_bag
from tumorboard_pathology.modality import PathologySlides
from tumorboard_synth import SynthOptions, generate

COHORT = generate(Path(tempfile.mkdtemp(prefix="tumorboard-slides-")) / "c",
                  SynthOptions(patients=240, seed=9, images=False, rna_genes=100, slides=True))
MANIFEST = COHORT / "pathology" / "manifest.csv"
TRUTH = pl.read_parquet(COHORT / "ground_truth.parquet")
IDS = TRUTH["patient_id"].to_list()
EGFR = TRUTH["EGFR"].cast(pl.Int64).to_numpy()


def egfr(rows) -> Target:
    return Target("binary", EGFR[rows], None, ("0", "1"))


@parametrize_with_checks([PathologySlides(manifest=MANIFEST, pooling="mean"),
                          PathologySlides(manifest=MANIFEST, pooling="abmil", epochs=2, hidden=8, attention=4)],
                         tasks=["binary", "survival"])
def test_follows_the_component_contract(component, check):
    check(component)


def _bag(folder: Path, name: str, n: int = 5, dim: int = 4, encoder: str | None = "uni_v1", seed: int = 0) -> Path:
    import h5py

    rng = np.random.default_rng(seed)
    path = folder / f"{name}.h5"
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        d = f.create_dataset("features", data=rng.standard_normal((n, dim)).astype(np.float32))
        if encoder:
            d.attrs["encoder"] = encoder
        f.create_dataset("coords", data=np.arange(2 * n).reshape(n, 2) * 256).attrs["target_magnification"] = 20
    return path


def test_the_bag_formats_read_the_same_tiles(tmp_path):
    import h5py

    h5 = _bag(tmp_path, "a")
    bag = read_bag(h5, "a")
    assert bag.features.shape == (5, 4) and bag.encoder == "uni_v1" and bag.magnification == 20
    with h5py.File(tmp_path / "clam.h5", "w") as f:  # CLAM's (1, tiles, dim)
        f.create_dataset("features", data=bag.features[None])
        f.create_dataset("coords", data=bag.coords[None])
    np.savez(tmp_path / "b.npz", features=bag.features, coords=bag.coords, encoder=np.array("uni_v1"))
    pl.DataFrame({"x": bag.coords[:, 0], "y": bag.coords[:, 1], "features": bag.features.tolist()}).write_parquet(
        tmp_path / "c.parquet")
    pl.DataFrame({"x": bag.coords[:, 0], "y": bag.coords[:, 1],
                  **{f"f{j}": bag.features[:, j] for j in range(4)}}).write_parquet(tmp_path / "d.parquet")
    for name in ("clam.h5", "b.npz", "c.parquet", "d.parquet"):
        other = read_bag(tmp_path / name, name)
        np.testing.assert_allclose(other.features, bag.features, rtol=1e-6)
        np.testing.assert_array_equal(other.coords, bag.coords)
    assert read_bag(tmp_path / "b.npz", "b").encoder == "uni_v1"


def _manifest(folder: Path, rows: list[tuple[str, str]]) -> Path:
    path = folder / "manifest.csv"
    pl.DataFrame({"patient_id": [r[0] for r in rows], "slide": [r[1] for r in rows]}).write_csv(path)
    return path


def test_several_slides_make_one_bag_and_a_patient_without_slides_is_absent(tmp_path):
    _bag(tmp_path / "s", "a1", n=3, seed=1)
    _bag(tmp_path / "s", "a2", n=4, seed=2)
    _bag(tmp_path / "s", "b1", n=6, seed=3)
    manifest = _manifest(tmp_path, [("A", "s/a1.h5"), ("A", "s/a2.h5"), ("B", "s/b1.h5")])
    m = PathologySlides(manifest=manifest, pooling="mean")
    assert m.available_ids() == {"A", "B"}
    assert len(m._slides().tiles_of["A"]) == 7
    block = m.fit(["A", "B"], Target("binary", np.array([0, 1]), None, ("0", "1"))).transform(["A", "B", "C"])
    assert block.presence.tolist() == [True, True, False] and np.isnan(block.values[2]).all()
    # standardised with the training patients' tiles only
    tiles = m._slides().features[np.concatenate([m._slides().tiles_of["A"], m._slides().tiles_of["B"]])]
    np.testing.assert_allclose(m.tile_mean_, tiles.mean(axis=0), rtol=1e-5)
    # a fitted pool travels between processes without its caches of every tile
    import pickle

    m.transform(["A"])
    copy = pickle.loads(pickle.dumps(m))
    assert not {"_z", "_on_device"} & set(copy.__dict__)
    np.testing.assert_allclose(copy.transform(["A", "B"]).values, block.values[:2])
    only_a = PathologySlides(manifest=manifest, pooling="mean").fit(["A"], Target("binary", np.array([1]), None, ("0", "1")))
    np.testing.assert_allclose(only_a.tile_mean_, m._slides().features[m._slides().tiles_of["A"]].mean(axis=0), rtol=1e-5)


def test_encoders_and_dimensions_must_agree_across_slides(tmp_path):
    _bag(tmp_path / "s", "a", encoder="uni_v1")
    _bag(tmp_path / "s", "b", encoder="conch_v15")
    with pytest.raises(DataError, match=r"b\.h5: encoder 'conch_v15', but other slides say \['uni_v1'\]"):
        PathologySlides(manifest=_manifest(tmp_path, [("A", "s/a.h5"), ("B", "s/b.h5")]))._slides()
    _bag(tmp_path / "t", "a", dim=4)
    _bag(tmp_path / "t", "b", dim=6)
    with pytest.raises(DataError, match=r"b\.h5: embeddings of dimension 6, but slide 'a' has 4"):
        PathologySlides(manifest=_manifest(tmp_path, [("A", "t/a.h5"), ("B", "t/b.h5")]))._slides()
    with pytest.raises(DataError, match="the spec's encoder option says 'virchow2'"):
        PathologySlides(manifest=_manifest(tmp_path, [("A", "s/a.h5")]), encoder="virchow2")._slides()


def test_a_broken_bag_is_named(tmp_path):
    import h5py

    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("feats", data=np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"x\.h5: no 'features' dataset"):
        read_bag(tmp_path / "x.h5", "x")
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f.create_dataset("features", data=np.array([[0.0, np.nan]]))
    with pytest.raises(DataError, match="tile 0 has a NaN"):
        read_bag(tmp_path / "y.h5", "y")


def test_manifest_paths_stay_inside_its_folder(tmp_path):
    # attack: a shared data folder's manifest pointing at files elsewhere on the machine
    outside = _bag(tmp_path / "elsewhere", "secret")
    (tmp_path / "data").mkdir()
    for path in ("../elsewhere/secret.h5", str(outside)):
        manifest = _manifest(tmp_path / "data", [("A", path)])
        with pytest.raises(DataError, match="leaves the folder"):
            PathologySlides(manifest=manifest)._slides()


def test_links_out_of_a_bag_and_pickles_are_refused(tmp_path):
    import h5py

    _bag(tmp_path, "target")
    with h5py.File(tmp_path / "link.h5", "w") as f:  # attack: an HDF5 file that reads another file's data
        f["features"] = h5py.ExternalLink(str(tmp_path / "target.h5"), "/features")
    with pytest.raises(DataError, match="is a link to another place"):
        read_bag(tmp_path / "link.h5", "link")
    np.savez(tmp_path / "p.npz", features=np.array([object()], dtype=object))  # unpickling would run code
    with pytest.raises(DataError, match="without pickle"):
        read_bag(tmp_path / "p.npz", "p")


def test_new_slides_from_another_encoder_are_refused_at_transform(tmp_path):
    _bag(tmp_path / "s", "a", dim=4)
    _bag(tmp_path / "s", "b", dim=4, seed=1)
    manifest = _manifest(tmp_path, [("A", "s/a.h5"), ("B", "s/b.h5")])
    m = PathologySlides(manifest=manifest, pooling="max").fit(["A", "B"], Target("binary", np.array([0, 1]), None, ("0", "1")))
    _bag(tmp_path / "s", "a", dim=8)
    _bag(tmp_path / "s", "b", dim=8, seed=1)
    import os
    os.utime(manifest)  # the manifest's version moves when slides are re-extracted
    with pytest.raises(DataError, match="8-dimensional embeddings, the fitted pool expects 4"):
        m.transform(["A", "B"])


def _signal_of(m: PathologySlides) -> np.ndarray:
    """Each tile's planted-signal flag, in the order the modality holds the tiles."""
    slides = m._slides()
    truth = pl.read_parquet(COHORT / "ground_truth_tiles.parquet")
    order = {s: k for k, s in enumerate(slides.slides)}
    return (truth.with_columns(pl.col("slide_id").replace_strict(order).alias("k")).sort("k", "tile")["signal"]
            .to_numpy())


@pytest.mark.slow
def test_abmil_finds_the_planted_tiles_of_held_out_patients_and_chance_on_permuted_labels():
    rng = np.random.default_rng(0)
    order = rng.permutation(len(IDS))
    train, test = order[:180], order[180:]
    m = PathologySlides(manifest=MANIFEST, pooling="abmil").fit([IDS[i] for i in train], egfr(train))
    _, heads, bags, weights = m.attention([IDS[i] for i in test])
    assert roc_auc_score(EGFR[test], heads[:, 0]) > 0.8
    signal = _signal_of(m)
    mutant = [k for k, i in enumerate(test) if EGFR[i]]
    attention_on_signal = np.mean([weights[k][signal[bags[k]]].sum() for k in mutant])
    share_of_tiles = np.mean([signal[bags[k]].mean() for k in mutant])
    assert attention_on_signal > 0.3 and attention_on_signal > 5 * share_of_tiles, (attention_on_signal, share_of_tiles)
    # the same pool trained on permuted labels finds nothing
    shuffled = Target("binary", rng.permutation(EGFR[train]), None, ("0", "1"))
    null = PathologySlides(manifest=MANIFEST, pooling="abmil").fit([IDS[i] for i in train], shuffled)
    _, heads, _, _ = null.attention([IDS[i] for i in test])
    assert 0.25 < roc_auc_score(EGFR[test], heads[:, 0]) < 0.75


@pytest.mark.slow
def test_the_patient_card_lists_the_most_attended_tiles(tmp_path):
    from tumorboard import run
    from tumorboard_report.card import patient_card

    TRUTH.select("patient_id", pl.col("EGFR").cast(pl.Int8).alias("egfr")).write_csv(tmp_path / "outcomes.csv")
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
[run]
name = "slides"
task = "binary"
output = "{tmp_path / 'run'}"

[cohort]
outcomes = "outcomes.csv"
target = "egfr"

[[modality]]
name = "slides"
plugin = "pathology.slides"
options = {{ manifest = "{MANIFEST}", epochs = 30, top_tiles = 5 }}

[model]
plugin = "model.logistic"

[evaluation]
folds = 3
bootstrap = 20

[[explainer]]
plugin = "explain.saliency"
""", encoding="utf-8")
    result = run(spec)
    with np.load(result.path / "attributions" / "explain.saliency-images.npz") as stored:
        keys = [k for k in stored.files if k.endswith("/tile_attention")]
        assert keys and all(len(stored[k]) == 5 for k in keys)
        assert all(np.all(np.diff(stored[k]) <= 0) for k in keys)  # most attended first
    patient = keys[0].split("/")[1]
    card = patient_card(result.path, patient).read_text(encoding="utf-8")
    assert "the tiles the attention pool weighted most" in card and "x (px)" in card
    assert patient not in card  # the card names the patient by its keyed reference only
