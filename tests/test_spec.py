"""Run-spec validation: every problem located to file:line with the field, value and fix."""

from __future__ import annotations

import pytest

from tumorboard._engine.errors import SpecError
from tumorboard._engine.spec import load_spec
from tumorboard._engine.tomlindex import TomlLineIndex

from conftest import set_key


def problems(spec) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    return [p.render(str(spec)) for p in info.value.problems]


def test_quickstart_spec_validates(quickstart):
    loaded = load_spec(quickstart)
    assert [m.name for m in loaded.modalities] == ["tabular.file"]
    assert loaded.model.name == "model.logistic"
    # relative paths resolve against the spec's folder, not the working directory
    assert loaded.modalities[0].options.path == quickstart.parent / "labs.csv"


def test_typod_plugin_name_suggests_the_closest(quickstart):
    set_key(quickstart, "plugin", '"tabular.fiel"')
    (text,) = problems(quickstart)
    assert "spec.toml:15" in text and 'modality[0].plugin = \'tabular.fiel\'' in text
    assert "did you mean 'tabular.file'?" in text
    from tumorboard._engine.plugins import load_plugins

    # every installed modality, in order (third-party ones included when installed)
    assert "installed modality components: " + ", ".join(sorted(load_plugins().names("modality"))) in text


def test_catalogued_but_missing_plugin_gives_the_install_hint(quickstart):
    text = quickstart.read_text(encoding="utf-8").replace('plugin = "model.logistic"', 'plugin = "model.centroid"')
    quickstart.write_text(text)
    (problem,) = problems(quickstart)
    assert "pip install \"tumorboard-example-centroid @ git+https://github.com/tumorboard/tumorboard#subdirectory=tests/third_party/tumorboard-example-centroid\"" in problem


def test_option_of_the_wrong_type_names_path_line_and_value(quickstart):
    text = quickstart.read_text(encoding="utf-8").replace('[model]\nplugin = "model.logistic"', '[model]\nplugin = "model.logistic"\noptions = { C = "strong" }')
    quickstart.write_text(text)
    (problem,) = problems(quickstart)
    assert "spec.toml:23" in problem and "model.options.C = 'strong'" in problem
    assert "valid number" in problem


def test_every_problem_is_reported_in_one_pass(quickstart):
    text = quickstart.read_text(encoding="utf-8")
    text = text.replace('plugin = "model.logistic"', 'plugin = "model.logistik"').replace("folds = 5", "folds = 1")
    text = text.replace('options = { path = "labs.csv" }', 'options = { path = "labs.csv", bin_width = 3 }')
    quickstart.write_text(text)
    # folds is a field of the spec itself and fails first; fix it and see the rest together
    (first,) = problems(quickstart)
    assert "evaluation.folds = 1" in first and "greater than or equal to 2" in first
    quickstart.write_text(text.replace("folds = 1", "folds = 5"))
    found = problems(quickstart)
    assert len(found) == 2
    assert any("modality[0].options.bin_width = 3" in p and "unknown key" in p for p in found)
    assert any("model.plugin = 'model.logistik'" in p and "did you mean 'model.logistic'" in p for p in found)


def test_folds_below_two_is_rejected(quickstart):
    set_key(quickstart, "folds", "1")
    (problem,) = problems(quickstart)
    assert "spec.toml:26" in problem and "evaluation.folds = 1" in problem


def test_toml_syntax_error_gives_file_line_and_column(quickstart):
    quickstart.write_text(quickstart.read_text(encoding="utf-8").replace('seed = 7', 'seed = = 7'))
    (problem,) = problems(quickstart)
    assert "spec.toml:4:8: TOML syntax error" in problem


def test_missing_data_file_shows_the_resolved_path(quickstart):
    quickstart.write_text(quickstart.read_text(encoding="utf-8").replace('"labs.csv"', '"data/labs.csv"'))
    (problem,) = problems(quickstart)
    assert f"file not found: {quickstart.parent / 'data' / 'labs.csv'}" in problem
    assert "modality[0].options.path" in problem


def test_unknown_metric_lists_the_task_metrics(quickstart):
    set_key(quickstart, "metrics", '["auroc", "aucroc"]')
    (problem,) = problems(quickstart)
    assert "evaluation.metrics[1] = 'aucroc'" in problem and "did you mean 'auroc'?" in problem


def test_model_that_cannot_do_the_task_is_rejected_before_running(quickstart):
    set_key(quickstart, "task", '"regression"')
    set_key(quickstart, "metrics", '["mae"]')
    (problem,) = problems(quickstart)
    assert "model.logistic does not support task 'regression'" in problem


def test_survival_task_needs_two_target_columns(quickstart):
    set_key(quickstart, "task", '"survival"')
    (problem,) = problems(quickstart)
    assert 'cohort.target = ["time_column", "event_column"]' in problem


def test_error_text_starts_with_the_count_and_file(quickstart):
    set_key(quickstart, "folds", "0")
    with pytest.raises(SpecError) as info:
        load_spec(quickstart)
    assert str(info.value).startswith(f"1 problem in {quickstart}")


def test_line_index_handles_arrays_of_tables_and_inline_tables():
    text = '[run]\nname = "x"\n\n[[modality]]\nname = "a"\n\n[[modality]]\nname = "b"\noptions = { path = "p", inner = { k = 1 } }\n[modality.extra]\nq = 2\n'
    index = TomlLineIndex(text)
    assert index.line_of(("run", "name")) == 2
    assert index.line_of(("modality", 0, "name")) == 5
    assert index.line_of(("modality", 1, "options", "path")) == 9
    assert index.line_of(("modality", 1, "options", "inner", "k")) == 9
    assert index.line_of(("modality", 1, "extra", "q")) == 11
    assert index.line_of(("modality", 1, "options", "nope")) == 9  # closest ancestor


def test_a_section_no_plugin_owns_is_an_error_naming_the_sections(quickstart):
    """Top-level tables beyond the kernel's belong to plugins (analyses); an unknown one is never ignored."""
    quickstart.write_text(quickstart.read_text(encoding="utf-8") + '\n[treatmnet]\ncolumn = "arm"\n', encoding="utf-8")
    (problem,) = problems(quickstart)
    assert "unknown section [treatmnet]" in problem and "did you mean [treatment]?" in problem
    assert "spec.toml:" in problem
