"""Safe by construction: each test is an attack or a careless mistake, and what must happen instead.

docs/security.md lists the threat model and, per class, which test here proves it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from pydantic import BaseModel, ConfigDict

from tumorboard.api import Model
from tumorboard._engine.cli import build_app

app = build_app()
from tumorboard._engine.engine import run
from tumorboard._engine.errors import ComponentError, RunError
from tumorboard_synth.quickstart import write_quickstart
from tumorboard._engine.rundir import MANIFEST, STAGING_MARK, write_manifest

from conftest import fast, set_key

runner = CliRunner()


def probe_module(folder: Path, name: str, marker: Path) -> None:
    """A module that, if it is ever imported, leaves a marker file: the proof that code ran."""
    (folder / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n", encoding="utf-8")


def reseal(run_dir: Path) -> None:
    """An attacker controls the whole run directory, so they can rewrite the manifest too."""
    (run_dir / MANIFEST).unlink()
    write_manifest(run_dir, "run")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """One finished quickstart run shared by the read-only attacks; returns its run directory."""
    spec = fast(write_quickstart(tmp_path_factory.mktemp("finished") / "qs", patients=160, seed=2), bootstrap=20)
    return run(spec).path


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    """A private copy of the finished run, to tamper with."""
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


# --- 1. no code from data folders, spec folders or run directories -------------------------


def test_module_in_a_data_folder_is_never_importable_after_predict(finished, tmp_path):
    data = tmp_path / "new"
    shutil.copytree(finished.parents[1], data, ignore=shutil.ignore_patterns("runs"))
    marker = tmp_path / "ran"
    probe = f"tb_probe_{uuid.uuid4().hex[:8]}"
    probe_module(data, probe, marker)
    probe_module(data, "cython", marker)
    result = runner.invoke(app, ["predict", str(finished), "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert str(data) not in sys.path and str(data.resolve()) not in sys.path
    assert importlib.util.find_spec(probe) is None  # a later, unrelated import cannot reach the folder
    found = importlib.util.find_spec("cython")
    assert found is None or not str(found.origin).startswith(str(data))
    assert not marker.exists()


def test_module_beside_a_spec_is_never_importable_after_validate(tmp_path):
    spec = write_quickstart(tmp_path / "qs", patients=60, seed=1)
    marker = tmp_path / "ran"
    probe = f"tb_probe_{uuid.uuid4().hex[:8]}"
    probe_module(spec.parent, probe, marker)
    probe_module(spec.parent, "cython", marker)
    result = runner.invoke(app, ["spec", "validate", str(spec)])
    assert result.exit_code == 0, result.output
    assert str(spec.parent) not in sys.path
    assert importlib.util.find_spec(probe) is None
    assert not marker.exists()


def test_run_directory_plugins_are_never_replayed_on_predict(run_copy, tmp_path):
    marker = tmp_path / "ran"
    probe_module(run_copy, "evil_plugin", marker)
    (run_copy / "spec.toml").write_text((run_copy / "spec.toml").read_text() + '\n[plugins]\nmodules = ["evil_plugin"]\n')
    reseal(run_copy)
    data = tmp_path / "new"
    shutil.copytree(Path(json.loads((run_copy / "resolved.json").read_text())["cohort"]["outcomes"]).parent, data,
                    ignore=shutil.ignore_patterns("runs"))
    probe_module(data, "evil_plugin", marker)
    result = runner.invoke(app, ["predict", str(run_copy), "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    for command in (["report", str(run_copy)], ["explain", str(run_copy), "--patient", "QS00003"]):
        assert runner.invoke(app, command).exit_code == 0
    assert not marker.exists()


def _estimator_with(callable_name: str):
    """A real fitted model whose saved estimator also names a callable inside numpy."""
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier

    module, name = callable_name.rsplit(".", 1)
    estimator = HistGradientBoostingClassifier(max_iter=3).fit(np.random.default_rng(0).random((40, 2)), np.arange(40) % 2)
    estimator.hook = getattr(importlib.import_module(module), name)
    return np.frombuffer(sio.dumps(estimator), dtype=np.uint8).copy()


def test_estimator_naming_a_numpy_callable_is_refused():
    from tumorboard._engine.estimators import load_estimator

    blob = _estimator_with("numpy.testing._private.utils.runstring")
    with pytest.raises(ComponentError, match=r"does not trust: numpy\.testing\._private\.utils\.runstring"):
        load_estimator(blob, owner="model.gbm")


def test_tampered_estimator_in_a_run_is_refused_naming_the_file(tmp_path):
    spec = fast(write_quickstart(tmp_path / "qs", patients=120, seed=3), bootstrap=10)
    spec.write_text(spec.read_text().replace('plugin = "model.logistic"', 'plugin = "model.gbm"\noptions = { max_iter = 5 }'))
    run_dir = run(spec).path
    (state,) = (run_dir / "pipeline").glob("*-model-model.npz")
    with np.load(state, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    key = next(k for k, v in arrays.items() if v.dtype == np.uint8)
    arrays[key] = _estimator_with("numpy.testing._private.utils.runstring")
    np.savez(state, **arrays)
    reseal(run_dir)
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(spec.parent)])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert state.stem in text and "does not trust" in text


@pytest.mark.parametrize("options", [
    {"plugin": "model.gbm", "calibration": "isotonic"}, {"plugin": "model.gbm", "calibration": "sigmoid"},
    {"plugin": "model.gbm", "task": "multiclass"}, {"plugin": "model.gbm", "task": "regression"},
    {"plugin": "model.coxnet"}, {"plugin": "model.rsf", "n_estimators": 3}, {"plugin": "model.gbsurv", "n_estimators": 3},
])
def test_every_builtin_estimator_loads_under_the_exact_trust_list(options):
    from tumorboard._engine.plugins import load_plugins
    from tumorboard.testing import synthetic_features, synthetic_target

    options = dict(options)
    name = options.pop("plugin")
    cls = load_plugins().get("model", name)
    task = options.pop("task", next(t for t in ("binary", "survival") if t in cls.tasks))
    X, signal = synthetic_features(80)
    y = synthetic_target(task, 80, signal)
    model = cls.from_options(options).fit(X, y)
    fresh = cls.from_options(options)
    fresh.set_state(model.get_state())  # refuses any type outside TRUSTED_TYPES
    np.testing.assert_allclose(fresh.predict(X), model.predict(X))


# --- 2. nothing lost -----------------------------------------------------------------------


@pytest.fixture
def qs(tmp_path) -> Path:
    return fast(write_quickstart(tmp_path / "qs", patients=100, seed=5), bootstrap=10)


def test_overwrite_refuses_a_folder_that_is_not_a_run(qs):
    mine = qs.parent / "runs" / "quickstart"
    mine.mkdir(parents=True)
    (mine / "thesis.docx").write_text("years of work")
    with pytest.raises(RunError, match="not a tumorboard run"):
        run(qs, overwrite=True)
    assert (mine / "thesis.docx").read_text() == "years of work"


@pytest.mark.parametrize(("output", "reason"), [
    (".", "holds .*spec.toml"),          # the spec's folder
    ("..", "holds .*spec.toml"),         # a folder above it
    ("data", "holds .*labs.csv"),        # a folder that holds an input
])
def test_overwrite_refuses_the_spec_folder_and_folders_holding_inputs(qs, output, reason):
    data = qs.parent / "data"
    data.mkdir()
    shutil.move(qs.parent / "labs.csv", data / "labs.csv")
    set_key(qs, "options", '{ path = "data/labs.csv" }')
    set_key(qs, "output", f'"{output}"')
    before = sorted(p.name for p in qs.parent.iterdir())
    with pytest.raises(RunError, match=reason):
        run(qs, overwrite=True)
    assert sorted(p.name for p in qs.parent.iterdir()) == before


def test_overwrite_refuses_the_current_folder(qs, monkeypatch):
    first = run(qs).path
    monkeypatch.chdir(first)
    with pytest.raises(RunError, match="current folder"):
        run(qs, overwrite=True)
    assert (first / MANIFEST).is_file()


def test_overwrite_never_follows_a_symlink(qs, tmp_path):
    elsewhere = run(qs).path.rename(tmp_path / "someone-elses-run")
    link = qs.parent / "runs" / "quickstart"
    link.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(RunError, match="symbolic link"):
        run(qs, overwrite=True)
    assert (elsewhere / MANIFEST).is_file() and link.is_symlink()


def test_overwrite_replaces_a_finished_run_with_its_cards(qs):
    first = run(qs).path
    assert runner.invoke(app, ["explain", str(first), "--patient", "QS00003"]).exit_code == 0
    assert run(qs, overwrite=True).path == first and not (first / "cards").exists()


@pytest.mark.parametrize("intrusion", ["file", "link"])
def test_overwrite_refuses_a_run_holding_anything_tumorboard_did_not_write(qs, tmp_path, intrusion):
    first = run(qs).path
    if intrusion == "file":
        (first / "pipeline" / "my-notes.txt").write_text("keep me")
    else:
        (tmp_path / "elsewhere").mkdir()
        (first / "attachments").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(RunError, match="--overwrite refused"):
        run(qs, overwrite=True)
    assert (first / MANIFEST).is_file()
    assert intrusion == "link" or (first / "pipeline" / "my-notes.txt").read_text() == "keep me"


def test_folder_appearing_during_the_run_is_kept_and_the_run_goes_beside_it(qs):
    output = qs.parent / "runs" / "quickstart"

    class Intruder:
        def begin(self, total, description):  # another run, or a user, creates the folder meanwhile
            output.mkdir(parents=True)
            (output / "mine.txt").write_text("keep me")

        def update(self, description): ...
        def advance(self): ...
        def end(self): ...

    result = run(qs, progress=Intruder())
    assert (output / "mine.txt").read_text() == "keep me"
    assert result.path != output and result.path.parent == output.parent and (result.path / MANIFEST).is_file()
    assert any("changed during the run" in w for w in result.warnings)


def test_demo_never_deletes_an_existing_cohort_folder(tmp_path):
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    (cohort / "patients.csv").write_text("precious")
    for extra, says in (([], "is not a complete tumorboard synthetic cohort"), (["--fresh"], "--overwrite refused")):
        result = runner.invoke(app, ["demo", "--dir", str(tmp_path), "--quiet", *extra])
        assert result.exit_code == 1 and says in " ".join(result.output.split())
        assert (cohort / "patients.csv").read_text() == "precious"


def test_demo_refuses_a_synthetic_cohort_of_another_size(tmp_path):
    from tumorboard_synth import SynthOptions, generate

    generate(tmp_path / "cohort", SynthOptions(patients=60, images=False, rna_genes=100))
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path), "--patients", "80"])
    assert result.exit_code == 1 and "--fresh" in result.output
    assert (tmp_path / "cohort" / MANIFEST).is_file()


def test_report_redraw_is_atomic_on_a_full_disk(run_copy, monkeypatch):
    import errno

    before = (run_copy / "report.html").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    result = runner.invoke(app, ["report", str(run_copy)])
    assert result.exit_code != 0
    assert (run_copy / "report.html").read_bytes() == before
    assert not [p for p in run_copy.iterdir() if ".tmp-" in p.name]


def test_out_files_are_never_overwritten_silently_nor_inputs_ever(finished, tmp_path):
    data = str(finished.parents[1])
    existing = tmp_path / "predictions.csv"
    existing.write_text("earlier results")
    result = runner.invoke(app, ["predict", str(finished), "--data", data, "--out", str(existing)])
    assert result.exit_code == 1 and "already exists" in result.output and existing.read_text() == "earlier results"
    for target in (finished.parents[1] / "labs.csv", finished / "metrics.json"):
        before = target.read_bytes()
        result = runner.invoke(app, ["predict", str(finished), "--data", data, "--out", str(target), "--overwrite"])
        assert result.exit_code == 1 and "reads" in result.output and target.read_bytes() == before
    card = tmp_path / "card.html"
    card.write_text("a card")
    result = runner.invoke(app, ["explain", str(finished), "--patient", "QS00003", "--out", str(card)])
    assert result.exit_code == 1 and card.read_text() == "a card"
    assert runner.invoke(app, ["explain", str(finished), "--patient", "QS00003", "--out", str(card), "--overwrite"]).exit_code == 0


@pytest.mark.parametrize("command", [["predict", "--data", "."], ["explain", "--patient", "QS00003"], ["report"],
                                     ["recommend", "--patient", "QS00003"]])
def test_commands_refuse_a_folder_without_the_completion_manifest(run_copy, command):
    (run_copy / MANIFEST).unlink()
    result = runner.invoke(app, [command[0], str(run_copy), *command[1:]])
    assert result.exit_code == 1 and "not a finished tumorboard run" in " ".join(result.output.split())


@pytest.mark.parametrize("changed", ["metrics.json", "pipeline/manifest.json"])
def test_commands_name_a_file_that_does_not_match_the_manifest(run_copy, changed):
    with (run_copy / changed).open("a", encoding="utf-8") as fh:
        fh.write(" ")
    result = runner.invoke(app, ["predict", str(run_copy), "--data", "."])
    assert result.exit_code == 1 and f"{changed} does not match" in " ".join(result.output.split())


def test_sigterm_is_handled_like_ctrl_c(qs, tmp_path):
    ready = tmp_path / "ready"
    script = f"""
import time
from tumorboard._engine.engine import run
class Slow:
    def begin(self, total, description):
        open({str(ready)!r}, "w").close()
        time.sleep(120)
    def update(self, d): ...
    def advance(self): ...
    def end(self): ...
run({str(qs)!r}, progress=Slow())
"""
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.1)
    assert ready.exists(), child.stderr.read() if child.poll() is not None else "the run never started"
    assert list((qs.parent / "runs").glob(".quickstart.incomplete-*"))
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=60)
    assert "KeyboardInterrupt" in stderr  # handled as an interrupt: the cleanup ran
    assert not list((qs.parent / "runs").glob(".quickstart.incomplete-*"))
    assert not (qs.parent / "runs" / "quickstart").exists()


def test_stale_staging_of_a_dead_process_is_removed_and_nothing_else(qs):
    runs = qs.parent / "runs"
    runs.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    output, host, pid = str(runs / "quickstart"), socket.gethostname(), int(dead.stdout)

    def staging(name: str, **mark) -> Path:
        folder = runs / f".quickstart.incomplete-{name}"
        folder.mkdir()
        (folder / STAGING_MARK).write_text(json.dumps({"pid": pid, "host": host, "output": output, **mark}))
        return folder

    stale = staging(f"{pid}-dead")
    live = staging(f"{os.getppid()}-live", pid=os.getppid())
    # the same dead process id, written by another machine on a shared file system: its run may be alive
    other_host = staging(f"{pid}-remote", host="another-host")
    renamed = staging("12345-other")  # the folder's name does not carry the recorded process
    unmarked = runs / ".quickstart.incomplete-unmarked"
    unmarked.mkdir()
    run(qs)
    assert not stale.exists()
    assert live.exists() and other_host.exists() and renamed.exists() and unmarked.exists()


def test_report_failure_keeps_the_finished_computation(qs, monkeypatch):
    from tumorboard_report.report import CohortReport

    def broken(*args, **kwargs):
        raise ValueError("a figure could not be drawn")

    monkeypatch.setattr(CohortReport, "render", broken)
    result = run(qs)
    for name in ("metrics.json", "predictions.parquet", "pipeline", MANIFEST):
        assert (result.path / name).exists()
    assert any("tumorboard report" in w and "a figure could not be drawn" in w for w in result.warnings)
    assert any("tumorboard report" in w for w in json.loads((result.path / "metrics.json").read_text())["warnings"])


# --- 3. no silent wrong answers on new patients ----------------------------------------------


def test_absolute_input_path_is_read_from_the_data_folder_or_refused(tmp_path):
    spec = fast(write_quickstart(tmp_path / "train", patients=120, seed=4), bootstrap=10)
    set_key(spec, "options", f'{{ path = "{spec.parent / "labs.csv"}" }}')
    run_dir = run(spec).path
    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(spec.parent / "cohort.csv", new / "cohort.csv")
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(new)])
    assert result.exit_code == 1
    assert "outside the --data folder" in " ".join(result.output.split()) and "options.path" in result.output
    labs = pl.read_csv(spec.parent / "labs.csv").with_columns(pl.col("hemoglobin") * 0 + 20.0)
    labs.write_csv(new / "labs.csv")
    out = tmp_path / "p.csv"
    assert runner.invoke(app, ["predict", str(run_dir), "--data", str(new), "--out", str(out)]).exit_code == 0
    trained = pl.read_parquet(run_dir / "predictions.parquet")
    assert pl.read_csv(out)["y_pred"].n_unique() > 1
    assert not np.allclose(np.sort(pl.read_csv(out)["y_pred"].to_numpy())[:5], np.sort(trained["y_pred"].to_numpy())[:5])


def test_patient_without_any_data_gets_no_prediction_and_a_warning(finished, tmp_path):
    data = tmp_path / "new"
    shutil.copytree(finished.parents[1], data, ignore=shutil.ignore_patterns("runs"))
    cohort = pl.read_csv(data / "cohort.csv")
    pl.concat([cohort, cohort.head(1).with_columns(pl.lit("NEW001").alias("patient_id"))]).write_csv(data / "cohort.csv")
    out = tmp_path / "p.csv"
    result = runner.invoke(app, ["predict", str(finished), "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 of 161 patients have no data in any modality" in " ".join(result.output.split())
    row = pl.read_csv(out).filter(pl.col("patient_id") == "NEW001")
    assert row["y_pred"][0] is None and row["note"][0] == "no data in any modality"


def _with_text_column(folder: Path) -> None:
    labs = pl.read_csv(folder / "labs.csv")
    labs.with_columns(pl.Series("stage", ["I", "II", "III", "IV"] * (labs.height // 4) + ["I"] * (labs.height % 4))
                      ).write_csv(folder / "labs.csv")


def test_new_data_missing_a_categorical_column_is_an_error(tmp_path):
    spec = fast(write_quickstart(tmp_path / "train", patients=120, seed=4), bootstrap=10)
    _with_text_column(spec.parent)
    run_dir = run(spec).path
    new = tmp_path / "new"
    shutil.copytree(spec.parent, new, ignore=shutil.ignore_patterns("runs"))
    pl.read_csv(new / "labs.csv").drop("stage").write_csv(new / "labs.csv")
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(new)])
    assert result.exit_code == 1 and "['stage']" in result.output and "missing" in result.output


def test_text_in_a_column_that_was_numeric_names_file_line_and_column(finished, tmp_path):
    new = tmp_path / "new"
    shutil.copytree(finished.parents[1], new, ignore=shutil.ignore_patterns("runs"))
    labs = pl.read_csv(new / "labs.csv").with_columns(pl.col("ldh").cast(pl.String))
    labs = labs.with_columns(pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("high")).otherwise(pl.col("ldh")).alias("ldh"))
    labs.write_csv(new / "labs.csv")
    result = runner.invoke(app, ["predict", str(finished), "--data", str(new)])
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "labs.csv: line 2, column 'ldh' holds 'high'" in text


def test_few_text_cells_in_a_numeric_column_are_named_or_coerced_on_request(qs):
    labs = pl.read_csv(qs.parent / "labs.csv").with_columns(pl.col("ldh").cast(pl.String))
    labs = labs.with_columns(pl.when(pl.int_range(pl.len()) == 6).then(pl.lit("<5")).otherwise(pl.col("ldh")).alias("ldh"))
    labs.write_csv(qs.parent / "labs.csv")
    result = runner.invoke(app, ["run", str(qs), "--quiet"])
    text = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "column 'ldh' holds numbers except for 1 text cell(s): line 8 '<5'" in text and "coerce_text" in text
    set_key(qs, "options", '{ path = "labs.csv", coerce_text = true }')
    metrics = run(qs).metrics
    assert metrics["overall"]["auroc"]["value"] > 0.6  # ldh still a numeric feature, not 90 categories


def test_unusable_images_mark_the_patient_absent_with_a_warning(tmp_path):
    import SimpleITK as sitk

    from tumorboard._engine.data import Target
    from tumorboard._engine.plugins import load_plugins

    rng = np.random.default_rng(0)
    rows = []
    for k in range(6):
        volume = rng.normal(40, 10, (12, 16, 16)).astype(np.float32)
        if k == 4:
            volume[:] = 7.0           # a blank export
        if k == 5:
            volume[:] = np.nan        # nothing readable after preprocessing
        mask = np.zeros((12, 16, 16), np.uint8)
        mask[4:8, 5:11, 5:11] = 1
        for name, array in (("img", volume), ("msk", mask)):
            sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / f"{name}{k}.nii.gz"))
        rows.append({"patient_id": f"P{k}", "image": f"img{k}.nii.gz", "mask": f"msk{k}.nii.gz"})
    pl.DataFrame(rows).write_csv(tmp_path / "manifest.csv")
    cls = load_plugins().get("modality", "imaging.radiomics")
    modality = cls.from_options({"manifest": "manifest.csv", "cache": None, "families": ["firstorder"]}, base_dir=tmp_path)
    ids = [f"P{k}" for k in range(6)]
    with pytest.warns(UserWarning, match=r"2 image\(s\) are unusable after preprocessing"):
        block = modality.fit(ids[:4], Target("binary", np.array([0, 1, 0, 1]), None, ("0", "1"))).transform(ids)
    assert block.presence.tolist() == [True, True, True, True, False, False]
    assert np.isnan(block.values[4:]).all()


# --- 5. the conformance kit catches what leaked ----------------------------------------------


class _BinaryTestModel(Model):
    """Base of the kit's test models: binary, no options, a clear error on mismatched rows."""

    tasks = frozenset({"binary"})

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def check_rows(self, X, y) -> None:
        if len(X.ids) != len(y):
            raise ValueError(f"{len(X.ids)} rows, {len(y)} targets")


def test_kit_catches_a_model_that_remembers_labels_by_id():
    from tumorboard.testing import ConformanceError, check_component

    memory: dict[str, float] = {}

    class Rememberer(_BinaryTestModel):
        """Predicts the label it saw for an id in any earlier fit (a leak across folds)."""

        name = "model.rememberer"

        def fit(self, X, y):
            self.check_rows(X, y)
            memory.update(zip(X.ids, y.values.astype(float), strict=True))
            self.rate_ = np.array([y.values.mean(), 0.0])
            return self

        def predict(self, X):
            return np.array([memory.get(i, self.rate_[0]) for i in X.ids], dtype=float)

    with pytest.raises(ConformanceError) as caught:
        check_component(Rememberer())
    assert "check_fresh_instance_not_influenced_by_earlier_fits" in str(caught.value)
    assert "check_model_learns_planted_signal" in str(caught.value)  # fresh ids: memory no longer helps


def test_kit_does_not_call_constant_fitted_arrays_leakage():
    from tumorboard.testing import check_component

    class Unscaled(_BinaryTestModel):
        """Scores the first feature; its fitted arrays hold one value each (no scaling, no offset)."""

        name = "model.unscaled"

        def fit(self, X, y):
            self.check_rows(X, y)
            self.scale_ = np.ones(X.values.shape[1])
            self.offset_ = np.zeros(X.values.shape[1])
            return self

        def predict(self, X):
            z = (X.values[:, 0] - self.offset_[0]) * self.scale_[0]
            return 1 / (1 + np.exp(-3 * z))

    check_component(Unscaled())  # every check passes, check_fit_uses_train_ids_only included


def test_kit_runs_only_the_checks_of_the_components_family():
    from tumorboard._engine.plugins import load_plugins
    from tumorboard.testing import checks_for

    registry = load_plugins()
    explainer = registry.get("explainer", "explain.permutation")()
    names = {c.__name__ for c in checks_for(explainer)}
    assert "check_presence_marks_unknown_ids_absent" not in names and "check_state_roundtrip" not in names
    assert "check_explainer_finds_planted_feature" in names


def test_kit_reports_rows_with_the_engines_message(tmp_path):
    from pydantic import BaseModel, ConfigDict

    from tumorboard.api import FeatureBlock, Modality
    from tumorboard.testing import ConformanceError, check_one_row_per_id

    class Short(Modality):
        """Drops the last patient."""

        name = "tabular.short"
        tasks = frozenset({"binary"})

        class Options(BaseModel):
            model_config = ConfigDict(extra="forbid")

        def available_ids(self):
            return {f"S{i}" for i in range(20)}

        def fit(self, ids, y):
            self.n_ = np.array([len(ids), 1.0])
            return self

        def transform(self, ids):
            ids = list(ids)[:-1]
            return FeatureBlock(tuple(ids), np.zeros((len(ids), 1)), ("x",), np.ones(len(ids), bool), self.name)

    with pytest.raises(ConformanceError, match="rows for .* ids; return one row per id, in the order given, and mark"):
        check_one_row_per_id(Short())


# --- 6. privacy and clear errors ------------------------------------------------------------


def test_card_reference_is_keyed_by_a_per_run_secret(finished, qs):
    import hashlib

    from tumorboard._engine.runfiles import CARD_KEY

    other = run(qs).path
    refs = []
    for r in (finished, other):
        assert runner.invoke(app, ["explain", str(r), "--patient", "QS00003"]).exit_code == 0
        refs += [p.name.removeprefix("card-").removesuffix(".html") for p in (r / "cards").glob("card-*.html")]
    refs = sorted(set(refs))
    assert len(refs) == 2
    assert refs[0] != refs[1]  # the same id, another run: another reference
    digest = hashlib.sha256(b"QS00003").hexdigest()
    assert not any(digest.startswith(r) for r in refs)  # enumerating id formats and hashing finds nothing
    assert len((finished / CARD_KEY).read_text().strip()) == 64


def _leaves_nothing(qs: Path) -> None:
    runs = qs.parent / "runs"
    assert not runs.exists() or not any(runs.iterdir()), sorted(p.name for p in runs.iterdir())


@pytest.mark.parametrize(("case", "expected"), [
    ("seed_negative", "run.seed = -1"),
    ("seed_too_large", "run.seed = 4294967296"),
    ("not_utf8", "not UTF-8 text"),
    ("directory", "is a folder; give the spec file itself"),
    ("no_events", "no patient has an event"),
    ("huge_number", "column 'ldh' holds inf"),
])
def test_bad_input_gets_a_clear_error_and_leaves_nothing(qs, case, expected):
    target = qs
    if case == "seed_negative":
        set_key(qs, "seed", "-1")
    elif case == "seed_too_large":
        set_key(qs, "seed", str(2**32))
    elif case == "not_utf8":
        qs.write_bytes(qs.read_bytes().replace(b'name = "quickstart"', b'name = "quick\xe9start"'))
    elif case == "directory":
        target = qs.parent
    elif case == "no_events":
        cohort = pl.read_csv(qs.parent / "cohort.csv").with_columns(pl.lit(12.0).alias("os"), pl.lit(0).alias("event"))
        cohort.write_csv(qs.parent / "cohort.csv")
        set_key(qs, "task", '"survival"')
        set_key(qs, "target", '["os", "event"]')
        qs.write_text(qs.read_text().replace('plugin = "model.logistic"', 'plugin = "model.coxnet"')
                      .replace('metrics = ["auroc", "accuracy", "brier"]', ""))
    elif case == "huge_number":
        text = (qs.parent / "labs.csv").read_text().splitlines()
        text[3] = ",".join(text[3].split(",")[:3] + ["1e400"] + text[3].split(",")[4:])
        (qs.parent / "labs.csv").write_text("\n".join(text) + "\n")
    result = runner.invoke(app, ["run", str(target), "--quiet"])
    assert result.exit_code in (1, 2), result.output
    assert expected in " ".join(result.output.split())
    assert "Traceback" not in result.output
    _leaves_nothing(qs)


@pytest.mark.parametrize("errno_name", ["EACCES", "ENOSPC"])
def test_read_only_parent_and_full_disk_are_clear_errors_leaving_nothing(qs, monkeypatch, errno_name):
    import errno

    code = getattr(errno, errno_name)
    if errno_name == "EACCES":  # the output's parent cannot be written (root ignores chmod: fail the mkdir)
        real_mkdir = Path.mkdir

        def mkdir(self, *args, **kwargs):
            if "runs" in self.parts:
                raise PermissionError(code, "Permission denied", str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", mkdir)
        expected = "permission denied"
    else:  # the disk fills while predictions are written
        def full(self, *args, **kwargs):
            raise OSError(code, "No space left on device", str(args[0]) if args else None)

        monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
        expected = "the disk is full"
    result = runner.invoke(app, ["run", str(qs), "--quiet"])
    assert result.exit_code == 1 and expected in " ".join(result.output.split()), result.output
    assert "nothing was written" in " ".join(result.output.split())
    _leaves_nothing(qs)


def test_corrupt_pipeline_file_is_named(run_copy):
    (state,) = (run_copy / "pipeline").glob("*-model-model.npz") or [next((run_copy / "pipeline").glob("*-model-*.json"))]
    state.write_bytes(state.read_bytes()[:40])
    reseal(run_copy)
    data = json.loads((run_copy / "resolved.json").read_text())["cohort"]["outcomes"]
    result = runner.invoke(app, ["predict", str(run_copy), "--data", str(Path(data).parent)])
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "cannot load the saved state" in text and state.stem in text


def test_html_escapes_ids_columns_subgroups_and_run_name(tmp_path):
    spec = fast(write_quickstart(tmp_path / "qs", patients=100, seed=6), bootstrap=10)
    evil = "<script>alert(1)</script>"
    cohort = pl.read_csv(spec.parent / "cohort.csv").with_columns(
        pl.col("patient_id").str.replace("QS", "<b>QS"), pl.when(pl.col("sex") == "male").then(pl.lit(evil))
        .otherwise(pl.col("sex")).alias("sex"))
    cohort.write_csv(spec.parent / "cohort.csv")
    labs = pl.read_csv(spec.parent / "labs.csv").with_columns(pl.col("patient_id").str.replace("QS", "<b>QS"))
    labs.rename({"ldh": "ldh<img src=x onerror=alert(1)>"}).write_csv(spec.parent / "labs.csv")
    set_key(spec, "name", f'"{evil}"')
    spec.write_text(spec.read_text() + '\n[[explainer]]\nplugin = "explain.shap"\n')  # feature names as text on the card
    result = run(spec)
    assert runner.invoke(app, ["explain", str(result.path), "--patient", "<b>QS00003"]).exit_code == 0
    (card,) = (result.path / "cards").glob("card-*.html")
    for page in (result.path / "report.html", card):
        text = page.read_text(encoding="utf-8")
        assert "<script>alert" not in text and "<img src=x" not in text
    report = (result.path / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;" in report  # the run name and the subgroup value are shown, escaped
    assert "&lt;img src=x" in card.read_text(encoding="utf-8")  # the column name, escaped
