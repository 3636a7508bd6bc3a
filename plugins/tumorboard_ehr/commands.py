"""``tumorboard ehr-convert``: OMOP CDM tables into a MEDS dataset or FHIR R4 bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import polars as pl
import typer

from tumorboard.api import CommandKit, TumorboardError, hookimpl, staged_directory


def convert(omop_dir: Path, out: Path, to: Literal["meds", "fhir"], *, id_source: str = "person_source_value",
            overwrite: bool = False, seed: int = 0) -> dict[str, int]:
    """Convert the OMOP tables ehr.polars reads (person, conditions, drugs, procedures, measurements,
    observations, notes) into ``out``, atomically: a failed conversion leaves nothing there."""
    from .events import find_table, read_omop
    from .fhir import write_fhir
    from .meds import write_meds

    if not Path(omop_dir).is_dir():
        raise TumorboardError(f"{omop_dir}: no such folder; give the folder that holds the OMOP tables (person.csv, ...)")
    source = read_omop(omop_dir, id_source)
    concept_path = find_table(omop_dir, "concept")
    concepts = None
    if concept_path is not None:
        concepts = (pl.read_parquet(concept_path) if concept_path.suffix == ".parquet"
                    else pl.read_csv(concept_path, infer_schema=False, separator="\t" if concept_path.suffix == ".tsv" else ","))
    with staged_directory(out, overwrite, "converted dataset", protected=[omop_dir]) as staged:
        if to == "meds":
            counts = write_meds(source, concepts, staged.path, dataset_name=Path(omop_dir).resolve().name, seed=seed)
        else:
            try:
                counts = write_fhir(source, concepts, staged.path)
            except ValueError as error:
                raise TumorboardError(f"{omop_dir}: {error} (--id person_id)") from None
    return counts


@hookimpl
def register_commands(app: typer.Typer, kit: CommandKit) -> None:
    """Add ``ehr-convert`` (OMOP CDM into MEDS or FHIR)."""

    @app.command("ehr-convert")
    def ehr_convert(
        omop_dir: Annotated[Path, typer.Argument(help="Folder with OMOP CDM tables (CSV or Parquet).")],
        out: Annotated[Path, typer.Option("--out", help="Folder to create.")],
        to: Annotated[str, typer.Option(help="meds (a MEDS dataset) or fhir (one R4 Bundle per patient).")] = "meds",
        id_source: Annotated[str, typer.Option("--id", help="person_source_value or person_id: the patient ids "
                                                            "the output carries.")] = "person_source_value",
        seed: Annotated[int, typer.Option(help="MEDS: seed of the train/tuning/held_out subject split.")] = 0,
        overwrite: Annotated[bool, typer.Option(help="Replace a folder this command wrote before.")] = False,
    ) -> None:
        """Convert OMOP CDM tables into a MEDS dataset or FHIR R4 bundles (the records ehr.polars reads)."""
        if to not in ("meds", "fhir"):
            kit.err.print(f"[red]error:[/red] --to {to!r}: choose meds or fhir")
            raise typer.Exit(2)
        if id_source not in ("person_source_value", "person_id"):
            kit.err.print(f"[red]error:[/red] --id {id_source!r}: choose person_source_value or person_id")
            raise typer.Exit(2)
        try:
            counts = convert(omop_dir, out, to, id_source=id_source, overwrite=overwrite, seed=seed)  # type: ignore[arg-type]
        except TumorboardError as error:
            kit.fail(error)
        listed = ", ".join(f"{k} {v}" for k, v in counts.items())
        kit.out.print(f"{omop_dir} written as {to.upper()} to {out}: {listed}", highlight=False)
