"""The execution layer: the same bytes on every backend and worker count, the run's figures
unchanged by it, stage timings for logs, and [execution] validated."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tumorboard._engine.cli import build_app

app = build_app()
from tumorboard._engine.engine import run
from tumorboard._engine.errors import SpecError
from tumorboard._engine.execution import Executor, parallel_map, using, xla_flags
from tumorboard_synth.quickstart import write_quickstart
from tumorboard._engine.spec import load_spec

from conftest import fast, set_key

RESULT_FILES = ("predictions.parquet", "metrics.json")


def survival_spec(folder: Path, patients: int = 200) -> Path:
    """The quickstart labs with a survival outcome driven by haemoglobin, fitted by model.coxnet."""
    spec = write_quickstart(folder, patients=patients, seed=1)
    cohort = pl.read_csv(folder / "cohort.csv")
    z = pl.read_csv(folder / "labs.csv")["hemoglobin"].fill_null(12.5).to_numpy()
    rng = np.random.default_rng(3)
    time = np.round(rng.exponential(20 * np.exp((z - 12.5) / 1.6)), 1) + 0.5
    event = (rng.random(len(z)) < 0.7).astype(int)
    cohort.with_columns(pl.Series("os_months", time), pl.Series("os_event", event)).write_csv(folder / "cohort_surv.csv")
    text = spec.read_text().replace('task = "binary"', 'task = "survival"')
    text = text.replace('outcomes = "cohort.csv"', 'outcomes = "cohort_surv.csv"')
    text = text.replace('target = "response"', 'target = ["os_months", "os_event"]')
    text = text.replace('plugin = "model.logistic"', 'plugin = "model.coxnet"')
    text = text.replace('metrics = ["auroc", "accuracy", "brier"]', 'metrics = ["c_index", "uno_c", "td_auc", "ibs"]')
    text = text.replace('[[explainer]]\nplugin = "explain.permutation"\n', "")
    spec.write_text(text)
    return fast(spec, bootstrap=200)


def outputs(path: Path) -> dict[str, bytes]:
    return {name: (path / name).read_bytes() for name in RESULT_FILES}


def test_local_workers_give_the_same_bytes(tmp_path):
    spec = fast(write_quickstart(tmp_path / "q", patients=200, seed=4), bootstrap=50)
    one = run(spec, workers=1)
    set_key(spec, "output", '"runs/two"')
    two = run(spec, workers=2)
    assert outputs(one.path) == outputs(two.path)
    provenance = json.loads((two.path / "provenance.json").read_text())
    assert provenance["execution"]["workers"] == 2 and provenance["execution"]["backend"] == "local"
    assert provenance["execution"]["threads_per_worker"] >= 1


@pytest.mark.slow
def test_ray_backend_gives_the_same_bytes_as_local(tmp_path):
    """A local Ray with 2 CPUs against local 1 and 2 workers: identical predictions and metrics."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray[default]')")
    spec = survival_spec(tmp_path / "s")
    local = run(spec, workers=1)
    set_key(spec, "output", '"runs/local2"')
    local2 = run(spec, workers=2)
    set_key(spec, "output", '"runs/ray"')
    spec.write_text(spec.read_text() + '\n[execution]\nbackend = "ray"\nworkers = 2\n')
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        on_ray = run(spec, workers=2)
    finally:
        ray.shutdown()
    assert outputs(on_ray.path) == outputs(local.path) == outputs(local2.path)
    assert json.loads((on_ray.path / "provenance.json").read_text())["execution"]["backend"] == "ray"


# figures this spec gave before evaluation was batched and parallel (bootstrap loop, O(n^2) C-index,
# folds one after another): value, CI low, CI high. One later change, not of evaluation: model.coxnet
# now fits down its regularisation path to the chosen penalty (a cold start at that penalty could
# diverge), which moved its baseline survival curves and the IBS's lower bound by 1e-6 (was 0.178479).
PINNED = {
    "c_index": (0.681876, 0.632476, 0.729648),
    "uno_c": (0.681931, 0.633126, 0.720019),
    "td_auc": (0.767977, 0.701814, 0.824654),
    "ibs": (0.196856, 0.17848, 0.213691),
}


def test_the_run_figures_are_those_before_the_rewrite(tmp_path):
    metrics = run(survival_spec(tmp_path / "s"), workers=2).metrics["overall"]
    for name, (value, low, high) in PINNED.items():
        assert (metrics[name]["value"], metrics[name]["ci_low"], metrics[name]["ci_high"]) == (value, low, high), name


def test_binary_figures_are_those_before_the_rewrite(tmp_path):
    spec = write_quickstart(tmp_path / "q", patients=200, seed=1)
    text = spec.read_text().replace('metrics = ["auroc", "accuracy", "brier"]',
                                    'metrics = ["auroc", "auprc", "accuracy", "brier", "f1", "log_loss", "ece"]')
    spec.write_text(text.replace('[[explainer]]\nplugin = "explain.permutation"\n', ""))
    metrics = run(fast(spec, bootstrap=200), workers=1).metrics
    assert metrics["overall"]["auroc"] == {"value": 0.724211, "ci_low": 0.649884, "ci_high": 0.790742, "n": 200}
    assert metrics["overall"]["ece"] == {"value": 0.088691, "ci_low": 0.062087, "ci_high": 0.162445, "n": 200}
    female = metrics["subgroups"]["sex"]["female"]["auroc"]
    assert female == {"value": 0.672683, "ci_low": 0.565492, "ci_high": 0.765934, "n": 99}


def test_logs_get_one_line_per_stage_and_provenance_keeps_the_timings(tmp_path):
    spec = fast(write_quickstart(tmp_path / "q", patients=120, seed=2), bootstrap=20)
    result = CliRunner().invoke(app, ["run", str(spec), "--workers", "1"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("[tumorboard] ")]
    names = [line.removeprefix("[tumorboard] ").rsplit(":", 1)[0] for line in lines]
    assert names[:5] == [f"cross-validation, repeat 1 fold {k}" for k in range(1, 6)]
    assert "metrics with bootstrap confidence intervals" in names
    assert "refit on all 120 patients" in names and "writing the reports" in names
    assert all(line.endswith(" s") for line in lines)
    run_dir = spec.parent / "runs" / "quickstart"
    stages = json.loads((run_dir / "provenance.json").read_text())["stages_seconds"]
    assert set(stages) >= {"cross-validation, repeat 1 fold 1", "metrics with bootstrap confidence intervals"}
    assert all(v >= 0 for v in stages.values())


def test_execution_section_is_validated(tmp_path):
    spec = write_quickstart(tmp_path / "q", patients=60, seed=0)
    spec.write_text(spec.read_text() + '\n[execution]\nbackend = "local"\naddress = "ray://head:10001"\n')
    with pytest.raises(SpecError, match="execution"):
        load_spec(spec)
    spec.write_text(spec.read_text().replace('backend = "local"\naddress = "ray://head:10001"', "workers = 0"))
    with pytest.raises(SpecError, match=r"execution\.workers"):
        load_spec(spec)


def test_cli_rejects_an_unknown_backend(tmp_path):
    spec = write_quickstart(tmp_path / "q", patients=60, seed=0)
    result = CliRunner().invoke(app, ["run", str(spec), "--backend", "dask"])
    assert result.exit_code == 1 and "dask" in result.output and "local, ray" in result.output


def _square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def test_parallel_map_keeps_order_and_uses_worker_processes():
    tasks = [(k,) for k in range(8)]
    assert [v for v, _ in parallel_map(_square_and_pid, tasks)] == [k * k for k in range(8)]  # no run: inline
    with using(Executor("local", workers=2, threads=1)):
        results = parallel_map(_square_and_pid, tasks)
    assert [v for v, _ in results] == [k * k for k in range(8)]
    assert all(pid != os.getpid() for _, pid in results)


def _native_threads() -> tuple[int, str]:
    from threadpoolctl import threadpool_info

    return max((p["num_threads"] for p in threadpool_info()), default=1), os.environ.get("XLA_FLAGS", "")


def test_workers_run_under_the_thread_budget():
    """Two workers with one thread each: BLAS/OpenMP pools and XLA capped at one thread."""
    results = list(Executor("local", workers=2, threads=1).map(_native_threads, [()] * 2))
    assert all(threads == 1 for threads, _ in results)
    assert all("intra_op_parallelism_threads=1" in flags for _, flags in results)
    assert "intra_op_parallelism_threads=3" in xla_flags(3)


def test_json_schema_documents_the_execution_section():
    from tumorboard._engine.plugins import load_plugins
    from tumorboard._engine.spec import spec_json_schema

    schema = spec_json_schema(load_plugins())
    assert "execution" in schema["properties"]
    fields = schema["$defs"]["ExecutionSection"]["properties"]
    assert set(fields) == {"backend", "workers", "address", "threads_per_worker"}
    assert fields["backend"]["enum"] == ["local", "ray"]


def test_a_local_plugin_file_reaches_the_worker_processes(tmp_path):
    """A spec's [plugins] module is not importable by name in a worker: it travels with the task."""
    spec = fast(write_quickstart(tmp_path / "q", patients=120, seed=5), bootstrap=20)
    (spec.parent / "lab_model.py").write_text('''
import numpy as np
from pydantic import BaseModel, ConfigDict
from tumorboard.api import Model, hookimpl


class HalfModel(Model):
    """Predicts one half for everyone."""

    name = "model.lab_half"
    tasks = frozenset({"binary"})

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def fit(self, X, y):
        self.rate_ = np.array([0.5])
        return self

    def predict(self, X):
        return np.full(len(X.ids), self.rate_[0])


@hookimpl
def register_models(register):
    register(HalfModel)
''')
    text = spec.read_text().replace('plugin = "model.logistic"', 'plugin = "model.lab_half"')
    spec.write_text(text.replace('[[explainer]]\nplugin = "explain.permutation"\n', "") +
                    '\n[plugins]\nmodules = ["lab_model"]\n')
    result = run(spec, workers=2)
    assert result.metrics["overall"]["auroc"]["value"] == 0.5
    assert json.loads((result.path / "provenance.json").read_text())["execution"]["workers"] == 2
