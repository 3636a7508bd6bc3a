"""A fitted chain of modalities -> fusion -> model, and its on-disk form (no pickle)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .calibration import Calibration, apply_calibrator, checked_calibrator, cross_fitted, fit_calibrator
from .components import Component, Fusion, Model, Modality
from .data import FeatureBlock, Target
from pydantic import ValidationError

from .errors import ComponentError, DataError, RunError, TumorboardError
from .specproblems import options_message
from .state import load_state, save_state

PIPELINE_FORMAT = 1


@dataclass
class Pipeline:
    """Modalities (by spec name), a fusion and a model, fitted together on the same patients."""

    modalities: list[tuple[str, Modality]]
    fusion: Fusion
    model: Model
    on_stage: Callable[[str], None] = field(default=lambda stage: None, repr=False)
    """Called with a short description as each stage starts (the engine's progress)."""
    calibration: Calibration | None = None
    """Binary probability calibration of the model (``[model] calibration``); fitted as ``calibrator_``."""

    def clone(self) -> Pipeline:
        return Pipeline(
            [(n, m.clone()) for n, m in self.modalities], self.fusion.clone(), self.model.clone(), self.on_stage,
            self.calibration,
        )

    def _call(self, what: str, component: Component, method: str | Callable, *args):
        """``component.method(*args)`` (or ``method(*args)`` for work done on the component's behalf),
        with any failure named after the component and the step."""
        step = method if isinstance(method, str) else method.__name__
        try:
            return (getattr(component, method) if isinstance(method, str) else method)(*args)
        except (KeyboardInterrupt, MemoryError):
            raise
        except TumorboardError as err:
            raise type(err)(f"{what} ({component.name}): {err}") from err
        except Exception as err:
            raise RunError(f"{what} ({component.name}) failed in {step}(): {type(err).__name__}: {err}") from err

    def blocks(self, ids: Sequence[str], y: Target | None = None) -> list[FeatureBlock]:
        """Each modality's block for ``ids``; fits the modality first when ``y`` is given.

        Blocks are kept per list of ids (a fold's training and test patients),
        so an ablation can refit fusion and model on some modalities without
        refitting or re-transforming any modality.
        """
        key = tuple(str(i) for i in ids)
        cache = self.__dict__.setdefault("_blocks", {})
        names = {n for n, _ in self.modalities}
        if y is None and key in cache:
            return [b for b in cache[key] if b.modality in names]
        if y is None:
            # some of the patients of a list already transformed (predict drops those without data):
            # take their rows instead of transforming again, a row depends on its own patient only
            for cached_ids, cached in cache.items():
                row = {pid: k for k, pid in enumerate(cached_ids)}
                if all(pid in row for pid in key):
                    return [b.take([row[pid] for pid in key]) for b in cached if b.modality in names]
        out = []
        for name, modality in self.modalities:
            what = f"modality {name!r}"
            self.on_stage(f"{'fitting' if y is not None else 'transforming'} {what}")
            if y is not None:
                self._call(what, modality, "fit", list(ids), y)
            block = self._call(what, modality, "transform", list(ids))
            out.append(check_block(block, ids, what, modality.name, rename=name))
        cache[key] = out
        return out

    def ablated(self, names: Sequence[str]) -> Pipeline:
        """Some of this pipeline's modalities, already fitted (their blocks shared), with unfitted clones
        of the fusion and the model: ``fit(ids, y, refit_modalities=False)`` fits only those two."""
        keep = set(names)
        sub = Pipeline([(n, m) for n, m in self.modalities if n in keep], self.fusion.clone(), self.model.clone(),
                       self.on_stage, self.calibration)
        sub._blocks = {ids: [b for b in blocks if b.modality in keep] for ids, blocks in self.__dict__.get("_blocks", {}).items()}
        return sub

    def fit(self, ids: Sequence[str], y: Target, refit_modalities: bool = True) -> Pipeline:
        blocks = self.blocks(ids, y if refit_modalities else None)
        self.on_stage(f"fitting fusion ({self.fusion.name})")
        X = check_block(self._call("fusion", self.fusion, "fit_transform", blocks, y), ids, "fusion", self.fusion.name)
        # kept so features() of the same patients (explainers, therapy learners) is not recomputed
        self._fitted_on = (tuple(str(i) for i in ids), X)
        self.on_stage(f"fitting model ({self.model.name})")
        self.calibrator_ = None
        if self.calibration is not None:
            # before the model's own fit: the inner folds fit clones of the unfitted model
            self.on_stage(f"calibrating {self.model.name} ({self.calibration.method}, "
                          f"{self.calibration.folds} inner folds)")
            p = self._call("model", self.model, cross_fitted, self.model, X, y, self.calibration.folds, self.model.seed)
            self.calibrator_ = fit_calibrator(self.calibration.method, p, y.values)
        self._call("model", self.model, "fit", X, y)
        return self

    def features(self, ids: Sequence[str]) -> FeatureBlock:
        """The fused block for ``ids`` (the training patients' block is reused, not recomputed)."""
        fitted = getattr(self, "_fitted_on", None)
        if fitted is not None and fitted[0] == tuple(str(i) for i in ids):
            return fitted[1]
        blocks = self.blocks(ids)
        return check_block(self._call("fusion", self.fusion, "transform", blocks), ids, "fusion", self.fusion.name)

    def predict(self, ids: Sequence[str], task: str, n_classes: int = 0) -> np.ndarray:
        X = self.features(ids)
        return self.predict_features(X, task, n_classes)

    def predict_features(self, X: FeatureBlock, task: str, n_classes: int = 0) -> np.ndarray:
        pred = np.asarray(self._call("model", self.model, "predict", X), dtype=np.float64)
        expected = (len(X.ids), n_classes) if task == "multiclass" else (len(X.ids),)
        if pred.shape != expected:
            raise ComponentError(
                f"model ({self.model.name}): predict() returned shape {pred.shape}; expected {expected} "
                f"for a {task} task"
            )
        if not np.isfinite(pred).all():
            raise ComponentError(
                f"model ({self.model.name}): predict() returned {int((~np.isfinite(pred)).sum())} "
                "non-finite value(s); a model must predict for every patient it is given"
            )
        calibrator = getattr(self, "calibrator_", None)
        if calibrator is not None and task == "binary":
            pred = apply_calibrator(calibrator, pred)
        return pred

    # --- on disk ------------------------------------------------------------

    def save(self, folder: Path, raw_options: dict[str, dict], meta: dict | None = None,
             distributions: dict[str, str | None] | None = None) -> None:
        """Write manifest.json plus one state file per component into ``folder``.

        ``raw_options`` holds each component's options as the spec wrote them
        (keys ``modality:NAME``, ``fusion``, ``model``) so that ``predict`` can
        re-resolve relative paths against new data.
        """
        folder.mkdir(parents=True, exist_ok=True)
        entries = []
        roles = [("modality", name, m) for name, m in self.modalities]
        roles += [("fusion", "fusion", self.fusion), ("model", "model", self.model)]
        for i, (role, name, component) in enumerate(roles):
            stem = f"{i:02d}-{role}-{name}"
            save_state(component.get_state(), folder, stem, owner=f"{role} {name!r} ({component.name})")
            entries.append({
                "role": role,
                "name": name,
                "plugin": component.name,
                "distribution": (distributions or {}).get(f"modality:{name}" if role == "modality" else role),
                "options": raw_options.get(f"modality:{name}" if role == "modality" else role, {}),
                "seed": component.seed,
                "state": stem,
            })
        manifest = {"format": PIPELINE_FORMAT, **(meta or {}), "components": entries}
        if getattr(self, "calibrator_", None) is not None:
            manifest["calibration"] = self.calibrator_
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")

    @classmethod
    def load(
        cls, folder: Path, registry, base_dir: Path, modality_options: dict[str, dict] | None = None,
        data_root: Path | None = None,
    ) -> Pipeline:
        """Rebuild a saved pipeline; options resolve their paths against ``base_dir``.

        ``modality_options`` replaces the saved options of the named modalities
        (new data described by another spec); learned state is kept.
        ``data_root`` confines every input to one folder (``predict --data FOLDER``).
        """
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise RunError(f"{folder / 'manifest.json'}: cannot read the saved pipeline ({err}); run the spec again") from err
        if not isinstance(manifest, dict) or not isinstance(manifest.get("components"), list):
            raise RunError(f"{folder / 'manifest.json'}: not a saved pipeline (no component list); run the spec again")
        if manifest.get("format") != PIPELINE_FORMAT:
            raise RunError(f"{folder}: pipeline format {manifest.get('format')!r} is not supported by this tumorboard")
        modalities = []
        fusion = model = None
        for entry in manifest["components"]:
            if not isinstance(entry, dict) or not {"role", "name", "plugin", "options", "seed", "state"} <= set(entry):
                raise RunError(f"{folder / 'manifest.json'}: a component entry is malformed; run the spec again")
            family = entry["role"]
            if family not in ("modality", "fusion", "model"):
                raise RunError(f"{folder / 'manifest.json'}: unknown component role {family!r}; run the spec again")
            component_cls = registry.get(family, entry["plugin"], entry.get("distribution"))
            if component_cls is None:
                raise RunError(
                    f"{folder}: the pipeline needs {family} {entry['plugin']!r}, which is not installed "
                    "(see `tumorboard plugins`; a local plugin file loads with --plugin PATH)"
                )
            options = entry["options"]
            if family == "modality" and modality_options and entry["name"] in modality_options:
                options = modality_options[entry["name"]]
            try:
                component = component_cls.from_options(options, base_dir=base_dir, data_root=data_root, registry=registry,
                                                       seed=int(entry["seed"]))
            except ValidationError as err:
                raise DataError(f"{family} {entry['name']!r} ({entry['plugin']}): {options_message(err)}") from None
            stem = str(entry.get("state", ""))
            if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
                raise RunError(f"{folder / 'manifest.json'}: state file name {stem!r} is not a plain file name; "
                               "the pipeline was tampered with: run the spec again")
            what = f"{folder / entry['state']}.json/.npz ({family} {entry['name']!r})"
            try:
                component.set_state(load_state(folder, entry["state"]))
            except TumorboardError as err:
                raise RunError(f"{what}: {err}") from err
            except Exception as err:  # a corrupt or tampered state file: name it, never a traceback
                raise RunError(f"{what}: cannot load the saved state ({type(err).__name__}: {err}); "
                               "the file is corrupt or was changed: run the spec again") from err
            if family == "modality":
                modalities.append((entry["name"], component))
            elif family == "fusion":
                fusion = component
            else:
                model = component
        pipeline = cls(modalities, fusion, model)  # type: ignore[arg-type]
        pipeline.calibrator_ = checked_calibrator(manifest.get("calibration"), str(folder / "manifest.json"))
        return pipeline


def predict_for_scoring(fitted: Pipeline, ids: list[str], y, n_classes: int, context) -> np.ndarray:
    """A fitted pipeline's predictions for ``ids``, as the metrics take them; for survival models with curves, (n, 1 + T): risk, then S(t) on the grid."""
    if y.kind == "survival" and context is not None and fitted.model.provides_survival_curves:
        X = fitted.features(ids)
        risk = fitted.predict_features(X, y.kind)
        try:
            survival = np.asarray(fitted.model.predict_survival(X, np.asarray(context.times)), dtype=np.float64)
        except NotImplementedError:
            return risk
        return np.column_stack([risk, survival])
    return fitted.predict(ids, y.kind, n_classes)


def check_block(block: object, ids: Sequence[str], what: str, plugin: str, rename: str | None = None) -> FeatureBlock:
    """The engine's checks on every block a component returns."""
    if not isinstance(block, FeatureBlock):
        raise ComponentError(f"{what} ({plugin}): returned {type(block).__name__}, expected a FeatureBlock")
    if len(block.ids) != len(ids) or list(block.ids) != [str(i) for i in ids]:
        raise ComponentError(
            f"{what} ({plugin}): returned {len(block.ids)} rows for {len(ids)} ids; return one row per id, "
            "in the order given, and mark patients without data as absent in the presence mask"
        )
    present = block.values[block.presence]
    if np.isinf(present).any():
        col = int(np.flatnonzero(np.isinf(present).any(axis=0))[0])
        raise ComponentError(
            f"{what} ({plugin}): feature {block.feature_names[col]!r} holds inf; "
            "use NaN for a missing value or fix the input"
        )
    if rename is not None and block.modality != rename:
        block = FeatureBlock(block.ids, block.values, block.feature_names, block.presence, rename, block.sources)
    return block
