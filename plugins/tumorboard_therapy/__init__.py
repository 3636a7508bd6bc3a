"""Therapy selection, as a plugin: the ``[treatment]`` spec section (an analysis on the run's folds:
each patient's predicted outcome under each candidate treatment, with intervals, policy value and matched
biomarker evidence) and ``tumorboard recommend RUN_DIR --patient ID``. docs/therapy.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tumorboard.api import CommandKit, TumorboardError, hookimpl

from .analysis import TreatmentEffects

__all__ = ["TreatmentEffects"]


@hookimpl
def register_analyses(register):
    """``[treatment]``."""
    register(TreatmentEffects)


@hookimpl
def register_commands(app: typer.Typer, kit: CommandKit) -> None:
    """``tumorboard recommend``: one patient's therapies ranked by predicted benefit."""

    @app.command()
    def recommend(
        run_dir: Annotated[Path, typer.Argument(help="A finished run with a [treatment] section.")],
        patient: Annotated[str, typer.Option(help="Patient id.")],
    ) -> None:
        """Therapies for one patient ranked by predicted benefit, with intervals, evidence and drivers."""
        from .recommend import recommendation

        try:
            rec = recommendation(run_dir, patient)
        except TumorboardError as error:
            kit.fail(error)
        table = Table(title=f"patient {rec.patient_id}: predicted response by therapy (95% interval over bootstrap refits)")
        for col in ("therapy", "P(response)", "interval", f"benefit vs {rec.reference}", "interval "):
            table.add_column(col, justify="left" if col == "therapy" else "right")
        for r in rec.ranked.iter_rows(named=True):
            mark = " (recommended)" if r["therapy"] == rec.recommended else ""
            effect = "reference" if r["effect_low"] is None else f"{r['effect']:+.3f}"
            effect_ci = "" if r["effect_low"] is None else f"{r['effect_low']:+.3f} to {r['effect_high']:+.3f}"
            table.add_row(r["therapy"] + mark, f"{r['outcome']:.3f}", f"{r['low']:.3f}-{r['high']:.3f}", effect, effect_ci)
        kit.out.print(table)
        if rec.evidence.height:
            ev = Table(title="matched biomarker evidence")
            for col in ("gene", "alteration", "therapy", "arm", "direction", "level", "source"):
                ev.add_column(col, overflow="fold")
            for r in rec.evidence.iter_rows(named=True):
                ev.add_row(r["gene"], r["alteration"], r["therapy"], r["arm"] or "-", r["direction"], r["evidence_level"], r["source"])
            kit.out.print(ev)
        else:
            kit.out.print("no biomarker evidence rule matches this patient (or the run had no evidence table)")
        if rec.drivers.height:
            dr = Table(title="features that drive the predicted difference (replace with the cohort median)")
            for col in ("candidate", "feature", "value (scaled)", "effect change"):
                dr.add_column(col)
            for r in rec.drivers.iter_rows(named=True):
                dr.add_row(r["candidate"], r["feature"], f"{r['value']:.2f}", f"{r['contribution']:+.3f}")
            kit.out.print(dr)
