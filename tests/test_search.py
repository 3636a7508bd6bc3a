"""[search]: the space checked before any trial, nested and leakage-free selection, the run directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tumorboard._engine.engine import run
from tumorboard._engine.errors import SpecError
from tumorboard_synth.quickstart import write_quickstart
from tumorboard._engine.spec import load_spec

from conftest import fast

HERE = Path(__file__).parent


def with_search(spec: Path, search: str, plugin: bool = False) -> Path:
    text = spec.read_text(encoding="utf-8") + "\n" + search
    if plugin:
        shutil.copy(HERE / "search_plugin.py", spec.parent / "search_plugin.py")
        text += '\n[plugins]\nmodules = ["search_plugin"]\n'
    spec.write_text(text, encoding="utf-8")
    return spec


def test_every_problem_of_a_search_space_is_named_with_its_line(quickstart):
    with_search(quickstart, """[search]
metric = "auroc"
sampler = "grid"
[search.space]
"model.options.CC" = { log_uniform = [1e-3, 1.0] }
"model.options.C" = { uniform = [-1.0, 1.0] }
"modality.lab.options.impute" = { choice = ["median"] }
"modality.labs.plugin" = { choice = ["tabular.file", "omics.pca"] }
"fusion.plugin" = { choice = ["fusion.concat", "fusion.concatenate"] }
"model.penalty" = { choice = ["l2"] }
""")
    with pytest.raises(SpecError) as caught:
        load_spec(quickstart)
    text = str(caught.value)
    lines = quickstart.read_text(encoding="utf-8").splitlines()

    def line_of(key: str) -> int:
        return next(n for n, line in enumerate(lines, 1) if line.startswith(f'"{key}"'))

    assert f":{line_of('model.options.CC')}" in text and "no option 'CC' in model.logistic; did you mean 'C'?" in text
    assert "model.logistic refuses C = -1.0" in text and "greater than 0" in text
    assert "no modality named 'lab'; did you mean 'labs'?" in text
    # a candidate plugin whose required options the spec does not give: where to give them
    assert "candidate 'omics.pca' for modality.labs" in text and '[search.candidates."modality.labs"."omics.pca"]' in text
    assert "no such component; did you mean 'fusion.concat'" in text
    assert "not one of model.plugin" in text and f":{line_of('model.penalty')}" in text
    assert "the grid sampler needs choices or int ranges" in text


def test_a_distribution_is_one_range_or_one_choice(quickstart):
    with_search(quickstart, '[search]\n[search.space]\n"model.options.C" = { log_uniform = [0.0, 1.0], choice = [1.0] }\n')
    with pytest.raises(SpecError, match="give exactly one of log_uniform"):
        load_spec(quickstart)


def test_nested_search_writes_its_trials_and_refits_the_refit_choice(quickstart):
    with_search(quickstart, """[search]
trials = 4
[search.space]
"model.options.C" = { log_uniform = [1e-3, 10.0] }
""")
    result = run(quickstart)
    trials = pl.read_parquet(result.path / "search" / "trials.parquet")
    labels = [f"repeat 1 fold {k}" for k in range(1, 6)]
    assert sorted(set(trials["search"])) == sorted([*labels, "refit"])
    assert trials.group_by("search").len()["len"].to_list() == [4] * 6
    assert set(trials["state"]) <= {"complete", "pruned"}
    assert trials["inner_scores"].list.len().max() == 3  # three inner folds
    selected = json.loads((result.path / "resolved.json").read_text())["search_selected"]
    assert set(selected) == {*labels, "refit"}
    for label, choice in selected.items():
        rows = trials.filter((pl.col("search") == label) & (pl.col("state") == "complete"))
        assert choice["inner_score"] == pytest.approx(rows["inner_score"].max())
    # the saved pipeline is the refit's choice, so `predict` uses what the refit's search selected
    manifest = json.loads((result.path / "pipeline" / "manifest.json").read_text())
    model = next(c for c in manifest["components"] if c["role"] == "model")
    assert model["options"]["C"] == selected["refit"]["params"]["model.options.C"]
    assert result.metrics["search"]["searches"]["refit"]["complete"] + result.metrics["search"]["searches"]["refit"]["pruned"] == 4
    assert "Hyperparameter search" in (result.path / "report.html").read_text(encoding="utf-8")


def _split(spec: Path, test_share: float = 0.3) -> tuple[list[str], pl.DataFrame]:
    cohort = pl.read_csv(spec.parent / "cohort.csv")
    ids = cohort["patient_id"].to_list()
    rng = np.random.default_rng(0)
    test = set(rng.choice(ids, int(test_share * len(ids)), replace=False).tolist())
    pl.DataFrame({"patient_id": ids, "split": ["test" if i in test else "train" for i in ids]}).write_csv(
        spec.parent / "split.csv")
    return sorted(test), cohort


def test_a_configuration_that_looks_good_only_with_test_patients_is_not_selected(quickstart):
    """The planted leak: model.peeking's oracle mode knows the outer test patients' labels. It is perfect
    on them and a coin flip elsewhere; a search that saw the outer test patients would select it."""
    test, cohort = _split(quickstart)
    answers = cohort.filter(pl.col("patient_id").is_in(test)).select("patient_id", label="response")
    answers.write_csv(quickstart.parent / "answers.csv")
    text = quickstart.read_text(encoding="utf-8").replace("[evaluation]\n", '[evaluation]\nstrategy = "predefined"\n'
                                                          'split_file = "split.csv"\n')
    text = text.replace('plugin = "model.logistic"',
                        'plugin = "model.peeking"\noptions = { answers = "answers.csv", mode = "oracle" }')
    quickstart.write_text(text.replace("[[explainer]]\nplugin = \"explain.permutation\"\n", ""), encoding="utf-8")
    spec = with_search(quickstart, "", plugin=True)
    # the plant works: fixed to oracle, the outer test AUROC is perfect
    oracle = run(spec)
    assert oracle.metrics["overall"]["auroc"]["value"] == 1.0

    spec = with_search(quickstart, """[search]
sampler = "grid"
[search.space]
"model.options.mode" = { choice = ["honest", "oracle"] }
""")
    searched = run(spec, overwrite=True)
    choice = searched.metrics["search"]["searches"]["predefined split"]
    assert choice["params"]["model.options.mode"] == "honest"
    trials = pl.read_parquet(searched.path / "search" / "trials.parquet").filter(pl.col("search") == "predefined split")
    # inside the outer training patients the oracle knows nothing: its inner AUROC is a coin's
    assert trials.filter(pl.col("model.options.mode") == "oracle")["inner_score"].max() < 0.65
    assert searched.metrics["overall"]["auroc"]["value"] < 0.95


def test_permuted_labels_with_a_search_score_at_chance(tmp_path):
    spec = fast(write_quickstart(tmp_path, patients=300, seed=3), bootstrap=200)
    cohort = pl.read_csv(tmp_path / "cohort.csv")
    labels = cohort["response"].to_numpy().copy()
    np.random.default_rng(5).shuffle(labels)
    cohort.with_columns(response=labels).write_csv(tmp_path / "cohort.csv")
    with_search(spec, """[search]
trials = 6
[search.space]
"model.options.C" = { log_uniform = [1e-4, 100.0] }
"fusion.options.presence_indicators" = { choice = [true, false] }
""")
    auroc = run(spec).metrics["overall"]["auroc"]
    assert auroc["ci_low"] < 0.5 < auroc["ci_high"]
    assert abs(auroc["value"] - 0.5) < 0.1


def test_poor_trials_are_pruned_on_the_inner_folds(quickstart):
    text = quickstart.read_text(encoding="utf-8").replace('plugin = "model.logistic"', 'plugin = "model.peeking"')
    quickstart.write_text(text, encoding="utf-8")
    spec = with_search(quickstart, """[search]
trials = 16
sampler = "random"
[search.space]
"model.options.mode" = { choice = ["honest", "noise"] }
""", plugin=True)
    result = run(spec)
    trials = pl.read_parquet(result.path / "search" / "trials.parquet")
    pruned = trials.filter(pl.col("state") == "pruned")
    assert len(pruned) > 0 and set(pruned["model.options.mode"]) == {"noise"}
    assert (pruned["inner_scores"].list.len() < 3).all()
    assert all(c["params"]["model.options.mode"] == "honest" for c in result.metrics["search"]["searches"].values())


@pytest.mark.slow  # starts a pool of worker processes
def test_a_search_gives_the_same_bytes_on_one_and_two_workers(quickstart):
    with_search(quickstart, """[search]
trials = 6
parallel_trials = 3
[search.space]
"model.options.C" = { log_uniform = [1e-3, 10.0] }
"fusion.plugin" = { choice = ["fusion.concat", "fusion.stacking"] }
""")
    one = run(quickstart, workers=1)
    (quickstart.parent / "runs" / "quickstart").rename(quickstart.parent / "one")
    two = run(quickstart, workers=2)
    trials = [pl.read_parquet(p / "search" / "trials.parquet").drop("seconds")
              for p in (quickstart.parent / "one", two.path)]
    assert trials[0].equals(trials[1])
    assert one.predictions.equals(two.predictions)
    assert one.metrics["search"] == two.metrics["search"]


def test_a_finished_search_keeps_no_cached_blocks_in_this_process(quickstart):
    """Trials reuse fitted modality blocks within a run; a notebook running many runs must not keep them."""
    from tumorboard._engine import search

    with_search(quickstart, '[search]\ntrials = 2\n[search.space]\n"model.options.C" = { log_uniform = [0.01, 1.0] }\n')
    run(quickstart)
    assert len(search._BLOCKS) == 0 and search._block_bytes == 0
