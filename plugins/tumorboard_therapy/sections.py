"""``[treatment]`` and ``[treatment.evidence]``: the spec section this plugin owns, validated here."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from tumorboard.api import ComponentSpec, Options


class EvidenceSection(Options):
    """``[treatment.evidence]``: biomarker -> therapy rules matched against each patient's omics."""

    rules: Path = Field(description="CSV/TSV/Parquet or TOML ([[rule]]) with gene, alteration, therapy, direction, "
                                    "evidence_level, source.")
    mutation: Path | None = Field(None, description="Mutation calls, patients x genes (1 = mutated).")
    cnv: Path | None = Field(None, description="Gene-level copy number (log2 ratios), patients x genes.")
    id: str = Field("patient_id", description="Id column of the omics matrices.")
    therapy_names: dict[str, list[str]] = Field(
        default_factory=dict, description='Drugs each arm stands for, e.g. { targeted = ["osimertinib"] }.')
    amplification: float = Field(0.8, description="log2 ratio at or above which a gene counts as amplified.")
    deletion: float = Field(-0.8, description="log2 ratio at or below which a gene counts as deleted.")


class TreatmentSection(Options):
    """``[treatment]``: estimate each patient's outcome under each candidate treatment."""

    column: str = Field(description="Outcomes column holding each patient's treatment.")
    candidates: list[str] = Field(min_length=2, description="Treatments to compare (values of that column).")
    reference: str | None = Field(None, description="Reference arm for effects (default: the first candidate).")
    learner: Literal["s", "t", "x", "dr"] = Field("dr", description="S-, T-, X- or doubly robust learner.")
    effect_model: ComponentSpec = Field(default_factory=lambda: ComponentSpec(plugin="model.gbm"),
                                        description="Regression model for X/DR learners' effects.")
    propensity_model: ComponentSpec = Field(
        # strongly penalised: an overfitted propensity model makes randomised data look confounded
        default_factory=lambda: ComponentSpec(plugin="model.logistic", options={"C": 0.05}),
        description="Classifier of treatment from covariates.")
    trim: tuple[float, float] | None = Field(None, description="Leave out training patients whose propensity is outside [low, high].")
    overlap_auroc: float = Field(0.7, gt=0.5, lt=1, description="Warn when treatment is this predictable (AUROC).")
    min_arm_size: PositiveInt = Field(10, description="Training patients each arm needs in every fold.")
    bags: int = Field(20, ge=0, description="Bootstrap refits for per-patient intervals.")
    evidence: EvidenceSection | None = None

    @model_validator(mode="after")
    def _reference_is_a_candidate(self) -> TreatmentSection:
        if self.reference is not None and self.reference not in self.candidates:
            raise ValueError(f"treatment.reference {self.reference!r} is not among the candidates {self.candidates}")
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError("treatment.candidates holds a treatment twice")
        if self.trim is not None and not 0 <= self.trim[0] < self.trim[1] <= 1:
            raise ValueError(f"treatment.trim {list(self.trim)} must be [low, high] with 0 <= low < high <= 1")
        return self
