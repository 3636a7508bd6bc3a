"""Reading a finished run directory, and the run's secret for patient references.

Reporters (the cohort report), the patient card and ``recommend`` read a run
only through ``RunFiles``: what the run wrote, checked against its manifest.
A patient is named outside the run only by ``patient_reference``, an HMAC of
the study id keyed with the run's own random secret (``card-key.txt``), so a
shared page cannot be mapped back to an id by hashing every id of a known
format.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

import polars as pl

from .errors import RunError
from .rundir import verify_run

FEATURE_LABELS = "feature_labels.json"


class RunFiles:
    """A finished run directory, read lazily."""

    def __init__(self, folder: Path, verify: bool = True, redrawn: tuple[str, ...] = ()) -> None:
        self.folder = Path(folder)
        if verify:  # a finished run: its manifest is there and every file matches it
            verify_run(self.folder, redrawn=redrawn)
        if not (self.folder / "metrics.json").is_file():
            raise RunError(f"{self.folder}: not a run directory (no metrics.json); "
                           "give the folder that `tumorboard run` printed")
        self.metrics: dict[str, Any] = self._json("metrics.json")
        self.provenance: dict[str, Any] = self._json("provenance.json")
        self.spec: dict[str, Any] = self._json("resolved.json")
        self._labels: dict[str, dict[str, str]] | None = None

    def _json(self, name: str) -> dict[str, Any]:
        path = self.folder / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    @property
    def task(self) -> str:
        return self.metrics.get("task") or self.spec.get("run", {}).get("task", "")

    def predictions(self) -> pl.DataFrame:
        return pl.read_parquet(self.folder / "predictions.parquet")

    def feature_labels(self) -> dict[str, dict[str, str]]:
        """Readable names the run's modalities gave their features: spec modality name -> feature -> label."""
        if self._labels is None:
            self._labels = self._json(FEATURE_LABELS)
        return self._labels

    def attribution(self, method: str) -> tuple[pl.DataFrame, dict[str, Any]] | None:
        """(global table, summary) of an explainer's output, or None when the run did not use it."""
        path = self.folder / "attributions" / f"{method}.parquet"
        if not path.is_file():
            return None
        summary_path = path.with_suffix(".json")
        summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
        return pl.read_parquet(path), summary

    def per_patient(self, method: str, kind: str = "patients") -> pl.DataFrame | None:
        path = self.folder / "attributions" / f"{method}-{kind}.parquet"
        return pl.read_parquet(path) if path.is_file() else None

    def explainers(self) -> list[str]:
        folder = self.folder / "attributions"
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


CARD_KEY = "card-key.txt"


def write_card_key(folder: Path) -> None:
    """A fresh random secret for this run's card references (256 bits, hex)."""
    (Path(folder) / CARD_KEY).write_text(secrets.token_hex(32) + "\n", encoding="utf-8")


def reference(patient_id: str, key: bytes) -> str:
    """A short reference for a patient: the first 12 hex digits of HMAC-SHA-256(run secret, id)."""
    return hmac.new(key, str(patient_id).encode("utf-8"), hashlib.sha256).hexdigest()[:12]


def card_key(folder: Path) -> bytes:
    path = Path(folder) / CARD_KEY
    if not path.is_file():
        raise RunError(f"{folder}: no {CARD_KEY} (the run's secret for card references); run the spec again")
    return bytes.fromhex(path.read_text(encoding="utf-8").strip())


def patient_reference(folder: Path, patient_id: str) -> str:
    """The short reference that names ``patient_id`` on pages shared from the run in ``folder``."""
    return reference(patient_id, card_key(folder))


__all__ = ["CARD_KEY", "FEATURE_LABELS", "RunFiles", "card_key", "patient_reference", "reference", "write_card_key"]
