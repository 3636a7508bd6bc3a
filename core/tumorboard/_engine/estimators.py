"""Saving fitted scikit-learn / scikit-survival estimators without pickle, and finding components.

Estimators are stored with skops.io, whose format rebuilds only types that the
loader trusts. Beyond skops' own defaults we trust an exact list of the types
our built-in models are made of, never a whole package: a skops tree may name
any callable, and every package holds some that run code (numpy's testing
helpers execute a string). A saved file naming anything else is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ComponentError

# Exactly the types (beyond skops' defaults) that the built-in models' estimators
# hold: histogram gradient boosting (with calibration), coxnet, random survival
# forest, gradient-boosted Cox. tests/test_security.py saves every one of them
# and checks this list covers it, so a new estimator fails loudly, not silently.
TRUSTED_TYPES = frozenset({
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.tree._tree.Tree",
    "sksurv.ensemble.boosting.GradientBoostingSurvivalAnalysis",
    "sksurv.ensemble.forest.RandomSurvivalForest",
    "sksurv.ensemble.survival_loss.CoxPH",
    "sksurv.functions.StepFunction",
    "sksurv.linear_model.coxnet.CoxnetSurvivalAnalysis",
    "sksurv.linear_model.coxph.BreslowEstimator",
    "sksurv.tree.tree.SurvivalTree",
})


def dump_estimator(estimator: Any) -> np.ndarray:
    """A fitted estimator as a uint8 array (a skops archive), ready for a component's state."""
    import skops.io as sio

    return np.frombuffer(sio.dumps(estimator), dtype=np.uint8).copy()


def load_estimator(blob: np.ndarray, owner: str = "estimator") -> Any:
    """Rebuild what ``dump_estimator`` stored; refuse any type outside ``TRUSTED_TYPES``."""
    import skops.io as sio

    data = np.asarray(blob, dtype=np.uint8).tobytes()
    try:
        types = sio.get_untrusted_types(data=data)
    except Exception as err:  # not a skops archive at all
        raise ComponentError(f"{owner}: saved estimator is not readable ({type(err).__name__}: {err})") from err
    foreign = sorted(t for t in types if t not in TRUSTED_TYPES)
    if foreign:
        raise ComponentError(
            f"{owner}: saved estimator names types tumorboard does not trust: {', '.join(foreign)}; refusing to load "
            "it (the file was changed, or written by a model tumorboard does not ship)"
        )
    return sio.loads(data, trusted=sorted(types))


