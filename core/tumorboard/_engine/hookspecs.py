"""The hooks a tumorboard plugin implements, documented for their implementers.

A plugin is a module (usually a package's ``__init__``) registered under the
``tumorboard`` entry-point group. It implements any of these hooks with
``@hookimpl`` from ``tumorboard.api``. The four component hooks receive a
``register`` callable that the plugin calls once per component class it
provides; ``register_commands`` adds commands to the ``tumorboard`` program
(the synthetic cohort's ``synth`` and ``demo`` are such a plugin).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

from .components import Explainer, Fusion, Modality, Model

if TYPE_CHECKING:
    import typer

    from .commands import CommandKit
    from .analyses import Analysis
    from .reporters import Reporter

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


@hookspec
def register_commands(app: typer.Typer, kit: CommandKit) -> None:
    """Add commands to the ``tumorboard`` program.

    Called once when the command starts, before its arguments are parsed, so
    ``tumorboard --help`` lists the plugin's commands with the built-in ones.

    :param app: the program's ``typer.Typer``: decorate functions with
        ``@app.command()`` (or ``app.add_typer`` a group of them). A command
        name that is already taken is refused with the plugin's name.
    :param kit: what a command needs from tumorboard without importing its
        internals (:class:`tumorboard.api.CommandKit`): the consoles, ``fail``
        for a clean error exit, ``run_spec`` to run a spec with the usual
        progress and warnings, ``metrics_table`` and ``verify_folder``.

    Import heavy libraries inside the command functions: every tumorboard
    command calls this hook.

    .. versionadded:: 0.2
    """


HOOKS: dict[str, str] = {
    "register_modalities": "modality",
    "register_models": "model",
    "register_fusions": "fusion",
    "register_explainers": "explainer",
}
"""Each component hook and the component family it registers."""

@hookspec
def register_reporters(register: Callable[[type[Reporter]], None]) -> None:
    """Hand tumorboard the reporters this plugin provides: pages a run writes about itself.

    Called once per process, while plugins load.

    :param register: call it once per class, ``register(CohortReport)``. The
        class subclasses ``tumorboard.api.Reporter``, names itself
        ``report.variant`` and the file it renders (``output``, e.g.
        ``report.html``), and implements ``render(run)``, which reads the run
        through ``tumorboard.api.RunFiles`` and returns the page. tumorboard
        writes it into the run directory after the run's results are saved, and
        ``tumorboard report RUN_DIR`` redraws it; a reporter that fails costs a
        warning, never the run.

    .. versionadded:: 0.2
    """


@hookspec
def register_analyses(register: Callable[[type[Analysis]], None]) -> None:
    """Hand tumorboard the analyses this plugin provides: work on the run's folds, configured by a spec
    section the plugin owns.

    Called once per process, while plugins load, before any run spec is read.

    :param register: call it once per class, ``register(TreatmentEffects)``.
        The class subclasses ``tumorboard.api.Analysis``, names the top-level
        table it owns (``section = "treatment"``) and validates it with its
        ``Options``; ``check`` adds problems a model cannot see (a model the
        section names, a file). The engine calls ``fold`` with each outer
        fold's fitted features (training patients only) and ``finish`` with
        the refit's; what ``finish`` returns is saved in metrics.json under
        the section's name, its files in ``RUN_DIR/<section>/``. Therapy
        selection's ``[treatment]`` is such a plugin (``tumorboard_therapy``).

    .. versionadded:: 0.2
    """


FEATURE_HOOKS: tuple[str, ...] = ("register_commands", "register_reporters", "register_analyses")
"""Hooks that add a feature rather than components (a plugin may implement only these)."""


CallableRegister = Callable[[type], None]
