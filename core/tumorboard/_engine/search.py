"""Nested hyperparameter search with Optuna: one study per outer fold, on that fold's training
patients only, and one for the refit on all patients.

A trial scores a configuration by inner cross-validation inside its study's
patients; the outer test patients of a fold are never seen by that fold's
study. Trials run in rounds on the run's executor: each round asks every study
for ``parallel_trials`` trials (the sampler sees every earlier round), runs
them as independent tasks and tells the results back in submission order, so
the selected configurations are the same whatever the backend and worker
count. Pruning decisions inside a task use Optuna's median pruner over a
snapshot of the study's earlier rounds, for the same reason.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from .data import Cohort, FeatureBlock, Target
from .errors import RunError, TumorboardError
from .evaluation import survival_context, warn
from .execution import Executor
from .metrics import metric_functions, score
from .pipeline import Pipeline, predict_for_scoring
from .searchspace import Dimension, SearchPlan, configuration, grid_points
from .splits import Fold, inner_folds

# spread of the values the outer folds selected beyond which a selection is called unstable
LOG_RATIO_UNSTABLE = 10.0  # a log-scale range: more than a decade between the smallest and largest
LINEAR_SHARE_UNSTABLE = 0.5  # a linear range: more than half of the range
CHOICE_SHARE_STABLE = 0.5  # a choice: the most frequent one picked by at least half of the folds


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial would drown the run's own progress
    return optuna


def _seeds(run_seed: int, study: int) -> tuple[int, int]:
    """(sampler seed, inner-split seed) of one study, derived from the run's seed and the study's place."""
    a, b = np.random.SeedSequence([run_seed, 0x5EA2C4, study]).generate_state(2)
    return int(a), int(b)


# --- one trial (a task on the executor) ----------------------------------------


@dataclass
class TrialOutcome:
    """What one trial's task sends back."""

    scores: list[float]
    state: str  # complete | pruned | fail
    error: str | None
    seconds: float


# fitted modality blocks of this process, reused by trials that change only the fusion or the model
_BLOCKS: OrderedDict[tuple, tuple[FeatureBlock, FeatureBlock]] = OrderedDict()
_BLOCK_BUDGET = 512 * 2**20
_block_bytes = 0


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return h.hexdigest()


def _modality_blocks(token: str, name: str, modality, train_ids: list[str], y: Target,
                     test_ids: list[str]) -> tuple[FeatureBlock, FeatureBlock]:
    """One modality fitted on ``train_ids`` and its blocks for both lists, from this process's cache
    when the same modality (options and seed) was fitted on the same patients in this run."""
    global _block_bytes
    key = (token, _digest(train_ids, y.values, y.event, test_ids), name, modality.name,
           modality.options.model_dump_json(), modality.seed)
    hit = _BLOCKS.get(key)
    if hit is not None:
        _BLOCKS.move_to_end(key)
        return hit
    one = Pipeline([(name, modality.clone())], None, None)  # type: ignore[arg-type]  # blocks() uses no fusion
    blocks = (one.blocks(train_ids, y)[0], one.blocks(test_ids)[0])
    _BLOCKS[key] = blocks
    _block_bytes += sum(b.values.nbytes for b in blocks)
    while _block_bytes > _BLOCK_BUDGET and len(_BLOCKS) > 1:
        _, old = _BLOCKS.popitem(last=False)
        _block_bytes -= sum(b.values.nbytes for b in old)
    return blocks


def _forget_blocks() -> None:
    global _block_bytes
    _BLOCKS.clear()
    _block_bytes = 0


def _pruned(pruning: tuple[str, list] | None, running: list[float]) -> bool:
    """Optuna's median pruner on this trial's running inner scores against the study's earlier rounds."""
    if pruning is None:
        return False
    optuna = _optuna()
    direction, snapshot = pruning
    study = optuna.create_study(direction=direction, pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.add_trials(snapshot)
    trial = study.ask()
    for step, value in enumerate(running):
        trial.report(value, step)
    return trial.should_prune()


def run_trial(pipeline: Pipeline, cohort: Cohort, inner: list[tuple[np.ndarray, np.ndarray]], metric: str,
              n_classes: int, context, pruning: tuple[str, list] | None, token: str) -> TrialOutcome:
    """Score one configuration by inner cross-validation (a self-contained task: its inputs are all it reads)."""
    # a trial's warnings (a penalty too strong for some configuration) are not the run's: the selected
    # configuration's outer-fold fit reports its own; hundreds from trials would bury them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _score_configuration(pipeline, cohort, inner, metric, n_classes, context, pruning, token)


def _score_configuration(pipeline: Pipeline, cohort: Cohort, inner: list[tuple[np.ndarray, np.ndarray]], metric: str,
                         n_classes: int, context, pruning: tuple[str, list] | None, token: str) -> TrialOutcome:
    start = time.perf_counter()
    y = cohort.target
    fn = metric_functions(y.kind, context)[metric]
    scores: list[float] = []
    try:
        for k, (train, test) in enumerate(inner):
            train_ids = [cohort.ids[i] for i in train]
            test_ids = [cohort.ids[i] for i in test]
            y_train = y.take(train)
            fitted = pipeline.clone()
            blocks = [_modality_blocks(token, name, m, train_ids, y_train, test_ids) for name, m in pipeline.modalities]
            fitted._blocks = {tuple(train_ids): [b[0] for b in blocks], tuple(test_ids): [b[1] for b in blocks]}
            fitted.fit(train_ids, y_train, refit_modalities=False)
            pred = predict_for_scoring(fitted, test_ids, y, n_classes, context)
            scores.append(score(y.kind, metric, y.take(test), pred, fn))
            finite = [s for s in scores if np.isfinite(s)]
            if k < len(inner) - 1 and finite and _pruned(pruning, _running(scores)):
                return TrialOutcome(scores, "pruned", None, time.perf_counter() - start)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as err:  # a configuration that cannot be fitted is a failed trial, not a failed run
        message = str(err) if isinstance(err, TumorboardError) else f"{type(err).__name__}: {err}"
        return TrialOutcome(scores, "fail", message, time.perf_counter() - start)
    if not any(np.isfinite(s) for s in scores):
        return TrialOutcome(scores, "fail", f"{metric} is undefined on every inner fold", time.perf_counter() - start)
    return TrialOutcome(scores, "complete", None, time.perf_counter() - start)


def _running(scores: list[float]) -> list[float]:
    """The mean of the finite inner scores so far, after each inner fold (what the pruner compares)."""
    out, seen = [], []
    for s in scores:
        if np.isfinite(s):
            seen.append(s)
        out.append(float(np.mean(seen)) if seen else float("nan"))
    return out


# --- the studies -----------------------------------------------------------------


@dataclass
class Selected:
    """One study's best trial."""

    params: dict[str, Any]
    inner_score: float
    trial: int
    configuration: dict[str, dict[str, Any]]
    counts: dict[str, int]


@dataclass
class SearchResult:
    """Every study's choice, the trials table, and the summary metrics.json and the report show."""

    selected: dict[str, Selected]  # outer fold label -> choice; "refit" -> the refit's choice
    pipelines: dict[str, Pipeline]
    trials: pl.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


REFIT = "refit"


def _suggest(trial, plan: SearchPlan) -> dict[str, Any]:
    """A trial's values: plugins first, then only the options the chosen plugins declare."""
    params: dict[str, Any] = {}
    chosen = {key: slot.plugin for key, slot in plan.slots.items()}
    for d in plan.dimensions:
        if d.field == "plugin":
            params[d.key] = chosen[d.slot] = _draw(trial, d)
    for d in plan.dimensions:
        if d.field == "calibration" or (d.field != "plugin" and chosen[d.slot] in d.owners):
            params[d.key] = _draw(trial, d)
    return params


def _encode(value: Any) -> Any:
    """Optuna's categorical values are scalars; a list or table choice travels as its JSON text."""
    return value if value is None or isinstance(value, bool | int | float | str) else json.dumps(value, sort_keys=True)


def _draw(trial, d: Dimension) -> Any:
    dist = d.distribution
    if dist.log_uniform is not None:
        return trial.suggest_float(d.key, *dist.log_uniform, log=True)
    if dist.uniform is not None:
        return trial.suggest_float(d.key, *dist.uniform)
    if dist.integer is not None:
        return trial.suggest_int(d.key, *dist.integer, log=dist.log)
    values = {_encode(v): v for v in dist.choice}  # type: ignore[union-attr]
    return values[trial.suggest_categorical(d.key, list(values))]


def _sampler(plan: SearchPlan, seed: int):
    optuna = _optuna()
    kind = plan.section.sampler
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "grid":  # the grid's points are enqueued (grid_points); the sampler only fills what they leave
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def build_pipeline(plan: SearchPlan, loaded, params: dict[str, Any]) -> tuple[Pipeline, dict[str, dict[str, Any]]]:
    """The pipeline of one configuration: the spec's components, with the searched ones rebuilt from
    their chosen plugin and options (validated by the component's Options, as every spec component is)."""
    from .calibration import Calibration

    rs = loaded.spec
    config = configuration(plan, params)

    def component(key: str, family: str, default):
        if key not in config:
            return default.clone()
        chosen = config[key]
        cls = loaded.registry.get(family, chosen["plugin"], chosen["distribution"])
        built = cls.from_options(chosen["options"], base_dir=loaded.base_dir, registry=loaded.registry, seed=rs.run.seed)
        return built

    modalities = [(m.name, component(f"modality.{m.name}", "modality", built))
                  for m, built in zip(rs.modality, loaded.modalities, strict=True)]
    method = params.get("model.calibration", rs.model.calibration)
    calibration = Calibration(method, rs.model.calibration_folds) if method != "none" else None
    pipeline = Pipeline(modalities, component("fusion", "fusion", loaded.fusion), component("model", "model", loaded.model),
                        calibration=calibration)
    return pipeline, config


@dataclass
class _Study:
    key: str
    study: Any
    inner: list[tuple[np.ndarray, np.ndarray]]
    context: Any
    asked: int = 0


def run_search(plan: SearchPlan, loaded, cohort: Cohort, folds: list[Fold], executor: Executor, progress,
               notes: list[str]) -> SearchResult:
    """Run one study per outer fold and one for the refit; return each one's best configuration."""
    optuna = _optuna()
    rs = loaded.spec
    section = plan.section
    y = cohort.target
    n_classes = y.n_classes if y.kind == "multiclass" else 0
    direction = "maximize" if plan.greater_is_better else "minimize"
    everyone = np.arange(len(cohort))
    studies = []
    for i, (key, train) in enumerate([*((f.label, f.train) for f in folds), (REFIT, everyone)]):
        sampler_seed, split_seed = _seeds(rs.run.seed, i)
        where = f"search for {'the refit' if key == REFIT else 'outer fold ' + key}"
        inner = inner_folds(cohort, train, section.inner_folds, split_seed, where)
        context = survival_context(y.take(train), rs.evaluation.horizons) if y.kind == "survival" else None
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5) if section.pruning else optuna.pruners.NopPruner()
        study = optuna.create_study(direction=direction, sampler=_sampler(plan, sampler_seed), pruner=pruner,
                                    study_name=key)
        if section.sampler == "grid":
            for point in grid_points(plan, sampler_seed)[: plan.trials]:
                study.enqueue_trial({k: _encode(v) for k, v in point.items()})
        studies.append(_Study(key, study, inner, context))

    target = plan.trials
    token = uuid.uuid4().hex  # this run's cache entries only (a worker may serve several runs)
    rows: list[dict[str, Any]] = []
    configs: dict[tuple[str, int], dict] = {}
    start = time.perf_counter()
    round_number = 0
    while True:
        batch = []
        for s in studies:
            n = section.parallel_trials if target is None else min(section.parallel_trials, target - s.asked)
            snapshot = s.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                                  optuna.trial.TrialState.PRUNED))
            pruning = (direction, snapshot) if section.pruning else None
            for _ in range(max(n, 0)):
                trial = s.study.ask()
                params = _suggest(trial, plan)
                pipeline, config = build_pipeline(plan, loaded, params)
                configs[(s.key, trial.number)] = config
                s.asked += 1
                batch.append((s, trial, params, (pipeline, cohort, s.inner, plan.metric, n_classes, s.context,
                                                 pruning, token)))
        if not batch:
            break
        round_number += 1
        progress.update(f"search: round {round_number}, {len(batch)} trials of {len(studies)} searches "
                        f"({section.inner_folds} inner folds each)")
        outcomes = executor.map(run_trial, [task for *_, task in batch])
        for (s, trial, params, _), outcome in zip(batch, outcomes, strict=True):
            _tell(optuna, s.study, trial, outcome)
            rows.append({"search": s.key, "trial": trial.number, "state": outcome.state,
                         "inner_score": _mean(outcome.scores) if outcome.state == "complete" else None,
                         "inner_scores": [float(v) for v in outcome.scores], "params": json.dumps(params),
                         "seconds": round(outcome.seconds, 3), "error": outcome.error})
            if target is not None:
                progress.advance()
        if section.timeout is not None and time.perf_counter() - start > section.timeout:
            break

    _forget_blocks()  # this run's entries are of no use to another run in this process
    selected: dict[str, Selected] = {}
    pipelines: dict[str, Pipeline] = {}
    for s in studies:
        trials = s.study.get_trials(deepcopy=False)
        counts = {state: sum(t.state.name.lower() == state for t in trials) for state in ("complete", "pruned", "fail")}
        if counts["complete"] == 0:
            first = next((r["error"] for r in rows if r["search"] == s.key and r["error"]), "no trial completed")
            raise RunError(f"search for {'the refit' if s.key == REFIT else 'outer fold ' + s.key}: every one of its "
                           f"{len(trials)} trials failed; the first: {first}")
        best = s.study.best_trial
        params = dict(best.params)
        decoded = _decoded(plan, params)
        selected[s.key] = Selected(decoded, float(best.value), best.number, configs[(s.key, best.number)], counts)
        pipelines[s.key] = build_pipeline(plan, loaded, decoded)[0]
    result = SearchResult(selected, pipelines, _trials_frame(rows, plan))
    result.summary = _summary(plan, selected, studies[-1].study, rs.run.seed, notes)
    return result


def _decoded(plan: SearchPlan, params: dict[str, Any]) -> dict[str, Any]:
    """Optuna's stored params with list/table choices turned back into their values."""
    out = {}
    for d in plan.dimensions:
        if d.key in params:
            value = params[d.key]
            if d.distribution.choice is not None:
                value = {_encode(v): v for v in d.distribution.choice}[value]
            out[d.key] = value
    return out


def _tell(optuna, study, trial, outcome: TrialOutcome) -> None:
    State = optuna.trial.TrialState
    if outcome.state == "fail":
        study.tell(trial, state=State.FAIL)
        return
    for step, value in enumerate(_running(outcome.scores)):
        if np.isfinite(value):
            trial.report(value, step)
    if outcome.state == "pruned":
        study.tell(trial, state=State.PRUNED)
    else:
        study.tell(trial, _mean(outcome.scores))


def _mean(scores: list[float]) -> float:
    finite = [s for s in scores if np.isfinite(s)]
    return float(np.mean(finite)) if finite else float("nan")


def _trials_frame(rows: list[dict[str, Any]], plan: SearchPlan) -> pl.DataFrame:
    """search/trials.parquet: one row per trial, its params as JSON and one column per searched key."""
    frame = pl.DataFrame(rows, schema={"search": pl.String, "trial": pl.Int32, "state": pl.String,
                                       "inner_score": pl.Float64, "inner_scores": pl.List(pl.Float64),
                                       "params": pl.String, "seconds": pl.Float64, "error": pl.String})
    for d in plan.dimensions:
        values = [json.loads(r["params"]).get(d.key) for r in rows]
        numeric = d.distribution.choice is None
        column = pl.Series(d.key, [None if v is None else (float(v) if numeric else json.dumps(v) if not
                                                           isinstance(v, str) else v) for v in values],
                           dtype=pl.Float64 if numeric else pl.String)
        frame = frame.with_columns(column)
    return frame


def _summary(plan: SearchPlan, selected: dict[str, Selected], refit_study, seed: int,
             notes: list[str]) -> dict[str, Any]:
    """What metrics.json and the report show: per-fold choices and scores, their stability, importance."""
    folds = {k: v for k, v in selected.items() if k != REFIT}
    selections = {}
    for d in plan.dimensions:
        values = [folds[k].params.get(d.key) for k in folds]
        stable = _stable(d, [v for v in values if v is not None])
        selections[d.key] = {"values": values, "labels": list(folds), "refit": selected[REFIT].params.get(d.key),
                             "stable": stable}
        if not stable:
            shown = ", ".join(f"{label}: {_show(v)}" for label, v in zip(folds, values, strict=True))
            warn(f"search: the outer folds selected different values of {d.key} ({shown}); the selection is "
                 "unstable, so the refit's value is one of several that score alike: quote the outer-fold "
                 "performance, which includes this variation, not the refit's configuration as the best one", notes)
    return {
        "metric": plan.metric,
        "direction": "maximize" if plan.greater_is_better else "minimize",
        "sampler": plan.section.sampler,
        "inner_folds": plan.section.inner_folds,
        "trials_per_search": plan.trials,
        "searches": {k: {"inner_score": v.inner_score, "params": v.params, "trial": v.trial, **v.counts}
                     for k, v in selected.items()},
        "selections": selections,
        "importance": _importance(refit_study, seed),
    }


def _stable(d: Dimension, values: list[Any]) -> bool:
    if len(values) < 2:
        return True
    dist = d.distribution
    if dist.choice is not None:
        encoded = [_encode(v) for v in values]
        return max(encoded.count(v) for v in encoded) >= CHOICE_SHARE_STABLE * len(values)
    low, high = min(values), max(values)
    if dist.log_uniform is not None or dist.log:
        return high / low <= LOG_RATIO_UNSTABLE
    bounds = dist.uniform or dist.integer
    return (high - low) <= LINEAR_SHARE_UNSTABLE * (bounds[1] - bounds[0])  # type: ignore[index]


def _show(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _importance(study, seed: int) -> dict[str, float]:
    """fANOVA importance of each parameter in the refit's search (empty when Optuna cannot give it:
    fewer than two completed trials, or nothing varied)."""
    optuna = _optuna()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
            return {k: round(float(v), 4) for k, v in optuna.importance.get_param_importances(study, evaluator=evaluator).items()}
    except (ValueError, RuntimeError):
        return {}
