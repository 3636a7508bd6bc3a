"""The cohort report and the patient card, as a plugin: a reporter (``report.cohort`` writes
``report.html`` into every run) and the ``tumorboard explain`` command (one patient's card).

Needs matplotlib for the figures (``pip install "tumorboard[report]"``); without
it the reporter is listed as unavailable and runs finish without a report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tumorboard.api import CommandKit, TumorboardError, hookimpl

from .report import CohortReport
from .tripod import ModelCard, TripodReport

__all__ = ["CohortReport", "ModelCard", "TripodReport"]


@hookimpl
def register_reporters(register):
    """The cohort report, the TRIPOD+AI checklist and the model card."""
    register(CohortReport)
    register(TripodReport)
    register(ModelCard)


@hookimpl
def register_commands(app: typer.Typer, kit: CommandKit) -> None:
    """``tumorboard explain RUN_DIR --patient ID``: one patient's card."""

    @app.command()
    def explain(
        run_dir: Annotated[Path, typer.Argument(help="A run directory written by `tumorboard run`.")],
        patient: Annotated[str, typer.Option("--patient", help="The patient's id in the cohort's outcomes table.")],
        output: Annotated[Path | None, typer.Option("--out", help="Where to write the card (default RUN_DIR/cards/).")] = None,
        overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file (never a file of the run).")] = False,
    ) -> None:
        """Write one patient's card: prediction with interval, cohort position, top features, modalities, saliency."""
        try:
            from .card import patient_card

            path = patient_card(run_dir, patient, output, overwrite)
        except ModuleNotFoundError as error:
            kit.fail(TumorboardError(f"the patient card needs {error.name!r}: pip install \"tumorboard[report]\""))
        except TumorboardError as error:
            kit.fail(error)
        kit.out.print(f"patient card: {path}")
