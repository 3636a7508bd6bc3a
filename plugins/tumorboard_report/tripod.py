"""TRIPOD+AI (Collins et al., BMJ 2024;385:e078378) and a model card, written into every run.

Both are Markdown reporters that need nothing beyond the kernel: they read the
run directory (resolved spec, metrics, predictions, presence, provenance) and
fill every checklist item the run itself can answer; the items only the
people behind the study can answer (context, ethics, funding, intended use)
are listed as to-do, never invented. A test checks that each filled figure is
the one in metrics.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tumorboard.api import Reporter, RunFiles

TODO = "**To do** (for the study team):"


@dataclass(frozen=True)
class Item:
    """One TRIPOD+AI checklist item: its number, section, topic and what it asks."""

    number: str
    section: str
    topic: str
    asks: str


# the 27 items (52 with sub-items) of TRIPOD+AI, in the checklist's order and wording (abridged)
ITEMS = [
    Item("1", "Title and abstract", "Title", "Identify the study as developing or evaluating a multivariable prediction model, the target population and the outcome."),
    Item("2", "Title and abstract", "Abstract", "See the TRIPOD+AI for Abstracts checklist."),
    Item("3a", "Introduction", "Background", "Healthcare context and rationale, including references to existing models."),
    Item("3b", "Introduction", "Background", "Target population and intended purpose in the care pathway, including intended users."),
    Item("3c", "Introduction", "Background", "Known health inequalities between sociodemographic groups."),
    Item("4", "Introduction", "Objectives", "Study objectives: development, validation, or both."),
    Item("5a", "Methods", "Data", "Sources of data for development and evaluation, rationale and representativeness."),
    Item("5b", "Methods", "Data", "Dates of the collected participant data (accrual, end of follow-up)."),
    Item("6a", "Methods", "Participants", "Study setting, number and location of centres."),
    Item("6b", "Methods", "Participants", "Eligibility criteria."),
    Item("6c", "Methods", "Participants", "Treatments received and how they were handled."),
    Item("7", "Methods", "Data preparation", "Pre-processing and quality checking, and whether it was similar across groups."),
    Item("8a", "Methods", "Outcome", "Definition of the outcome and time horizon, how and when assessed."),
    Item("8b", "Methods", "Outcome", "Qualifications and demographics of outcome assessors, if subjective."),
    Item("8c", "Methods", "Outcome", "Blinding of outcome assessment."),
    Item("9a", "Methods", "Predictors", "Choice of initial predictors and any pre-selection."),
    Item("9b", "Methods", "Predictors", "Definition of all predictors, how and when measured."),
    Item("9c", "Methods", "Predictors", "Qualifications and demographics of predictor assessors, if subjective."),
    Item("10", "Methods", "Sample size", "How the study size was arrived at and why it suffices."),
    Item("11", "Methods", "Missing data", "How missing data were handled; reasons for omitting data."),
    Item("12a", "Methods", "Analytical methods", "How the data were used (development, evaluation), including partitioning."),
    Item("12b", "Methods", "Analytical methods", "How predictors were handled (functional form, rescaling, transformation)."),
    Item("12c", "Methods", "Analytical methods", "Type of model, model-building steps, hyperparameter tuning, internal validation."),
    Item("12d", "Methods", "Analytical methods", "Heterogeneity across clusters (e.g. hospitals)."),
    Item("12e", "Methods", "Analytical methods", "Measures and plots of performance (discrimination, calibration, clinical utility)."),
    Item("12f", "Methods", "Analytical methods", "Model updating (e.g. recalibration) arising from the evaluation."),
    Item("12g", "Methods", "Analytical methods", "How the model's predictions were calculated."),
    Item("13", "Methods", "Class imbalance", "Class imbalance methods, why and how, and any recalibration."),
    Item("14", "Methods", "Fairness", "Approaches to address model fairness."),
    Item("15", "Methods", "Model output", "The model's output; classification thresholds and how they were chosen."),
    Item("16", "Methods", "Training versus evaluation", "Differences between development and evaluation data."),
    Item("17", "Methods", "Ethical approval", "Ethics committee and informed consent."),
    Item("18a", "Open science", "Funding", "Source and role of funding."),
    Item("18b", "Open science", "Conflicts of interest", "Conflicts of interest of all authors."),
    Item("18c", "Open science", "Protocol", "Where the protocol can be accessed."),
    Item("18d", "Open science", "Registration", "Study registration."),
    Item("18e", "Open science", "Data sharing", "Availability of the study data."),
    Item("18f", "Open science", "Code sharing", "Availability of the analytical code."),
    Item("19", "Patient and public involvement", "Patient and public involvement", "Details of any patient and public involvement."),
    Item("20a", "Results", "Participants", "Flow of participants, with and without the outcome; follow-up."),
    Item("20b", "Results", "Participants", "Characteristics overall and per data source: dates, predictors, treatments, events, missing data."),
    Item("20c", "Results", "Participants", "For evaluation: comparison with the development data."),
    Item("21", "Results", "Model development", "Participants and outcome events in each analysis."),
    Item("22", "Results", "Model specification", "Details of the full model, to predict for new individuals."),
    Item("23a", "Results", "Model performance", "Performance estimates with confidence intervals, including key subgroups."),
    Item("23b", "Results", "Model performance", "Heterogeneity in performance across clusters."),
    Item("24", "Results", "Model updating", "Results of any model updating."),
    Item("25", "Discussion", "Interpretation", "Overall interpretation, including fairness."),
    Item("26", "Discussion", "Limitations", "Limitations: non-representative sample, sample size, overfitting, missing data."),
    Item("27a", "Discussion", "Usability", "How poor quality or unavailable input data should be handled in use."),
    Item("27b", "Discussion", "Usability", "Whether users interact with the input data or the model, and the expertise needed."),
    Item("27c", "Discussion", "Usability", "Next steps for future research."),
]


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):.{digits}f}"


def interval(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("value") is None:
        return "n/a"
    if entry.get("ci_low") is None:
        return fmt(entry["value"])
    return f"{fmt(entry['value'])} (95% CI {fmt(entry['ci_low'])} to {fmt(entry['ci_high'])})"


class RunFacts:
    """What a run can say about itself, gathered once from its files."""

    def __init__(self, run: RunFiles) -> None:
        self.run = run
        self.spec, self.metrics, self.provenance = run.spec, run.metrics, run.provenance
        self.task = run.task
        self.cohort = self.spec.get("cohort", {})
        self.evaluation = self.spec.get("evaluation", {})
        test = run.predictions().filter(pl.col("set") == "test")
        self.patients = test["patient_id"].n_unique()
        first = test.unique("patient_id", keep="first", maintain_order=True)
        self.events: int | None = None
        if self.task == "binary":
            self.events = int((first["y_true"].cast(pl.Float64) == 1).sum())
        elif self.task == "survival" and "event" in first.columns:
            self.events = int(first["event"].sum())
            self.follow_up = first["y_true"].cast(pl.Float64)
        presence = run.folder / "presence.parquet"
        self.presence = pl.read_parquet(presence) if presence.is_file() else None

    @property
    def target(self) -> str:
        target = self.cohort.get("target")
        return " and ".join(target) if isinstance(target, list) else str(target)

    def modalities(self) -> list[dict[str, Any]]:
        return list(self.spec.get("modality", []))

    def missing_share(self, name: str) -> float | None:
        if self.presence is None or name not in self.presence.columns:
            return None
        return 1.0 - float(self.presence[name].cast(pl.Float64).mean())

    def primary(self) -> tuple[str, dict[str, Any]] | None:
        overall = self.metrics.get("overall", {})
        names = self.evaluation.get("metrics") or list(overall)
        for name in names:
            if name in overall:
                return name, overall[name]
        return None


def _answers(f: RunFacts) -> dict[str, str]:
    """Each answerable item's text; an item absent here is left to the study team."""
    ev, spec, m = f.evaluation, f.spec, f.metrics
    modalities = f.modalities()
    mod_list = ", ".join(f"{x['name']} ({x['plugin']})" for x in modalities)
    model = spec.get("model", {})
    a: dict[str, str] = {}
    kind = {"binary": "a binary", "multiclass": "a multiclass", "regression": "a continuous",
            "survival": "a time-to-event"}.get(f.task, f.task)
    validation = ("internal validation by cross-validation" if ev.get("strategy") in ("kfold", "repeated")
                  else f"validation by the {ev.get('strategy')} strategy")
    a["1"] = (f"Development and {validation} of a multivariable prediction model for {kind} outcome "
              f"({f.target}) from {len(modalities)} data source(s): {mod_list}. Run `{spec.get('run', {}).get('name')}`.")
    a["4"] = (f"Development of the model on all {f.patients:,} patients with {validation}; the refitted model is "
              "saved for external validation.")
    inputs = f.provenance.get("inputs_sha256", {})
    a["5a"] = ("Outcomes table " + f"`{Path(str(f.cohort.get('outcomes', ''))).name}`; data sources by modality: "
               + "; ".join(f"{x['name']}: {x['plugin']}{_input_format(x.get('options', {}))}" for x in modalities)
               + f". {len(inputs)} input file(s), each identified by its SHA-256 in provenance.json.")
    if spec.get("treatment"):
        t = spec["treatment"]
        a["6c"] = (f"Treatment from column `{t.get('column')}` (candidates {', '.join(t.get('candidates', []))}); "
                   f"per-patient effects by a {t.get('learner')}-learner on the same folds (metrics.json \"treatment\").")
    prep = []
    for x in modalities:
        opts = x.get("options", {})
        shown = {k: v for k, v in opts.items() if k in ("impute", "scale", "missing_indicators", "categorical",
                                                         "bin_width", "resample", "windows", "top_k", "components")}
        prep.append(f"{x['name']} ({x['plugin']})" + (f": {shown}" if shown else ""))
    a["7"] = ("Every pre-processing step is fitted on each fold's training patients only. " + "; ".join(prep)
              + ". Full options in resolved.json.")
    horizon = f"; horizons {m.get('horizons')}" if m.get("horizons") else ""
    a["8a"] = f"Outcome: `{f.target}` ({f.task} task){horizon}."
    a["9a"] = ("All features each data source provides, as configured: " + mod_list
               + (f"; fusion {spec.get('fusion', {}).get('plugin')}" if spec.get("fusion") else "") + ".")
    a["9b"] = "Feature definitions per plugin and options (resolved.json); readable names in feature_labels.json when present."
    events = f" with {f.events:,} events" if f.events is not None else ""
    a["10"] = (f"All {f.patients:,} patients available{events}. No sample size calculation is made by the software; "
               "see the confidence interval widths in 23a.")
    missing = [f"{x['name']} missing for {fmt(100 * s, 1)}%" for x in modalities
               if (s := f.missing_share(x["name"])) is not None]
    a["11"] = ("A patient without a data source is kept and marked absent for it (presence mask); missing values "
               "within a source are handled by the source's plugin (see 7). " + ("; ".join(missing) + "." if missing else ""))
    folds = m.get("folds")
    a["12a"] = (f"Strategy {ev.get('strategy')}: {ev.get('folds')} folds x {ev.get('repeats')} repeat(s) "
                f"({folds} outer folds in all), seed {spec.get('run', {}).get('seed')}; every fit sees training patients "
                "only; out-of-fold predictions are pooled for the estimates; the model is then refitted on all patients.")
    a["12b"] = "As configured per data source (7) and by the fusion " + f"`{spec.get('fusion', {}).get('plugin')}` {spec.get('fusion', {}).get('options', {})}."
    search = spec.get("search")
    tuning = (f"nested hyperparameter search ([search], {search.get('trials')} trials, {search.get('inner_folds')} inner "
              "folds within each outer fold's training patients)") if search else "no hyperparameter tuning (fixed options)"
    a["12c"] = (f"Model `{model.get('plugin')}` with options {model.get('options', {})}; {tuning}; internal validation "
                "as in 12a.")
    if ev.get("strategy") == "site" or m.get("sites"):
        a["12d"] = "Performance is estimated per site (external-validation folds); see 23b."
    else:
        a["12d"] = "Not examined: no site column in the spec (cohort.site)."
    metric_names = ev.get("metrics") or list(m.get("overall", {}))
    a["12e"] = (f"Metrics: {', '.join(metric_names)}, each with a {int(100 * m.get('confidence', 0.95))}% percentile "
                f"bootstrap interval over patients ({ev.get('bootstrap')} replicates); calibration (reliability curve, "
                "expected calibration error), ROC, precision-recall and decision curves in report.html.")
    a["12f"] = (f"Recalibration: {model.get('calibration')} (cross-fitted on training patients)."
                if model.get("calibration") not in (None, "none") else "No model updating (calibration = \"none\").")
    a["12g"] = ("The refitted pipeline is saved in pipeline/ (JSON and arrays, no pickle); `tumorboard predict RUN_DIR "
                "--data NEW` computes predictions for new patients.")
    weights = model.get("options", {}).get("class_weight")
    a["13"] = ("No resampling of classes. " + (f"Model option class_weight = {weights}." if weights else "No class weighting."))
    subgroups = f.cohort.get("subgroups") or []
    a["14"] = ((f"Performance audited per subgroup of {', '.join(subgroups)} (23a) with gaps and equalized odds in "
                "metrics.json; no fairness constraint is imposed on the model.") if subgroups else
               "Not examined: no subgroups in the spec (cohort.subgroups).")
    a["15"] = {"binary": "The probability of the positive class; no classification threshold is applied by the model "
                         "(accuracy-type metrics use 0.5).",
               "multiclass": "Class probabilities; the predicted class is the most probable.",
               "regression": "A predicted value.",
               "survival": "A risk score (higher: earlier event) and, where the model gives them, survival curves."}.get(f.task, "")
    flow = f"{f.patients:,} patients analysed"
    if f.events is not None:
        flow += f": {f.events:,} with the outcome event, {f.patients - f.events:,} without"
    if f.task == "survival" and getattr(f, "follow_up", None) is not None:
        flow += f"; median follow-up {fmt(float(f.follow_up.median()), 1)} (time units of the outcomes table)"
    a["20a"] = flow + "."
    per_fold = m.get("per_fold", {})
    a["21"] = (f"Development: {f.patients:,} patients" + (f", {f.events:,} events" if f.events is not None else "")
               + f"; evaluation: the same patients out of fold, in {folds} folds"
               + (f" (fold {metric_names[0]}: mean {fmt(per_fold[metric_names[0]]['mean'])}, SD "
                  f"{fmt(per_fold[metric_names[0]]['sd'])})" if metric_names and metric_names[0] in per_fold else "") + ".")
    versions = f.provenance.get("tumorboard")
    a["22"] = (f"The full pipeline (every component's options and fitted state) is in pipeline/; tumorboard {versions}, "
               "plugin versions in provenance.json; freely re-usable with the run directory.")
    lines = [f"{name}: {interval(entry)}" for name, entry in m.get("overall", {}).items()]
    for group, levels in m.get("subgroups", {}).items():
        for level, entries in levels.items():
            primary = f.primary()
            if primary and primary[0] in entries:
                lines.append(f"{group} = {level}: {primary[0]} {interval(entries[primary[0]])}, n = {entries[primary[0]].get('n')}")
    a["23a"] = "; ".join(lines) + "."
    if m.get("sites"):
        primary = f.primary()
        name = primary[0] if primary else None
        a["23b"] = "; ".join(f"{site}: {name} {interval(entry.get(name))}" for site, entry in m["sites"].items()) + "."
    calibration = m.get("curves", {}).get("calibration")
    if calibration:
        a["24"] = (f"Expected calibration error {fmt(calibration.get('ece'))} (warning limit {fmt(calibration.get('limit'))})"
                   + (f"; recalibration {model.get('calibration')}" if model.get("calibration") not in (None, "none") else "")
                   + ".")
    warnings = m.get("warnings") or []
    a["26"] = ("Warnings raised by this run: " + " | ".join(warnings) if warnings else
               "No warning was raised by this run.") + " Other limitations are for the study team."
    return a


def facts_of(run: RunFiles) -> RunFacts:
    """The run's facts, gathered once per ``RunFiles`` (the cohort report, the checklist and the card share
    one reading of predictions.parquet)."""
    cached = run.__dict__.get("_tripod_facts")
    if cached is None:
        cached = run.__dict__["_tripod_facts"] = RunFacts(run)
    return cached


def checklist(run: RunFiles) -> tuple[list[tuple[Item, str | None]], RunFacts]:
    facts = facts_of(run)
    answers = _answers(facts)
    return [(item, answers.get(item.number)) for item in ITEMS], facts


class TripodReport(Reporter):
    """The TRIPOD+AI checklist (tripod_ai.md): every item the run can answer, filled from its files; the rest
    listed for the study team."""

    name = "report.tripod_ai"
    output = "tripod_ai.md"

    def render(self, run: RunFiles) -> str:
        items, facts = checklist(run)
        filled = sum(1 for _, text in items if text)
        out = [f"# TRIPOD+AI checklist: {run.spec.get('run', {}).get('name', run.folder.name)}", "",
               "Collins GS et al. TRIPOD+AI statement. BMJ 2024;385:e078378. Filled by tumorboard from this run's "
               f"files ({filled} of {len(items)} items); the others are marked for the study team.", ""]
        section = None
        for item, text in items:
            if item.section != section:
                section = item.section
                out += ([""] if out[-1] else []) + [f"## {section}", ""]
            out.append(f"- **{item.number}. {item.topic}.** {item.asks}")
            out.append(f"  - {text}" if text else f"  - {TODO} to be written.")
        return "\n".join(out) + "\n"


class ModelCard(Reporter):
    """A model card (model_card.md): model details, intended use (for the team), training data, metrics overall
    and by subgroup, limitations from the run's warnings."""

    name = "report.model_card"
    output = "model_card.md"

    def render(self, run: RunFiles) -> str:
        f = facts_of(run)
        spec, m = f.spec, f.metrics
        model = spec.get("model", {})
        name = spec.get("run", {}).get("name", run.folder.name)
        out = [f"# Model card: {name}", "", "## Model details", "",
               f"- Task: {f.task}; outcome `{f.target}`.",
               f"- Model: `{model.get('plugin')}` {model.get('options', {})}; fusion `{spec.get('fusion', {}).get('plugin')}`.",
               "- Inputs: " + ", ".join(f"{x['name']} (`{x['plugin']}`)" for x in f.modalities()) + ".",
               f"- Software: tumorboard {f.provenance.get('tumorboard')}, Python {f.provenance.get('python')}; "
               f"trained {str(f.provenance.get('finished', ''))[:10]}; seed {spec.get('run', {}).get('seed')}.",
               "", "## Intended use", "", f"- {TODO} the intended use, users and setting; uses that are out of scope.",
               "", "## Training data", "",
               f"- {f.patients:,} patients" + (f", {f.events:,} with the outcome event" if f.events is not None else "") + "."]
        for x in f.modalities():
            share = f.missing_share(x["name"])
            if share is not None:
                out.append(f"- {x['name']}: available for {fmt(100 * (1 - share), 1)}% of patients.")
        out += ["", f"## Metrics (out of fold, {int(100 * m.get('confidence', 0.95))}% bootstrap intervals)", "",
                "| metric | value | interval |", "| --- | --- | --- |"]
        for metric, entry in m.get("overall", {}).items():
            low = entry.get("ci_low")
            out.append(f"| {metric} | {fmt(entry.get('value'))} | "
                       + (f"{fmt(low)} to {fmt(entry.get('ci_high'))}" if low is not None else "n/a") + " |")
        primary = f.primary()
        if m.get("subgroups") and primary:
            out += ["", f"### By subgroup ({primary[0]})", "", "| subgroup | n | value | interval |", "| --- | --- | --- | --- |"]
            for group, levels in m["subgroups"].items():
                for level, entries in levels.items():
                    e = entries.get(primary[0], {})
                    out.append(f"| {group} = {level} | {e.get('n')} | {fmt(e.get('value'))} | "
                               + (f"{fmt(e.get('ci_low'))} to {fmt(e.get('ci_high'))}" if e.get("ci_low") is not None else "n/a") + " |")
        out += ["", "## Limitations", ""]
        out += [f"- {w}" for w in (m.get("warnings") or [])] or ["- No warning was raised by this run."]
        out += [f"- {TODO} limitations the run cannot see (population, setting, data collection)."]
        out += ["", "## Ethical considerations", "", f"- {TODO} ethics approval, consent, risks and mitigations.", ""]
        return "\n".join(out)


__all__ = ["ITEMS", "ModelCard", "TripodReport", "checklist"]


# the option that names a modality's input, and the standard it is in
INPUT_FORMATS = {"omop_dir": "OMOP CDM", "meds_dir": "MEDS", "fhir_dir": "FHIR R4", "events": "long event table",
                 "manifest": "manifest of files"}


def _input_format(options: dict) -> str:
    found = [label for key, label in INPUT_FORMATS.items() if options.get(key)]
    return f" ({', '.join(found)})" if found else ""

