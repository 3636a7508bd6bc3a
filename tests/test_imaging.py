"""imaging.radiomics: SimpleITK input checks, preprocessing cache, features against pyradiomics' baselines."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import SimpleITK as sitk

from tumorboard.api import DataError, Target
from tumorboard_synth import SynthOptions, generate
from tumorboard.testing import parametrize_with_checks
from tumorboard_imaging.io import check_geometry, mask_voxels, read_image, require_3d
from tumorboard_imaging.modality import ImagingRadiomics
from tumorboard_imaging.preprocess import Preparation, prepare
from tumorboard_imaging.radiomics import FAMILIES, region_features

from conftest import SHARED_DATA

COHORT = generate(Path(tempfile.mkdtemp(prefix="tumorboard-imaging-")) / "c", SynthOptions(patients=60, seed=3))
CACHE = Path(tempfile.mkdtemp(prefix="tumorboard-imaging-cache-"))
IDS = pl.read_csv(COHORT / "outcomes.csv")["patient_id"].to_list()
PYRADIOMICS = SHARED_DATA / "pyradiomics-testcases"
IBSI_DATA = SHARED_DATA / "ibsi"


def radiomics(**options) -> ImagingRadiomics:
    return ImagingRadiomics(manifest=COHORT / "imaging" / "manifest.csv", folder=COHORT, time_point="baseline",
                            cache=CACHE, **options)


@parametrize_with_checks([radiomics(families=["shape", "firstorder"])], tasks=["binary"])  # unsupervised: one task is enough here
def test_follows_the_component_contract(component, check):
    check(component)


def test_volume_follows_the_planted_tumour_volume():
    names, values, present = radiomics(families=["shape"]).raw_features(IDS)
    truth = pl.read_parquet(COHORT / "ground_truth.parquet").filter(pl.col("patient_id").is_in(IDS))
    volume = values[present, names.index("shape:VoxelVolume")]
    r = np.corrcoef(volume, truth["planted_volume_mm3"].to_numpy()[present])[0, 1]
    print("r(radiomics volume, planted volume) =", round(r, 3))
    assert r >= 0.95


def test_patients_without_a_scan_are_absent():
    block = radiomics(families=["firstorder"]).fit(IDS, Target("binary", np.arange(60) % 2, None, ("0", "1"))).transform(IDS)
    scanned = set(pl.read_csv(COHORT / "imaging" / "manifest.csv").filter(pl.col("timepoint") == "baseline")["patient_id"])
    assert [i in scanned for i in IDS] == block.presence.tolist()
    assert 0 < block.presence.sum() < 60


def test_prepared_arrays_are_cached(tmp_path):
    row = pl.read_csv(COHORT / "imaging" / "manifest.csv").row(0, named=True)
    image, mask = COHORT / row["image"], COHORT / row["mask"]
    prep = Preparation(spacing=(2.0, 2.0, 2.0), window=(-1000.0, 400.0))
    first = prepare(image, mask, prep, tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    second = prepare(image, mask, prep, tmp_path)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == (2.0, 2.0, 2.0) and first[0].max() <= 400 and first[0].min() >= -1000
    prepare(image, mask, Preparation(spacing=(3.0, 3.0, 3.0)), tmp_path)  # other parameters: another entry
    assert len(list(tmp_path.glob("*.npz"))) == 2


@pytest.mark.skipif(not PYRADIOMICS.exists(), reason="shared/data/pyradiomics-testcases is absent (pyradiomics' baselines)")
@pytest.mark.parametrize("case", ["brain1", "brain2", "breast1"])
def test_features_match_pyradiomics_baselines(case):
    image = read_image(PYRADIOMICS / f"{case}_image.nrrd")
    region = mask_voxels(read_image(PYRADIOMICS / f"{case}_label.nrrd"), Path(case), 1)
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    ours = region_features(array, region, image.GetSpacing()[::-1], bin_width=25.0, shift=2000.0)
    ours["firstorder:Kurtosis"] += 3  # pyradiomics reports kurtosis, IBSI excess kurtosis
    checked = 0
    baselines = {}
    for family in FAMILIES:
        with open(PYRADIOMICS / "baseline" / f"baseline_{family}.csv", encoding="utf-8") as handle:
            baselines[family] = {r[0]: r for r in csv.reader(handle)}
    for qualified, value in ours.items():
        family, name = qualified.split(":")
        if qualified in IBSI_ONLY:  # IBSI features pyradiomics does not report: checked on the IBSI phantom
            continue
        rows = baselines[family]
        column = rows["featureName"].index(case)
        reference = float(rows[f"original_{family}_{name}"][column])
        if name.endswith("AxisLength"):  # pyradiomics divides the covariance by n, IBSI by n - 1
            n = region.sum()
            reference *= np.sqrt(n / (n - 1))
        # surface meshes: pyradiomics' marching-cubes table differs from scikit-image's in ambiguous cases
        mesh = name in ("SurfaceArea", "SurfaceVolumeRatio", "Sphericity", "MeshVolume")
        assert value == pytest.approx(reference, rel=0.01 if mesh else 1e-6, abs=1e-9), f"{family}:{name}"
        checked += 1
    assert checked == 18 + 6 + 5 + 24 + 16 + 16 + 14 + 5  # ... GLSZM, GLDM, NGTDM


IBSI_ONLY = {"gldm:GrayLevelNonUniformityNormalized", "gldm:DependencePercentage", "gldm:DependenceEnergy"}


@pytest.mark.skipif(not IBSI_DATA.exists(), reason="shared/data/ibsi is absent (the IBSI 1 digital phantom)")
@pytest.mark.parametrize("family", ["shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"])
def test_ibsi_digital_phantom_within_consensus_tolerance(family):
    from tumorboard_imaging.ibsi import IBSI_TAGS, agrees, reference_row

    folder = IBSI_DATA / "ibsi1-digital-phantom"
    image = read_image(folder / "image" / "phantom.nii.gz")
    region = mask_voxels(read_image(folder / "mask" / "mask.nii.gz"), folder, None)
    # the phantom's grey levels are the integers 1-6: a bin width of 1 keeps them
    ours = region_features(sitk.GetArrayFromImage(image).astype(np.float64), region, image.GetSpacing()[::-1],
                           bin_width=1.0)
    with open(IBSI_DATA / "reference-values" / "ibsi_1_reference_values_digital_phantom.csv", encoding="utf-8-sig") as f:
        rows = {r["tag"]: r for r in csv.DictReader(f)}
    tags = {tag: name for tag, name in IBSI_TAGS.items() if name.startswith(f"{family}:")}
    assert tags
    for tag, name in tags.items():
        row = reference_row(rows, tag)
        reference, tolerance = float(row["reference value"]), float(row["tolerance"] or 0)
        assert agrees(ours[name], reference, tolerance), f"{tag}: ours {ours[name]:.5g}, IBSI {reference} ± {tolerance}"


def test_bounding_box_crop_changes_no_feature():
    row = pl.read_csv(COHORT / "imaging" / "manifest.csv").row(0, named=True)
    image = sitk.GetArrayFromImage(read_image(COHORT / row["image"])).astype(np.float64)
    region = mask_voxels(read_image(COHORT / row["mask"]), Path(row["mask"]), None)
    cropped = region_features(image, region, (2.5, 1.25, 1.25))
    # the whole volume, with the region moved away from the array's edge: every feature the same
    padded = region_features(np.pad(image, 3, constant_values=-1000.0), np.pad(region, 3), (2.5, 1.25, 1.25))
    assert cropped.keys() == padded.keys() and len(cropped) > 100
    for name, value in cropped.items():
        assert padded[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_diameter_candidates_keep_the_largest_distance():
    """The points dropped (too close to the centroid, or between two others on an axis-parallel line)
    never end the largest distance: it is unchanged, on point sets full of shared coordinates like a
    marching-cubes mesh's, round and elongated."""
    from scipy.spatial.distance import pdist
    from tumorboard_imaging.radiomics import _diameter_candidates

    rng = np.random.default_rng(0)
    assert len(_diameter_candidates(np.array([[0.0, 0.0, 0.0], [0.3, 1.1, 2.9]]))) == 2  # exactly on the bound
    for trial in range(200):
        points = rng.integers(0, 6, size=(rng.integers(2, 600), 3)).astype(np.float64) * [2.5, 0.7, 0.7]
        points *= [1.0, 1.0, 1 + 4 * (trial % 2)]  # every other set elongated
        points[: len(points) // 3, trial % 3] += 0.35  # half-voxel vertices, as marching cubes puts them
        kept = _diameter_candidates(points)
        assert len(kept) <= len(points)
        assert pdist(kept).max(initial=0.0) == pdist(points).max(initial=0.0)


def test_gldm_and_ngtdm_by_hand():
    from tumorboard_imaging.radiomics import gldm, ngtdm

    # a 2 x 2 x 1 region of levels 1 1 / 1 2 (bin width 1): every voxel neighbours the other three
    image = np.array([[[1.0, 1.0], [1.0, 2.0]]])
    region = np.ones_like(image, dtype=bool)
    dependence = gldm(image, region, bin_width=1.0)
    # the three 1s depend on two equal neighbours each (dependence 3), the 2 on none (dependence 1)
    assert dependence["SmallDependenceEmphasis"] == pytest.approx((3 / 9 + 1) / 4)
    assert dependence["LargeDependenceEmphasis"] == pytest.approx((3 * 9 + 1) / 4)
    tone = ngtdm(image, region, bin_width=1.0)
    # s_1 = 3 * |1 - 4/3|, s_2 = |2 - 1|; p = (3/4, 1/4)
    s1, s2, p1, p2 = 1.0, 1.0, 0.75, 0.25
    assert tone["Coarseness"] == pytest.approx(1 / (p1 * s1 + p2 * s2))
    assert tone["Strength"] == pytest.approx(2 * (p1 + p2) * 1 / (s1 + s2))


# --- bad input -------------------------------------------------------------

def _write(array: np.ndarray, path: Path, spacing=(1.0, 1.0, 1.0), origin=None) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing[: image.GetDimension()])
    if origin is not None:
        image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))
    return path


def test_corrupt_or_truncated_file_is_named(tmp_path):
    good = _write(np.zeros((8, 8, 8), np.int16), tmp_path / "scan.nii")
    data = good.read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=r"cut\.nii: cannot be read as an image"):
        read_image(tmp_path / "cut.nii")
    (tmp_path / "junk.mha").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"junk\.mha: cannot be read"):
        read_image(tmp_path / "junk.mha")


def test_2d_image_where_3d_is_expected(tmp_path):
    path = _write(np.zeros((16, 16), np.int16), tmp_path / "slice.nrrd")
    with pytest.raises(DataError, match=r"slice\.nrrd: a 3-D volume is expected but the image is 2-D"):
        require_3d(read_image(path), path)


def test_empty_mask_is_an_error(tmp_path):
    path = _write(np.zeros((4, 4, 4), np.uint8), tmp_path / "mask.nrrd")
    with pytest.raises(DataError, match=r"mask\.nrrd: the mask is empty"):
        mask_voxels(read_image(path), path, None)


def test_mask_labels_other_than_0_1_need_the_label_option(tmp_path):
    labels = np.zeros((4, 4, 4), np.uint8)
    labels[1, 1, 1], labels[2, 2, 2] = 1, 2
    path = _write(labels, tmp_path / "labels.nrrd")
    with pytest.raises(DataError, match=r"labels\.nrrd: the mask holds labels 0, 1, 2.*set the modality's option label"):
        mask_voxels(read_image(path), path, None)
    assert mask_voxels(read_image(path), path, 2).sum() == 1


def test_mismatched_geometry_names_both_files(tmp_path):
    image = _write(np.zeros((4, 5, 6), np.int16), tmp_path / "ct.nrrd", spacing=(1.0, 1.0, 2.0))
    mask = _write(np.ones((4, 5, 6), np.uint8), tmp_path / "seg.nrrd", spacing=(1.0, 1.0, 2.5))
    with pytest.raises(DataError, match=r"ct\.nrrd and mask .*seg\.nrrd disagree in spacing: \(1, 1, 2\) vs \(1, 1, 2.5\)"):
        check_geometry(read_image(image), read_image(mask), image, mask)


def test_dicom_folder_mixing_two_series(tmp_path):
    dicom = next((COHORT / "imaging" / "dicom").iterdir()) / "baseline"
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for k, f in enumerate(sorted(dicom.glob("*.dcm"))[:3]):
        (mixed / f"a{k}.dcm").write_bytes(f.read_bytes())
    # a second series: the same slices with another SeriesInstanceUID
    reader = sitk.ImageFileReader()
    for k, f in enumerate(sorted(dicom.glob("*.dcm"))[:3]):
        reader.SetFileName(str(f))
        image = reader.Execute()
        for key in reader.GetMetaDataKeys():
            image.SetMetaData(key, reader.GetMetaData(key))
        image.SetMetaData("0020|000e", "2.25.1234567890")
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(mixed / f"b{k}.dcm"))
        writer.Execute(image)
    with pytest.raises(DataError, match=r"mixed: the folder mixes 2 DICOM series"):
        read_image(mixed)
    assert read_image(dicom).GetDimension() == 3  # one series per folder reads fine


# --- imaging.cnn -------------------------------------------------------------

from tumorboard_imaging.cnn import ImagingCNN  # noqa: E402

TINY_CNN = {"shape": [8, 8, 8], "patch": 4, "width": 8, "depth": 1, "epochs": 2, "patience": 1, "batch_size": 16}


def cnn(**options) -> ImagingCNN:
    return ImagingCNN(manifest=COHORT / "imaging" / "manifest.csv", folder=COHORT, time_point="baseline", cache=CACHE,
                      **{**TINY_CNN, **options})


# each task only changes the loss head: one here, every task for the resnet configuration (slow pass)
@parametrize_with_checks([cnn()], tasks=["binary"])
def test_cnn_follows_the_component_contract(component, check):
    check(component)


# each fit compiles a network: the second backbone's kit run is a heavy check
@pytest.mark.slow
@parametrize_with_checks([cnn(backbone="resnet", width=4, output_head=True)], tasks=["binary", "survival"])
def test_cnn_resnet_follows_the_component_contract(component, check):
    check(component)


@pytest.mark.slow  # trains a Flax network: 8 s on 2 cores
def test_cnn_learns_a_planted_2d_pattern(tmp_path):
    # bright square top-left = class 1: the mixer must find it from 120 small images
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for k in range(160):
        image = rng.normal(0, 1, (16, 16)).astype(np.float32)
        label = int(k % 2)
        if label:
            image[2:7, 2:7] += 2.0
        sitk.WriteImage(sitk.GetImageFromArray(image), str(tmp_path / f"i{k}.mha"))
        rows.append({"patient_id": f"I{k}", "image": f"i{k}.mha"})
        labels.append(label)
    pl.DataFrame(rows).write_csv(tmp_path / "manifest.csv")
    ids = [r["patient_id"] for r in rows]
    # batch 16 and patience 30: enough steps that the result does not hinge on the seed (0.96-1.0 over seeds 0-2)
    model = ImagingCNN(manifest=tmp_path / "manifest.csv", shape=[16, 16], patch=4, width=16, depth=1, epochs=100,
                       patience=30, batch_size=16, crop_margin_mm=None, output_head=True, max_shift=0, cache=None)
    y = Target("binary", np.array(labels), None, ("0", "1"))
    block = model.fit(ids[:120], y.take(np.arange(120))).transform(ids[120:])
    from sklearn.metrics import roc_auc_score

    auroc = roc_auc_score(labels[120:], block.values[:, -1])
    print("held-out AUROC of the planted pattern", round(auroc, 3))
    assert auroc > 0.9


def test_cnn_refuses_a_2d_image_for_a_3d_shape(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((16, 16), np.float32)), str(tmp_path / "flat.mha"))
    pl.DataFrame({"patient_id": ["A"], "image": ["flat.mha"]}).write_csv(tmp_path / "manifest.csv")
    model = ImagingCNN(manifest=tmp_path / "manifest.csv", shape=[16, 16, 16], crop_margin_mm=None, cache=None)
    with pytest.raises(DataError, match=r"flat\.mha: the image is 2-D but shape asks for 3-D input; set shape to 2 sizes"):
        model.fit(["A"], Target("binary", np.array([1]), None, ("0", "1")))


def test_glszm_counts_26_connected_zones_by_hand():
    # two grey levels: a 2x2x2 cube of level 2 (one zone of 8), and two level-1 voxels that touch
    # only at a corner (26-connected: one zone of 2), in a 3x3x3 region
    image = np.zeros((4, 4, 4))
    region = np.zeros((4, 4, 4), bool)
    region[:2, :2, :2] = True
    image[:2, :2, :2] = 50.0
    region[3, 3, 3] = region[2, 2, 2] = True
    image[3, 3, 3] = image[2, 2, 2] = 0.0
    features = region_features(image, region, (1.0, 1.0, 1.0), families=("glszm",), bin_width=25.0)
    # zones: (level 1, size 2) and (level 3, size 8); levels are 1 + floor(v / 25) - floor(min / 25)
    assert features["glszm:ZonePercentage"] == pytest.approx(2 / 10)
    assert features["glszm:SmallAreaEmphasis"] == pytest.approx((1 / 4 + 1 / 64) / 2)
    assert features["glszm:LargeAreaEmphasis"] == pytest.approx((4 + 64) / 2)
    assert features["glszm:LowGrayLevelZoneEmphasis"] == pytest.approx((1 + 1 / 9) / 2)


def test_rotation_augment_turns_the_image_in_plane():
    import jax
    import jax.numpy as jnp

    from tumorboard_imaging.cnn import augment, rotate

    image = np.zeros((1, 3, 9, 9, 1), np.float32)
    image[0, :, 4, 6:9] = 1.0  # a bar to the right of the centre, in every slice
    turned = np.asarray(rotate(jnp.asarray(image), jnp.asarray([np.pi / 2])))
    np.testing.assert_allclose(turned[0, :, 6:9, 4, 0], 1.0, atol=1e-5)  # now below (or above) the centre
    assert turned[0, :, 4, 6:9].max() < 1e-5
    np.testing.assert_allclose(np.asarray(rotate(jnp.asarray(image), jnp.zeros(1))), image, atol=1e-6)
    # the augmentation with small angles keeps most of a smooth image and differs between keys
    smooth = np.broadcast_to(np.linspace(-1, 1, 9, dtype=np.float32)[None, None, None, :, None], (2, 3, 9, 9, 1))
    a = np.asarray(augment(jnp.asarray(smooth), jax.random.PRNGKey(0), 0, 10.0))
    b = np.asarray(augment(jnp.asarray(smooth), jax.random.PRNGKey(1), 0, 10.0))
    assert a.shape == smooth.shape and not np.allclose(a, b)


@pytest.mark.slow  # over 10 s on 2 cores: trains a Flax network
@pytest.mark.parametrize("baseline", ["black", "blur"])
def test_cnn_saliency_maps_the_largest_tumour_slice(baseline):
    ids = pl.read_csv(COHORT / "outcomes.csv")["patient_id"].to_list()
    y = Target("binary", pl.read_csv(COHORT / "outcomes.csv")["response"].to_numpy(), None, ("0", "1"))
    model = cnn(field="fixed", spacing=(2.0, 2.0, 2.5), shape=[8, 16, 16], saliency_baseline=baseline, saliency_steps=8)
    a = model.fit(ids, y).saliency(ids)
    maps = a.images["imaging.cnn"]
    scanned = set(model.transform(ids).ids[i] for i in np.flatnonzero(model.transform(ids).presence))
    assert set(maps) == scanned and len(scanned) < len(ids)  # patients without a scan get no map
    for m in maps.values():
        assert m["image"].shape == m["saliency"].shape == m["mask"].shape == (16, 16)
        # the kept slice is the one with the largest tumour area, and the shares are shares
        assert m["mask"].sum() > 0 and 0 <= float(m["inside"]) <= 1 and 0 < float(m["mask_share"]) < 1
        # the stricter chance level counts only voxels that differ from the baseline, so it is the larger
        assert float(m["mask_share"]) <= float(m["support_share"]) <= 1


def test_fixed_field_needs_a_spacing():
    with pytest.raises(Exception, match="field = 'fixed' needs spacing"):
        cnn(field="fixed")
