"""``tumorboard synth`` and ``tumorboard demo``: the synthetic cohort's commands, added through
``register_commands`` exactly as a third-party plugin adds its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tumorboard.api import CommandKit, TumorboardError, hookimpl

from . import SynthOptions


def _synth(kit: CommandKit, folder: Path, options, overwrite: bool, quiet: bool) -> Path:
    from . import generate

    if quiet:
        return generate(folder, options, overwrite=overwrite)
    with Progress(TextColumn("[bold]generating cohort"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=kit.err) as bar:
        task = bar.add_task("patients", total=options.patients)
        return generate(folder, options, overwrite=overwrite,
                        progress=lambda done, total: bar.update(task, completed=done))


def _reusable_cohort(kit: CommandKit, cohort: Path, patients: int) -> None:
    """An existing DIR/cohort is reused only when it is a complete demo cohort of the same size."""
    try:
        kit.verify_folder(cohort, what="synthetic cohort")
        truth = json.loads((cohort / "ground_truth.json").read_text(encoding="utf-8"))
    except (TumorboardError, OSError, ValueError) as error:
        raise TumorboardError(f"{cohort} exists and is not a complete tumorboard synthetic cohort ({error}); nothing "
                              "was changed: choose another --dir, or move the folder away") from None
    if truth.get("patients") != patients or truth.get("seed") != SynthOptions().seed:
        raise TumorboardError(f"{cohort} holds a synthetic cohort of {truth.get('patients')} patients (seed "
                              f"{truth.get('seed')}), not the demo's {patients}; pass --fresh to generate it anew, "
                              "or choose another --dir")


@hookimpl
def register_commands(app: typer.Typer, kit: CommandKit) -> None:
    """Add ``synth`` (write a synthetic cohort) and ``demo`` (generate one and run the bundled spec)."""

    @app.command()
    def synth(
        out_dir: Annotated[Path, typer.Option("--out", help="Folder to create for the cohort.")],
        patients: Annotated[int, typer.Option(min=1, help="Number of patients.")] = 300,
        seed: Annotated[int, typer.Option(help="Seed; the same seed gives byte-identical files.")] = 0,
        images: Annotated[bool, typer.Option(help="Write CT volumes and masks (off for very large cohorts).")] = True,
        confounded: Annotated[bool, typer.Option(help="Assign treatment as observational data would (by EGFR and ECOG).")] = False,
        image_size: Annotated[str, typer.Option(help="Volume size x,y,z in voxels.")] = "64,64,32",
        rna_genes: Annotated[int, typer.Option(min=100, help="Genes in the RNA matrix.")] = 2000,
        ehr: Annotated[str, typer.Option(help="EHR formats, comma-separated: omop (always), meds, fhir.")] = "omop",
        slides: Annotated[bool, typer.Option(help="Write whole-slide tile embeddings (.h5 bags) with planted tiles.")] = False,
        overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """Write a synthetic multimodal cohort with planted ground truth (OMOP, omics, CT, outcomes)."""

        try:
            size = tuple(int(v) for v in image_size.split(","))
            if len(size) != 3 or min(size) < 8:
                raise ValueError
        except ValueError:
            kit.err.print(f"[red]error:[/red] --image-size {image_size!r}: give three sizes of at least 8, e.g. 64,64,32")
            raise typer.Exit(2) from None
        formats = tuple(dict.fromkeys(["omop", *(f.strip().lower() for f in ehr.split(",") if f.strip())]))
        if set(formats) - {"omop", "meds", "fhir"}:
            kit.err.print(f"[red]error:[/red] --ehr {ehr!r}: choose from omop, meds, fhir (comma-separated)")
            raise typer.Exit(2)
        options = SynthOptions(patients=patients, seed=seed, images=images, confounded=confounded,
                               image_size=size, rna_genes=rna_genes, ehr_formats=formats, slides=slides)  # type: ignore[arg-type]
        try:
            path = _synth(kit, out_dir, options, overwrite, quiet)
        except TumorboardError as error:
            kit.fail(error)
        truth = json.loads((path / "ground_truth.json").read_text(encoding="utf-8"))
        kit.out.print(f"{patients} patients written to {path}")
        shares = ", ".join(f"{k} {v:.2f}" for k, v in truth["modality_shares"]["response"].items())
        kit.out.print(f"oracle AUROC {truth['oracle']['auroc']}, oracle C-index {truth['oracle']['c_index']}; "
                  f"share of the response signal: {shares}", highlight=False)

    @app.command()
    def demo(
        folder: Annotated[Path, typer.Option("--dir", help="Working folder for the generated cohort and run.")] = Path("tumorboard-demo"),
        patients: Annotated[int, typer.Option(min=50, help="Patients in the generated cohort.")] = 300,
        fresh: Annotated[bool, typer.Option(help="Generate DIR/cohort anew, replacing an existing synthetic cohort there "
                                                 "(never a folder tumorboard did not write).")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """Generate the synthetic cohort and run the bundled spec (every built-in modality plugin) on it."""
        from importlib import resources

        cohort = folder / "cohort"
        try:
            if cohort.exists() and not fresh:
                _reusable_cohort(kit, cohort, patients)
                kit.out.print(f"reusing the synthetic cohort in {cohort}/ (--fresh generates it anew)")
            else:
                _synth(kit, cohort, SynthOptions(patients=patients), overwrite=fresh, quiet=quiet)
        except TumorboardError as error:
            kit.fail(error)
        spec = cohort / "spec.toml"
        spec.write_text(resources.files("tumorboard_synth").joinpath("demo.toml").read_text(encoding="utf-8"))
        kit.out.print(f"cohort of {patients} patients written to {cohort}/ (OMOP, omics, CT, outcomes, ground truth)")
        try:
            result = kit.run_spec(spec, overwrite=True, quiet=quiet)
        except KeyboardInterrupt:
            kit.err.print("[red]interrupted:[/red] no run directory was written")
            raise typer.Exit(130) from None
        except TumorboardError as error:
            kit.fail(error)
        kit.out.print(kit.metrics_table(result.metrics))
        truth = json.loads((cohort / "ground_truth.json").read_text(encoding="utf-8"))
        kit.out.print(f"oracle AUROC with the true response probabilities: {truth['oracle']['auroc']}")
        kit.out.print(f"run directory: {result.path}")
