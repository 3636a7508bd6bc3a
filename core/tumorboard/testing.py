"""The conformance kit: the checks every component must pass, runnable from any test suite.

    from tumorboard.testing import parametrize_with_checks

    @parametrize_with_checks([TabularFile(path="labs.csv")])
    def test_follows_the_component_contract(component, check):
        check(component)

Each check proves one property and fails with a sentence and its evidence.
Modalities are tested on the patients their ``available_ids()`` reports;
fusions, models and explainers on small synthetic data with a planted signal.
A component lists what it cannot do in ``known_limitations`` (check name ->
reason); those checks become expected failures, never silent skips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import contextvars
import secrets

import numpy as np
from pydantic import ValidationError

from ._engine.components import FAMILIES, Component, Model
from ._engine.data import Attribution, FeatureBlock, Target
from ._engine.errors import TumorboardError
from ._engine.metrics import score
from ._engine.pipeline import check_block
from ._engine.plugins import component_problems
from ._engine.state import load_state, save_state

UNKNOWN_ID = "__tumorboard_testing_unknown_patient__"
Check = Callable[[Component], None]


class ConformanceError(AssertionError):
    """A component broke the contract; the message says how and what to do."""


def _fail(component: Component, message: str) -> None:
    raise ConformanceError(f"{component.name}: {message}")


def _family(component: Component) -> str:
    for family, base in FAMILIES.items():
        if isinstance(component, base):
            return family
    raise TypeError(f"{component!r} is not a tumorboard component")


# the task the running check exercises; check_component and parametrize_with_checks run every check once per
# task the component declares
_TASK: contextvars.ContextVar[str | None] = contextvars.ContextVar("tumorboard_testing_task", default=None)
TASK_ORDER = ("binary", "multiclass", "survival", "regression")


def tasks_of(component: Component) -> list[str]:
    """The tasks the kit runs a component's checks on: every task it declares (explainers: binary, the task
    of the reference model they explain)."""
    if _family(component) == "explainer":
        return ["binary"]
    declared = [task for task in TASK_ORDER if task in component.tasks]
    if not declared:
        raise ConformanceError(f"{component.name}: tasks is empty; declare the run tasks it supports")
    return declared


def _task(component: Component) -> str:
    chosen = _TASK.get()
    declared = tasks_of(component)
    return chosen if chosen in declared else declared[0]


def for_task(check: Check, task: str) -> Check:
    """``check`` run on ``task``'s data (its name says which: ``check_fit_returns_self[survival]``)."""

    def run(component: Component) -> None:
        token = _TASK.set(task)
        try:
            check(component)
        finally:
            _TASK.reset(token)

    run.__name__ = f"{check.__name__}[{task}]"
    run.__qualname__ = run.__name__
    run.__doc__ = check.__doc__
    return run


def synthetic_target(task: str, n: int, signal: np.ndarray | None = None, seed: int = 0) -> Target:
    """A target for ``n`` patients, driven by ``signal`` when given (else random)."""
    rng = np.random.default_rng(seed)
    s = signal if signal is not None else rng.standard_normal(n)
    if task == "binary":
        values = (s + 0.5 * rng.standard_normal(n) > np.median(s)).astype(np.int64)
        return Target("binary", values, None, ("0", "1"))
    if task == "multiclass":
        cuts = np.quantile(s, [1 / 3, 2 / 3])
        return Target("multiclass", np.digitize(s + 0.3 * rng.standard_normal(n), cuts).astype(np.int64), None, ("a", "b", "c"))
    if task == "regression":
        return Target("regression", 2 * s + 0.3 * rng.standard_normal(n))
    time = np.exp(-0.8 * s + 0.3 * rng.standard_normal(n)) * 10
    event = (rng.random(n) < 0.75).astype(np.int64)
    return Target("survival", time, event)


def fresh_prefix() -> str:
    """A random id prefix: every check sees patients no earlier fit can have seen, so a component that
    remembers ids (in a module-level dict, a cache) cannot pass by recalling them."""
    return f"K{secrets.token_hex(4)}-"


def synthetic_features(n: int = 120, f: int = 6, seed: int = 0, modality: str = "synthetic",
                       prefix: str = "T") -> tuple[FeatureBlock, np.ndarray]:
    """A complete block whose first feature carries the signal; returns (block, signal)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, f))
    ids = tuple(f"{prefix}{i:04d}" for i in range(n))
    return FeatureBlock(ids, X, tuple(f"x{j}" for j in range(f)), np.ones(n, bool), modality), X[:, 0]


def _blocks(n: int = 80, seed: int = 0, prefix: str = "T") -> tuple[list[FeatureBlock], np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = tuple(f"{prefix}{i:04d}" for i in range(n))
    a = rng.standard_normal((n, 4))
    b = rng.standard_normal((n, 3)) * 5 + 2
    presence_b = rng.random(n) > 0.25
    b[~presence_b] = np.nan
    a[rng.random((n, 4)) < 0.05] = np.nan  # missing values inside present rows
    blocks = [
        FeatureBlock(ids, a, ("a0", "a1", "a2", "a3"), np.ones(n, bool), "alpha"),
        FeatureBlock(ids, b, ("b0", "b1", "b2"), presence_b, "beta"),
    ]
    return blocks, np.nan_to_num(a[:, 0])


class _ReferenceModel(Model):
    """A fixed linear scorer on the first feature, used to test explainers."""

    name = "model.testing_reference"
    tasks = frozenset({"binary", "regression", "survival"})

    def fit(self, X: FeatureBlock, y: Target) -> _ReferenceModel:
        self.weights_ = np.zeros(X.values.shape[1])
        self.weights_[0] = 2.0
        self.kind_ = y.kind
        return self

    def predict(self, X: FeatureBlock) -> np.ndarray:
        z = np.nan_to_num(X.values) @ self.weights_
        return 1 / (1 + np.exp(-z)) if self.kind_ == "binary" else z


# --- fitting helpers per family -------------------------------------------


class _Harness:
    """Knows how to fit and run a component of one family on test data."""

    def __init__(self, component: Component):
        self.family = _family(component)
        self.task = _task(component) if self.family != "explainer" else "binary"
        if self.family == "modality":
            available = component.available_ids()  # type: ignore[attr-defined]
            if not available:
                _fail(component, "the testing kit needs available_ids() to name the patients to test on")
            self.ids = sorted(available)[:200]
            self.y = synthetic_target(self.task, len(self.ids), seed=1)
        elif self.family == "fusion":
            self.blocks, signal = _blocks(prefix=fresh_prefix())
            self.y = synthetic_target(self.task, len(self.blocks[0].ids), signal)
        else:
            self.X, signal = synthetic_features(prefix=fresh_prefix())
            self.y = synthetic_target(self.task, len(self.X.ids), signal)

    def n(self) -> int:
        return len(self.y)

    def fit(self, c: Component, rows: np.ndarray | None = None) -> Component:
        rows = np.arange(self.n()) if rows is None else rows
        if self.family == "modality":
            return c.fit([self.ids[i] for i in rows], self.y.take(rows))  # type: ignore[attr-defined]
        if self.family == "fusion":
            return c.fit([b.take(rows) for b in self.blocks], self.y.take(rows))  # type: ignore[attr-defined]
        if self.family == "model":
            return c.fit(self.X.take(rows), self.y.take(rows))  # type: ignore[attr-defined]
        return c

    def output(self, c: Component, rows: np.ndarray | None = None) -> Any:
        rows = np.arange(self.n()) if rows is None else rows
        if self.family == "modality":
            return c.transform([self.ids[i] for i in rows])  # type: ignore[attr-defined]
        if self.family == "fusion":
            return c.transform([b.take(rows) for b in self.blocks])  # type: ignore[attr-defined]
        if self.family == "model":
            return c.predict(self.X.take(rows))  # type: ignore[attr-defined]
        model = _ReferenceModel().fit(self.X, self.y)
        return c.explain(model, self.X, self.X.feature_names, self.y)  # type: ignore[attr-defined]


def _as_array(output: Any) -> np.ndarray:
    if isinstance(output, FeatureBlock):
        return np.where(output.presence[:, None], output.values, 0.0)
    if isinstance(output, Attribution):
        return output.importance
    return np.asarray(output)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return False
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            return bool(np.allclose(a, b, equal_nan=True, rtol=1e-6, atol=1e-9))
        return bool(np.array_equal(a, b))
    if isinstance(a, FeatureBlock | Attribution):
        return _same(_as_array(a), _as_array(b))
    return a == b


def _halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])


# --- the checks ------------------------------------------------------------


def check_api(component: Component) -> None:
    """The class passes the registration checks: base class, name, Options, docstring."""
    problems = component_problems(type(component), _family(component))
    if problems:
        _fail(component, "; ".join(problems))


def check_options_reject_unknown_keys(component: Component) -> None:
    """A misspelt option is an error, not silently ignored."""
    options = component.options.model_dump()
    options["no_such_option_xyz"] = 1
    try:
        type(component).Options.model_validate(options, context={"skip_files": True})
    except ValidationError as err:
        if any(e["type"] == "extra_forbidden" for e in err.errors()):
            return
    _fail(component, "Options accepted the unknown key 'no_such_option_xyz'; derive Options from "
                     "tumorboard.api.Options (or set model_config = ConfigDict(extra='forbid'))")


def check_fit_returns_self(component: Component) -> None:
    h = _Harness(component)
    if h.family == "explainer":
        return
    c = component.clone()
    result = h.fit(c)
    if result is not c:
        _fail(component, f"fit() returned {type(result).__name__}, not self; end fit with `return self`")


def check_one_row_per_id(component: Component) -> None:
    """Outputs have one row per requested patient, in the order given."""
    h = _Harness(component)
    c = h.fit(component.clone())
    rows = np.arange(h.n())[::-1][: max(3, h.n() // 2)]
    out = h.output(c, rows)
    if h.family == "explainer":
        if not isinstance(out, Attribution) or len(out.importance) != len(h.X.feature_names):
            _fail(component, "explain() must return an Attribution with one importance per feature")
        return
    if h.family in ("modality", "fusion"):
        expected = [h.ids[i] for i in rows] if h.family == "modality" else [h.blocks[0].ids[i] for i in rows]
        try:  # the engine's own check, with the engine's message
            check_block(out, expected, f"transform() of {len(expected)} ids", component.name)
        except TumorboardError as err:
            raise ConformanceError(str(err)) from None
        return
    pred = np.asarray(out)
    n = len(rows)
    expected_shape = (n, h.y.n_classes) if h.task == "multiclass" else (n,)
    if pred.shape != expected_shape:
        _fail(component, f"predict() returned shape {pred.shape} for {n} patients; expected {expected_shape} for task {h.task!r}")
    if not np.isfinite(pred).all():
        _fail(component, "predict() returned non-finite values")
    if h.task == "binary" and ((pred < 0) | (pred > 1)).any():
        _fail(component, "predict() must return positive-class probabilities in [0, 1] for a binary task")


def check_presence_marks_unknown_ids_absent(component: Component) -> None:
    """A patient the source has no data for is marked absent, not crashed on."""
    h = _Harness(component)
    if h.family != "modality":
        return
    c = h.fit(component.clone())
    ids = [h.ids[0], UNKNOWN_ID]
    try:
        block = c.transform(ids)  # type: ignore[attr-defined]
    except Exception as err:
        _fail(component, f"transform() raised {type(err).__name__} for an id without data; mark it absent instead ({err})")
    if not block.presence[0] or block.presence[1]:
        _fail(component, f"presence mask {block.presence.tolist()} for [known id, unknown id]; expected [True, False]")


def check_absent_rows_ignored(component: Component) -> None:
    """A fusion's output for a patient does not depend on values of a modality they lack."""
    h = _Harness(component)
    if h.family != "fusion":
        return
    c = h.fit(component.clone())
    before = _as_array(c.transform(h.blocks))  # type: ignore[attr-defined]
    altered = []
    for b in h.blocks:
        values = b.values.copy()
        values[~b.presence] = 1e6
        altered.append(FeatureBlock(b.ids, values, b.feature_names, b.presence, b.modality, b.sources))
    after = _as_array(c.transform(altered))  # type: ignore[attr-defined]
    if not _same(before, after):
        _fail(component, "output changed when values of absent rows changed; treat absent patients' rows as missing")


def check_no_state_carried_between_fits(component: Component) -> None:
    """Fitting on A, then B, then A again gives what fitting on A gave."""
    h = _Harness(component)
    if h.family == "explainer":
        return
    a, b = _halves(h.n())
    c = h.fit(component.clone(), a)
    first = h.output(c)
    h.fit(c, b)
    h.fit(c, a)
    if not _same(first, h.output(c)):
        _fail(component, "refitting on the same patients gave different output after a fit on others; reset learned state in fit()")


def check_same_seed_same_output(component: Component) -> None:
    """Two fresh copies with the same options and seed give identical output."""
    h = _Harness(component)
    outputs = []
    for _ in range(2):
        c = component.clone()
        outputs.append(h.output(h.fit(c)))
    if not _same(outputs[0], outputs[1]):
        _fail(component, "two fits with the same options and seed gave different output; seed every random step from self.seed")


def check_fit_uses_train_ids_only(component: Component) -> None:
    """Learned state depends on which patients fit() was given.

    A component that learns the same state from half the patients as from all
    of them is probably learning from every patient in its data, test patients
    included. Components with no learned state pass trivially.
    """
    h = _Harness(component)
    a, _ = _halves(h.n())
    half = h.fit(component.clone(), a).get_state()
    full = h.fit(component.clone()).get_state()
    # arrays holding one value throughout (fixed weights, flags, counts of options) do not depend on
    # the data by construction: they are no evidence either way
    learned = {k: v for k, v in full.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"
               and v.size > 1 and np.isfinite(v).any() and float(np.nanmax(v) - np.nanmin(v)) > 0}
    if learned and _same({k: half.get(k) for k in learned}, learned):
        _fail(component, "fit() on half the patients learned exactly what fit() on all learned; "
                         "compute statistics from the training ids only")


def check_fresh_instance_not_influenced_by_earlier_fits(component: Component) -> None:
    """A fresh instance fitted on some patients predicts the same whatever other instances learned before.

    A component that keeps anything between instances (a module-level dict of
    id -> label, a class attribute, a cache keyed by id) leaks: what one fold
    learned about its patients reaches the next fold's model, where those
    patients are test patients. Fitted on other patients, a fresh instance
    must not know them.
    """
    h = _Harness(component)
    train, others = _halves(h.n(), seed=5)
    before = h.output(h.fit(component.clone(), train), others)
    # another instance learns the held-out patients with flipped labels, the strongest signal to leak
    flipped = _flipped(h.y)
    other = component.clone()
    if h.family == "modality":
        other.fit([h.ids[i] for i in others], flipped.take(others))  # type: ignore[attr-defined]
    elif h.family == "fusion":
        other.fit([b.take(others) for b in h.blocks], flipped.take(others))  # type: ignore[attr-defined]
    else:
        other.fit(h.X.take(others), flipped.take(others))  # type: ignore[attr-defined]
    after = h.output(h.fit(component.clone(), train), others)
    if not _same(before, after):
        _fail(component, "a fresh instance fitted on the same patients gave different output for held-out patients "
                         "after another instance was fitted on those patients; keep learned state on the instance "
                         "(attributes ending in '_'), never in module or class variables")


def _flipped(y: Target) -> Target:
    if y.kind == "binary":
        return Target("binary", 1 - y.values, None, y.classes)
    if y.kind == "multiclass":
        return Target("multiclass", (y.values + 1) % max(y.n_classes, 2), None, y.classes)
    if y.kind == "regression":
        return Target("regression", -y.values)
    return Target("survival", y.values[::-1].copy(), y.event)


def check_state_roundtrip(component: Component, tmp_dir: str | None = None) -> None:
    """Saved and reloaded state (no pickle) reproduces the output."""
    import tempfile
    from pathlib import Path

    h = _Harness(component)
    if h.family == "explainer":
        return
    c = h.fit(component.clone())
    expected = h.output(c)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            save_state(c.get_state(), Path(tmp), "state", owner=component.name)
        except TypeError as err:
            _fail(component, f"state cannot be saved without pickle: {err}")
        fresh = component.clone()
        fresh.set_state(load_state(Path(tmp), "state"))
    if not _same(expected, h.output(fresh)):
        _fail(component, "output after get_state/save/load/set_state differs; store every learned value in an attribute ending in '_' or override get_state/set_state")


def check_wrong_shape_raises(component: Component) -> None:
    """Mismatched inputs raise a clear ValueError, not an IndexError deep inside."""
    h = _Harness(component)
    if h.family == "explainer":
        return
    short = h.y.take(np.arange(h.n() - 3))
    try:
        if h.family == "modality":
            component.clone().fit(h.ids, short)  # type: ignore[attr-defined]
        elif h.family == "fusion":
            component.clone().fit(h.blocks, short)  # type: ignore[attr-defined]
        else:
            component.clone().fit(h.X, short)  # type: ignore[attr-defined]
    except (ValueError, TumorboardError) as err:
        if not str(err).strip():
            _fail(component, "raised an error without a message for mismatched inputs")
        return
    except Exception as err:
        _fail(component, f"fit() with {h.n()} patients and {h.n() - 3} targets raised {type(err).__name__}: {err}; "
                         "check shapes first and raise ValueError (or tumorboard.api.ComponentError)")
    _fail(component, f"fit() accepted {h.n()} patients with {h.n() - 3} target values; raise a ValueError naming both counts")


def check_model_learns_planted_signal(component: Component) -> None:
    """A model scores well above chance on held-out patients when one feature carries the signal."""
    h = _Harness(component)
    if h.family != "model":
        return
    train, test = _halves(h.n(), seed=3)
    c = h.fit(component.clone(), train)
    pred = np.asarray(c.predict(h.X.take(test)))  # type: ignore[attr-defined]
    y = h.y.take(test)
    metric, threshold = {"binary": ("auroc", 0.7), "multiclass": ("auroc", 0.7),
                         "regression": ("r2", 0.3), "survival": ("c_index", 0.65)}[h.task]
    value = score(h.task, metric, y, pred)
    if not value > threshold:
        _fail(component, f"held-out {metric} = {value:.3f} with a strong planted signal (expected > {threshold})")


def check_explainer_finds_planted_feature(component: Component) -> None:
    """On a model that uses only feature 0, feature 0 gets the largest attribution."""
    h = _Harness(component)
    if h.family != "explainer":
        return
    out = h.output(component.clone())
    importance = np.abs(np.asarray(out.importance))
    if not np.isfinite(importance).all():
        _fail(component, "returned non-finite importances")
    if int(np.argmax(importance)) != 0:
        _fail(component, f"the only used feature (x0) is not the most important: {dict(zip(out.feature_names, np.round(importance, 4)))}")


CHECKS: tuple[Check, ...] = (
    check_api,
    check_options_reject_unknown_keys,
    check_fit_returns_self,
    check_one_row_per_id,
    check_presence_marks_unknown_ids_absent,
    check_absent_rows_ignored,
    check_no_state_carried_between_fits,
    check_same_seed_same_output,
    check_fit_uses_train_ids_only,
    check_fresh_instance_not_influenced_by_earlier_fits,
    check_state_roundtrip,
    check_wrong_shape_raises,
    check_model_learns_planted_signal,
    check_explainer_finds_planted_feature,
)

_FITTED = frozenset({"modality", "fusion", "model"})
APPLIES: dict[str, frozenset[str]] = {
    "check_fit_returns_self": _FITTED,
    "check_presence_marks_unknown_ids_absent": frozenset({"modality"}),
    "check_absent_rows_ignored": frozenset({"fusion"}),
    "check_no_state_carried_between_fits": _FITTED,
    "check_fit_uses_train_ids_only": _FITTED,
    "check_fresh_instance_not_influenced_by_earlier_fits": _FITTED,
    "check_state_roundtrip": _FITTED,
    "check_wrong_shape_raises": _FITTED,
    "check_model_learns_planted_signal": frozenset({"model"}),
    "check_explainer_finds_planted_feature": frozenset({"explainer"}),
}
"""The families each check applies to (absent: every family); the others never run it."""


def checks_for(component: Component) -> list[Check]:
    """The checks that apply to ``component``'s family."""
    family = _family(component)
    return [c for c in CHECKS if family in APPLIES.get(c.__name__, frozenset(FAMILIES))]


def check_component(component: Component | type[Component]) -> None:
    """Run every check on ``component``, once per task it declares; raise ``ConformanceError`` listing each
    failure (``check_name[task]: ...``).

    A class is built with its default options (``cls()``); pass an instance when
    options are required (a modality's data path, for one).

    Checks named in ``known_limitations`` (``check_name`` for every task, or
    ``check_name[task]`` for one) are run too and must fail (they are expected
    failures); one that passes is reported, so the list stays honest.
    """
    if isinstance(component, type):
        component = component()
    failures = []
    for check in [for_task(c, task) for task in tasks_of(component) for c in checks_for(component)]:
        reason = component.known_limitations.get(check.__name__.split("[")[0]) or component.known_limitations.get(
            check.__name__)
        try:
            check(component)
        except ConformanceError as err:
            if reason is None:
                failures.append(f"{check.__name__}: {err}")
            continue
        except Exception as err:  # a crash inside a check is that check failing
            if reason is None:
                failures.append(f"{check.__name__}: {component.name} raised {type(err).__name__}: {err}")
            continue
        if reason is not None:
            failures.append(f"{check.__name__}: passes, but is listed in known_limitations ({reason!r})")
    if failures:
        raise ConformanceError("\n".join(failures))


def parametrize_with_checks(components: Sequence[Component], tasks: Sequence[str] | None = None,
                            other_tasks_marks: Sequence[Any] = ()):
    """A pytest parametrisation over (component, check) pairs, one test per property.

    Test ids read ``tabular.file-check_one_row_per_id[binary]`` so ``pytest -k`` can
    pick one. Every check runs once per task the component declares (``tasks``
    narrows that); ``other_tasks_marks`` marks every task but the first (e.g.
    ``pytest.mark.slow`` for a slow component whose tasks differ only in the
    labels). Known limitations become strict expected failures with their reason.
    """
    import pytest

    params = []
    for component in components:
        if not isinstance(component, Component):
            raise TypeError(f"parametrize_with_checks takes component instances, got {component!r}")
        chosen = [t for t in tasks_of(component) if tasks is None or t in tasks]
        for check in [for_task(c, task) for task in chosen for c in checks_for(component)]:
            marks = [] if check.__name__.endswith(f"[{chosen[0]}]") else list(other_tasks_marks)
            reason = component.known_limitations.get(check.__name__.split("[")[0]) or component.known_limitations.get(
                check.__name__)
            if reason:
                marks.append(pytest.mark.xfail(reason=reason, strict=True, raises=ConformanceError))
            params.append(pytest.param(component, check, marks=marks, id=f"{component.name}-{check.__name__}"))
    return pytest.mark.parametrize(("component", "check"), params)


__all__ = [
    "APPLIES",
    "CHECKS",
    "ConformanceError",
    "checks_for",
    "check_component",
    "parametrize_with_checks",
    "synthetic_features",
    "synthetic_target",
]
