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
from ._engine.components import component_class
from ._engine.estimators import dump_estimator, load_estimator
from ._engine.execution import parallel_map
from ._engine.errors import ComponentError, DataError, TumorboardError, TumorboardWarning
from ._engine.hookspecs import PLUGIN_API_VERSION, hookimpl
from ._engine.analyses import Analysis, AnalysisContext, SectionChecker
from ._engine.commands import CommandKit
from ._engine.metrics import DEFAULT_METRICS, GREATER_IS_BETTER, METRICS, harrell_c, score
from ._engine.reporters import Reporter
from ._engine.spec import ComponentSpec
from ._engine.rundir import atomic_write_text, safe_output_file, staged_directory
from ._engine.runfiles import RunFiles, patient_reference
from ._engine.preprocess import NumericStats, apply_numeric, fit_numeric
from ._engine.tables import check_unique_ids, read_table, row_label
from ._engine.training import TrainSettings, train_settings, training_options

__all__ = [
    "DEFAULT_METRICS",
    "GREATER_IS_BETTER",
    "METRICS",
    "PLUGIN_API_VERSION",
    "TASKS",
    "Analysis",
    "AnalysisContext",
    "Attribution",
    "ComponentSpec",
    "Reporter",
    "SectionChecker",
    "RunFiles",
    "CommandKit",
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
    "atomic_write_text",
    "check_unique_ids",
    "component_class",
    "dump_estimator",
    "fit_numeric",
    "harrell_c",
    "load_estimator",
    "hookimpl",
    "parallel_map",
    "patient_reference",
    "read_table",
    "row_label",
    "safe_output_file",
    "staged_directory",
    "TrainSettings",
    "train_settings",
    "training_options",
    "score",
]
