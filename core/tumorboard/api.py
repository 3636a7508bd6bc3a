"""Everything a plugin may import from tumorboard; nothing else is public to plugins.

An import-linter contract in CI keeps plugins from reaching into the engine,
the spec loader or the plugin registry.
"""

from ._engine.components import (
    Component,
    Explainer,
    Fusion,
    InputPath,
    Model,
    Modality,
    NoOptions,
    Options,
)
from ._engine.data import TASKS, Attribution, Cohort, FeatureBlock, Target, Task
from ._engine.estimators import component_class, dump_estimator, load_estimator
from ._engine.execution import parallel_map
from ._engine.errors import ComponentError, DataError, TumorboardError, TumorboardWarning
from ._engine.hookspecs import PLUGIN_API_VERSION, hookimpl
from ._engine.metrics import DEFAULT_METRICS, GREATER_IS_BETTER, METRICS, score
from ._engine.preprocess import NumericStats, apply_numeric, fit_numeric
from ._engine.tables import check_unique_ids, read_table, row_label
from ._engine.training import TrainSettings, train_settings, training_options

__all__ = [
    "DEFAULT_METRICS",
    "GREATER_IS_BETTER",
    "METRICS",
    "PLUGIN_API_VERSION",
    "TASKS",
    "Attribution",
    "Cohort",
    "Component",
    "ComponentError",
    "DataError",
    "Explainer",
    "FeatureBlock",
    "Fusion",
    "InputPath",
    "Modality",
    "Model",
    "NoOptions",
    "Options",
    "NumericStats",
    "Target",
    "Task",
    "TumorboardError",
    "TumorboardWarning",
    "apply_numeric",
    "check_unique_ids",
    "component_class",
    "dump_estimator",
    "fit_numeric",
    "load_estimator",
    "hookimpl",
    "parallel_map",
    "read_table",
    "row_label",
    "TrainSettings",
    "train_settings",
    "training_options",
    "score",
]

# JAX helpers for plugins that train networks, imported on first use so that
# `import tumorboard.api` does not import JAX
_NEURAL = ("cox_loss", "epoch_batches", "fit_adamw", "head_loss", "head_outputs", "head_score",
           "integrated_gradients", "params_from_bytes", "params_to_bytes", "split_validation")


def __getattr__(name: str):
    if name in _NEURAL:
        from ._engine import neural

        return getattr(neural, name)
    raise AttributeError(f"module 'tumorboard.api' has no attribute {name!r}")
