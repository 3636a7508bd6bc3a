"""Component base classes: a name, a pydantic ``Options`` model, scikit-learn-style methods.

A component's ``__init__`` only stores validated options. ``fit`` sees training
patients only, returns ``self`` and keeps what it learned in public attributes
whose names end in ``_``; those are what the saved pipeline stores (arrays in
``.npz`` without pickle, the rest as JSON).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

from .data import Attribution, FeatureBlock, Target

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*$")

JSONScalar = str | int | float | bool | None


def in_data_root(path: Path, root: Path) -> Path:
    """``path`` (absolute) read inside ``root``: itself when it lies there, else ``root`` / its file name.

    ``predict --data FOLDER`` reads every input from FOLDER, never silently
    from where the training data lived.
    """
    root = Path(root).resolve()
    return path if path.is_relative_to(root) else root / path.name


def _resolve_input(value: Path, info: ValidationInfo) -> Path:
    # relative paths in a spec are relative to the spec file, not to wherever the
    # command happens to be run from
    context = info.context or {}
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(context.get("base_dir") or Path.cwd()) / path
    path = path.resolve()
    root = context.get("data_root")
    if root is not None:
        mapped = in_data_root(path, Path(root))
        if mapped != path and not mapped.exists():
            raise ValueError(f"{value} is outside the --data folder {root}, which holds no {path.name!r}; put the new "
                             f"patients' {path.name} there (or give --data a spec naming the new file)")
        path = mapped
    # schema checks of example specs validate options without their data files
    if not context.get("skip_files") and not path.exists():
        raise ValueError(f"file not found: {path}")
    return path


InputPath = Annotated[Path, AfterValidator(_resolve_input)]
"""A path option that names an input: resolved against the spec's folder, checked to
exist, and hashed into the run's provenance."""


class Options(BaseModel):
    """Base of every component's options: a key the model does not declare is an error, so a typo in a
    spec is reported with its line instead of silently ignored.

    A component declares ``class Options(Options): ...`` (the base imported from ``tumorboard.api``).
    """

    model_config = ConfigDict(extra="forbid")


class NoOptions(Options):
    """Options of a component that has none."""


class Component(ABC):
    """What every component shares: a ``family.variant`` name, options, a seed, saved state.

    Subclasses set ``name`` and, when they take options, a nested ``Options``
    model derived from ``tumorboard.api.Options`` (unknown keys are errors). ``tasks`` lists the run tasks the
    component supports (required: there is no default); the spec is rejected early for any other, and the
    testing kit runs its checks on each.
    ``known_limitations`` maps a conformance check name to the reason the
    component cannot meet it; the testing kit marks those as expected failures.
    ``requires`` names the top-level modules the component imports beyond
    tumorboard's own dependencies (imported inside its methods, never at the
    plugin's import); where one is missing the component is listed as
    unavailable with ``install``, the command that gets them.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = NoOptions
    tasks: ClassVar[frozenset[str]] = frozenset()
    known_limitations: ClassVar[dict[str, str]] = {}
    requires: ClassVar[tuple[str, ...]] = ()
    install: ClassVar[str] = ""

    def __init__(self, options: BaseModel | None = None, /, *, seed: int = 0, **kwargs: Any) -> None:
        """``options`` (an ``Options`` instance) or the options as keywords; ``seed`` is the one every random
        step of the component derives from (the engine passes the run's)."""
        if options is not None and kwargs:
            raise TypeError(f"{self.name}: pass an Options instance or keyword options, not both")
        if options is None:
            options = self.Options.model_validate(kwargs)
        elif not isinstance(options, self.Options):
            raise TypeError(f"{self.name}: options must be {self.Options.__name__}, got {type(options).__name__}")
        self.options = options
        self.seed = int(seed)

    @classmethod
    def from_options(cls, options: dict[str, Any], base_dir: Path | None = None, data_root: Path | None = None,
                     registry: Any = None, seed: int = 0) -> Self:
        """Validate raw options (from a spec) and build the component.

        ``data_root`` confines every input path to one folder (``predict --data``).
        ``registry`` is the plugin registry of the spec being built: options that
        name other components (an ensemble's members) resolve them there
        (``tumorboard.api.component_class(family, name, info)``).
        """
        context: dict[str, Any] = {}
        if base_dir is not None:
            context["base_dir"] = base_dir
        if data_root is not None:
            context["data_root"] = data_root
        if registry is not None:
            context["registry"] = registry
        return cls(cls.Options.model_validate(options, context=context or None), seed=seed)

    def clone(self) -> Self:
        """A fresh, unfitted component with the same options and seed."""
        other = type(self)(self.options.model_copy(deep=True), seed=self.seed)
        return other

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options!r})"

    # --- saved state -----------------------------------------------------

    def fitted_attributes(self) -> list[str]:
        return sorted(k for k in vars(self) if k.endswith("_") and not k.startswith("_"))

    def get_state(self) -> dict[str, Any]:
        """What ``fit`` learned, as arrays and JSON values (no pickle).

        The default collects the public attributes ending in ``_``. Override it
        (with ``set_state``) when learned state lives in objects that are not
        arrays, numbers, strings, or lists and dicts of those.
        """
        return {k: getattr(self, k) for k in self.fitted_attributes()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_state`` returned, making the component fitted."""
        for key, value in state.items():
            setattr(self, key, value)

    def check_is_fitted(self) -> None:
        if not self.fitted_attributes():
            raise RuntimeError(f"{self.name}: call fit() before using this component")


class Modality(Component):
    """A data source that turns patient ids into features (one ``FeatureBlock``).

    ``fit(ids, y)`` learns preprocessing from training patients only;
    ``transform(ids)`` returns one row per id, in order, marking patients the
    source has no data for as absent in the presence mask.
    """

    family = "modality"

    def available_ids(self) -> set[str] | None:
        """The patient ids this source holds data for, or ``None`` when unknowable.

        The engine uses it before a run to report ids that match no cohort
        patient (an error) or only some (a warning with counts).
        """
        return None

    def explain_id_mismatch(self, cohort_ids: set[str]) -> str | None:
        """Why none of ``available_ids`` matches the cohort, when the source can tell (else ``None``).

        Called only when nothing matches; the engine adds the answer to its
        error. A matrix stored the other way round, for example, can say that
        its column names are the cohort's ids and which option to set.
        """
        return None

    def feature_labels(self, names: Sequence[str]) -> dict[str, str]:
        """Readable names for this modality's features (``names`` are its block's feature names), for
        reports and patient cards: feature -> label, for those it can name better than the column name.

        Optional (the default names none). Called on the fitted modality after
        the refit; the engine writes the answers into the run directory, so a
        report never parses a plugin's feature names.
        """
        return {}

    def input_files(self) -> list[Path]:
        """Files this component reads (hashed into provenance). Defaults to its path options."""
        return _paths_in(self.options)

    def saliency(self, ids: Sequence[str]) -> Attribution | None:
        """Input-level attributions of the modality's own supervised head, when it has one (else ``None``).

        Optional. A fitted modality with a network trained on the run's
        target (an imaging net, an autoencoder's head) can say which of its
        raw inputs drove that head: per-input scores in ``per_patient``
        (genes, say) and/or per-patient image maps in ``images``.
        ``explain.saliency`` collects them from every modality that answers.
        """
        return None

    @abstractmethod
    def fit(self, ids: Sequence[str], y: Target) -> Self: ...

    @abstractmethod
    def transform(self, ids: Sequence[str]) -> FeatureBlock: ...


class Fusion(Component):
    """Combines the blocks of all modalities into one block for the model."""

    family = "fusion"

    @abstractmethod
    def fit(self, blocks: Sequence[FeatureBlock], y: Target) -> Self: ...

    @abstractmethod
    def transform(self, blocks: Sequence[FeatureBlock]) -> FeatureBlock: ...

    def fit_transform(self, blocks: Sequence[FeatureBlock], y: Target) -> FeatureBlock:
        """Fit, and return the training patients' fused block (what the model is fitted on).

        The default is ``fit(blocks, y).transform(blocks)``. A fusion whose
        output is itself learned from ``y`` (stacking) overrides it to return
        cross-fitted values, as scikit-learn's ``TargetEncoder`` does: the
        model must never see a training patient's features computed by
        something fitted on that patient's own label.
        """
        return self.fit(blocks, y).transform(blocks)


class Model(Component):
    """A predictor on the fused block.

    ``predict`` returns, per task: binary, the positive-class probability
    ``(n,)``; multiclass, class probabilities ``(n, k)``; regression, values
    ``(n,)``; survival, a risk score ``(n,)`` where larger means earlier events.
    """

    family = "model"
    provides_survival_curves: ClassVar[bool] = False
    """Survival models that set this implement ``predict_survival`` (for integrated Brier scores)."""

    @abstractmethod
    def fit(self, X: FeatureBlock, y: Target) -> Self: ...

    @abstractmethod
    def predict(self, X: FeatureBlock) -> np.ndarray: ...

    def predict_survival(self, X: FeatureBlock, times: np.ndarray) -> np.ndarray:
        """Survival probabilities S(t | x), shape (patients, len(times)), for survival models."""
        raise NotImplementedError(f"{self.name} does not predict survival curves")


class Explainer(Component):
    """Explains a fitted model on a block of patients.

    ``y`` is passed for methods that score against the truth (permutation
    importance); others may ignore it. An explainer whose ``explain`` takes a
    ``modalities`` keyword also receives the fitted modalities (name ->
    component) and may look inside them (``explain.saliency``); the engine
    passes it only to explainers that ask for it.
    """

    family = "explainer"

    @abstractmethod
    def explain(
        self,
        model: Model,
        X: FeatureBlock,
        feature_names: Sequence[str],
        y: Target | None = None,
        modalities: Mapping[str, Modality] | None = None,
    ) -> Attribution:
        """Explain ``model`` (fitted on every patient) on ``X``, the refit's fused features of every patient.

        :param feature_names: ``X``'s columns, in order.
        :param y: the patients' target, for methods that score against the truth.
        :param modalities: the fitted modalities by spec name, for methods that look inside them
            (``explain.saliency``); the engine passes it to explainers whose ``explain`` declares it.
        """


FAMILIES: dict[str, type[Component]] = {
    "modality": Modality,
    "fusion": Fusion,
    "model": Model,
    "explainer": Explainer,
}


def _paths_in(value: Any) -> list[Path]:
    """Every path inside an options model (nested models, lists and dicts included)."""
    found: list[Path] = []
    if isinstance(value, Path):
        found.append(value)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            found += _paths_in(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            found += _paths_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found += _paths_in(item)
    return found


def paths_in_options(component: Component) -> list[Path]:
    """Every path a component's options name; used for provenance hashes."""
    return _paths_in(component.options)


def component_class(family: str, name: str, info: Any = None) -> type[Component]:
    """The component class of ``family`` called ``name``, for components built from other components
    (an ensemble's members, stacking's base model).

    Pass the ``ValidationInfo`` of the options validator that names it: the
    registry of the spec being built travels in its context, so a spec's own
    local plugins are found and nothing leaks between runs. Outside a spec
    (a component built in Python), the installed plugins answer.
    """
    from .errors import ComponentError

    context = getattr(info, "context", None) or {}
    registry = context.get("registry")
    if registry is None:
        from .plugins import load_plugins

        registry = load_plugins()
    cls = registry.get(family, name)
    if cls is None:
        raise ComponentError(f"no {family} component {name!r}; installed: {', '.join(registry.names(family))}")
    return cls
