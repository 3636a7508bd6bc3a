"""The four hooks a tumorboard plugin implements, documented for their implementers.

A plugin is a module (usually a package's ``__init__``) registered under the
``tumorboard`` entry-point group. It implements any of these hooks with
``@hookimpl`` from ``tumorboard.api``; each hook receives a ``register``
callable that the plugin calls once per component class it provides.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from .components import Explainer, Fusion, Modality, Model

PROJECT = "tumorboard"
PLUGIN_API_VERSION = "1"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_modalities(register: Callable[[type[Modality]], None]) -> None:
    """Hand tumorboard the modality components this plugin provides.

    Called once per process, while plugins load, before any run spec is read.

    :param register: call it once per class, ``register(TabularFile)``.
        ``TabularFile.name`` (``"tabular.file"``) is what a spec writes after
        ``plugin =`` in a ``[[modality]]`` table. The class must subclass
        ``tumorboard.api.Modality``.

    Keep this cheap: import heavy libraries (SimpleITK, JAX) inside the
    component's methods, so ``tumorboard plugins`` answers instantly.

    .. versionadded:: 0.1
    """


@hookspec
def register_models(register: Callable[[type[Model]], None]) -> None:
    """Hand tumorboard the predictive models this plugin provides.

    Called once per process, while plugins load, before any run spec is read.

    :param register: call it once per class, ``register(LogisticModel)``.
        The class must subclass ``tumorboard.api.Model``; its ``tasks``
        attribute lists the run tasks it supports (binary, multiclass,
        regression, survival), and a spec asking for another task is rejected
        before anything runs.

    .. versionadded:: 0.1
    """


@hookspec
def register_fusions(register: Callable[[type[Fusion]], None]) -> None:
    """Hand tumorboard the fusion strategies this plugin provides.

    Called once per process, while plugins load, before any run spec is read.

    :param register: call it once per class, ``register(ConcatFusion)``.
        The class must subclass ``tumorboard.api.Fusion``. A fusion receives
        every modality's ``FeatureBlock`` (with its presence mask) and returns
        one block for the model.

    .. versionadded:: 0.1
    """


@hookspec
def register_explainers(register: Callable[[type[Explainer]], None]) -> None:
    """Hand tumorboard the explainers this plugin provides.

    Called once per process, while plugins load, before any run spec is read.

    :param register: call it once per class, ``register(PermutationExplainer)``.
        The class must subclass ``tumorboard.api.Explainer``. Explainers run
        on the pipeline refitted on all patients, after cross-validation.

    .. versionadded:: 0.1
    """


HOOKS: dict[str, str] = {
    "register_modalities": "modality",
    "register_models": "model",
    "register_fusions": "fusion",
    "register_explainers": "explainer",
}
"""Each hook and the component family it registers."""


CallableRegister = Callable[[type], None]
