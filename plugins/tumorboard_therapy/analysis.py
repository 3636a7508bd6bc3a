"""Therapy selection: predicted benefit of each candidate treatment per patient, and its evaluation.

Runs inside the engine when a spec has a ``[treatment]`` section, on the same
folds: each fold's fitted modalities and fusion give the features, and the
meta-learner, the propensity model and the effect model are fitted on that
fold's training patients only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tumorboard.api import (
    Analysis,
    AnalysisContext,
    DataError,
    FeatureBlock,
    SectionChecker,
    Target,
    read_table,
    row_label,
    score,
)

from .evidence import match, read_rules
from .learners import LEARNERS, ArmData, check_arms
from .uplift import best_arm, evaluate

from .sections import TreatmentSection

__all__ = ["TreatmentEffects"]


class TreatmentEffects(Analysis):
    """``[treatment]``: each patient's predicted outcome under each candidate treatment, on the run's folds.

    Collects out-of-fold effect predictions fold by fold (meta-learner,
    propensity and effect models fitted on each fold's training patients
    only), then scores them, refits on everyone with bagged intervals and
    matches biomarker evidence.
    """

    section = "treatment"
    Options = TreatmentSection
    tasks = frozenset({"binary"})

    @classmethod
    def check(cls, options: TreatmentSection, checker: SectionChecker) -> None:
        checker.model(options.effect_model, ("effect_model",), "regression")
        checker.model(options.propensity_model, ("propensity_model",), "binary")
        if options.evidence is not None:
            for name in ("rules", "mutation", "cnv"):
                checker.file(getattr(options.evidence, name), ("evidence", name))

    def __init__(self, options: TreatmentSection, context: AnalysisContext):
        super().__init__(options, context)
        section, cohort, outcomes_path, id_column = options, context.cohort, context.outcomes, context.id_column
        self.s, self.seed, self.base_dir = section, context.seed, context.base_dir
        if cohort.target.kind != "binary":
            raise DataError(f"[treatment] estimates effects on a binary outcome; this run's task is {cohort.target.kind!r}")
        frame = read_table(outcomes_path, id_column)
        if section.column not in frame.columns:
            raise DataError(f"{outcomes_path}: no treatment column {section.column!r}; columns are {', '.join(frame.columns)}")
        column = frame[section.column].cast(pl.String)
        if column.null_count():
            r = int(column.is_null().arg_max())  # type: ignore[arg-type]
            raise DataError(f"{outcomes_path}: {row_label(outcomes_path, r)} has no value in treatment column "
                            f"{section.column!r} ({column.null_count()} missing); fill it in or drop those patients")
        present = sorted(set(column.to_list()))
        absent = [c for c in section.candidates if c not in present]
        if absent:
            raise DataError(f"treatment.candidates names {absent!r}, absent from column {section.column!r} of "
                            f"{outcomes_path}; treatments present: {', '.join(present)}")
        reference = section.reference or section.candidates[0]
        self.arms = [reference] + [c for c in section.candidates if c != reference]
        code = {a: k for k, a in enumerate(self.arms)}
        self.arm = np.array([code.get(v, -1) for v in column.to_list()])
        others = int((self.arm < 0).sum())
        if others:
            self.context.warn(f"{others} patient(s) received a treatment outside treatment.candidates and are left out of the "
                 "therapy analysis")
        self.cohort = cohort
        self.outcome_model = context.model
        n, k = len(cohort), len(self.arms)
        self.predicted = np.full((n, k), np.nan)
        self.effect = np.full((n, k), np.nan)
        self.propensity = np.full((n, k), np.nan)

    def _learner(self, propensity):
        cls = LEARNERS[self.s.learner]
        args = (self.cohort.target.kind, self.arms, 0, self.outcome_model.clone,
                lambda: self.context.build_model(self.s.effect_model), propensity)
        if self.s.learner == "dr":
            return cls(*args, seed=self.seed)
        return cls(*args)

    def _fit(self, X: FeatureBlock, arm: np.ndarray, y: Target, where: str):
        """Fit propensity and learner on training patients (after optional trimming)."""
        check_arms(arm, self.arms, self.s.min_arm_size, where)
        target = (Target("binary", arm, None, tuple(self.arms[:2])) if len(self.arms) == 2
                  else Target("multiclass", arm, None, tuple(self.arms)))
        prop_model = self.context.build_model(self.s.propensity_model).fit(X, target)

        def propensity(block: FeatureBlock) -> np.ndarray:
            p = np.asarray(prop_model.predict(block), dtype=np.float64)
            return np.column_stack([1 - p, p]) if p.ndim == 1 else p

        keep = np.arange(len(arm))
        if self.s.trim:
            e = propensity(X)[np.arange(len(arm)), arm]
            keep = np.flatnonzero((e >= self.s.trim[0]) & (e <= self.s.trim[1]))
            if len(keep) < len(arm):
                self.context.warn(f"{where}: trimming left out {len(arm) - len(keep)} training patient(s) with propensity outside "
                     f"{list(self.s.trim)}")
            check_arms(arm[keep], self.arms, self.s.min_arm_size, where)
        learner = self._learner(propensity).fit(ArmData(X.take(keep), arm[keep], y.take(keep)))
        return learner, propensity

    def fold(self, features, train: np.ndarray, test: np.ndarray, label: str) -> None:
        """One fold: fit on its training patients, predict its test patients. ``features(ids)`` gives X."""
        # all training patients, as the pipeline was fitted on them (its block is reused), then
        # those who received a candidate treatment
        X_train = features([self.cohort.ids[i] for i in train]).take(np.flatnonzero(self.arm[train] >= 0))
        train = train[self.arm[train] >= 0]
        test = test[self.arm[test] >= 0]
        learner, propensity = self._fit(X_train, self.arm[train], self.cohort.target.take(train), label)
        X_test = features([self.cohort.ids[i] for i in test])
        self.predicted[test], self.effect[test] = learner.predict_both(X_test)
        self.propensity[test] = propensity(X_test)

    def finish(self, features, folder: Path, ids: list[str]) -> dict[str, Any]:
        """Score the out-of-fold effects, refit on everyone with bagged intervals, match evidence, write files."""
        scored = np.flatnonzero(np.isfinite(self.predicted).all(axis=1))
        y = self.cohort.target.values.astype(float)
        # scored by the effects (reference column 0): the policy and the rankings follow them
        result = evaluate(y[scored], self.arm[scored], self.effect[scored], self.propensity[scored], self.arms, 0,
                          bootstrap=self.context.bootstrap, confidence=self.context.confidence, seed=self.seed)
        result["learner"] = self.s.learner
        result["overlap"] = self._overlap(scored)
        self._write_effects(folder, scored)
        everyone = np.flatnonzero(self.arm >= 0)
        X = features(ids).take(everyone)  # the refit pipeline's own block, reused
        result["refit"] = self._refit(folder, X, everyone, self.context.confidence)
        if self.s.evidence is not None:
            result["evidence"] = self._evidence(folder, ids)
        return result

    def _overlap(self, scored: np.ndarray) -> dict[str, Any]:
        e = self.propensity[scored]
        arm = self.arm[scored]
        extreme = float(np.mean((e < 0.05) | (e > 0.95)))
        out: dict[str, Any] = {"share_extreme_propensity": round(extreme, 4),
                               "min": round(float(e.min()), 4), "max": round(float(e.max()), 4)}
        if len(self.arms) == 2:
            out["propensity_auroc"] = round(score("binary", "auroc", Target("binary", (arm == 1).astype(int), None, ("0", "1")), e[:, 1]), 4)
        predictable = out.get("propensity_auroc", 0.5) > self.s.overlap_auroc or extreme > 0.10
        out["warning"] = bool(predictable)
        if predictable:
            self.context.warn(f"treatment assignment is predictable from the covariates (out-of-fold propensity AUROC "
                 f"{out.get('propensity_auroc', float('nan')):.3f}, {extreme:.1%} of patients with propensity outside "
                 f"[0.05, 0.95], range {out['min']}-{out['max']}): the data look non-randomised; effects rest on "
                 "the propensity model — prefer learner = \"dr\" and consider treatment.trim")
        return out

    def _write_effects(self, folder: Path, scored: np.ndarray) -> None:
        data: dict[str, Any] = {"patient_id": [self.cohort.ids[i] for i in scored],
                                "treatment": [self.arms[a] for a in self.arm[scored]]}
        for k, name in enumerate(self.arms):
            data[f"outcome_{name}"] = self.predicted[scored, k]
            data[f"propensity_{name}"] = self.propensity[scored, k]
            if k:
                data[f"effect_{name}"] = self.effect[scored, k]
        data["recommended"] = [self.arms[a] for a in best_arm(self.effect[scored])]
        pl.DataFrame(data).write_parquet(folder / "effects.parquet")

    def _refit(self, folder: Path, X: FeatureBlock, rows: np.ndarray, confidence: float) -> dict[str, Any]:
        y = self.cohort.target.take(rows)
        arm = self.arm[rows]
        learner, _ = self._fit(X, arm, y, "refit on all patients")
        point, point_effect = learner.predict_both(X)
        rng = np.random.default_rng(self.seed)
        bags = []
        for b in range(self.s.bags):
            # bootstrap within each arm keeps every arm represented
            sample = np.concatenate([rng.choice(np.flatnonzero(arm == k), int((arm == k).sum())) for k in range(len(self.arms))])
            bagged, _ = self._fit(X.take(sample), arm[sample], y.take(sample), f"bag {b + 1}")
            bags.append(np.stack(bagged.predict_both(X)))
        alpha = (1 - confidence) / 2
        stack = np.stack(bags) if bags else np.stack([point, point_effect])[None]  # (bags, 2, patients, arms)
        low, high = np.quantile(stack, alpha, axis=0), np.quantile(stack, 1 - alpha, axis=0)
        data: dict[str, Any] = {"patient_id": [self.cohort.ids[i] for i in rows]}
        for k, name in enumerate(self.arms):
            data[f"outcome_{name}"], data[f"outcome_{name}_low"], data[f"outcome_{name}_high"] = point[:, k], low[0, :, k], high[0, :, k]
            if k:
                data[f"effect_{name}"] = point_effect[:, k]
                data[f"effect_{name}_low"], data[f"effect_{name}_high"] = low[1, :, k], high[1, :, k]
        data["recommended"] = [self.arms[a] for a in best_arm(point_effect)]
        pl.DataFrame(data).write_parquet(folder / "recommendations.parquet")
        self._drivers(folder, learner, X, point_effect)
        return {"patients": int(len(rows)), "bags": self.s.bags}

    def _drivers(self, folder: Path, learner, X: FeatureBlock, effect: np.ndarray, top: int = 8) -> None:
        """Per patient, the features whose replacement by the cohort median moves the predicted effect most."""
        medians = np.nanmedian(X.values, axis=0)
        base = effect[:, 1:]
        deltas = np.zeros((len(X.ids), X.values.shape[1], len(self.arms) - 1))
        for j in range(X.values.shape[1]):
            values = X.values.copy()
            values[:, j] = medians[j]
            moved = learner.predict_both(FeatureBlock(X.ids, values, X.feature_names, X.presence, X.modality))[1]
            deltas[:, j] = base - moved[:, 1:]
        rows = []
        for k, name in enumerate(self.arms[1:]):
            order = np.argsort(-np.abs(deltas[:, :, k]), axis=1)[:, :top]
            for i, pid in enumerate(X.ids):
                for j in order[i]:
                    if deltas[i, j, k] != 0:
                        rows.append({"patient_id": pid, "candidate": name, "feature": X.feature_names[j],
                                     "value": float(X.values[i, j]), "contribution": float(deltas[i, j, k])})
        pl.DataFrame(rows, schema={"patient_id": pl.String, "candidate": pl.String, "feature": pl.String,
                                   "value": pl.Float64, "contribution": pl.Float64}).write_parquet(folder / "drivers.parquet")

    def _evidence(self, folder: Path, ids: list[str]) -> dict[str, Any]:
        ev = self.s.evidence
        resolve = self.context.resolve
        rules = read_rules(resolve(ev.rules))
        mutation = read_table(resolve(ev.mutation), ev.id) if ev.mutation else None
        cnv = read_table(resolve(ev.cnv), ev.id) if ev.cnv else None
        arms = {drug.lower(): arm for arm, drugs in ev.therapy_names.items() for drug in drugs}
        arms.update({a.lower(): a for a in self.arms})
        matches, unknown = match(rules, ids, mutation, cnv, ev.id, arms, ev.amplification, ev.deletion)
        if unknown:
            self.context.warn(f"evidence rules name gene(s) found in no omics matrix, so they never match: "
                              f"{', '.join(unknown)}")
        matches.write_parquet(folder / "evidence.parquet")
        return {"rules": rules.height, "matches": matches.height, "patients_with_matches": matches["patient_id"].n_unique(),
                "unknown_genes": unknown}
