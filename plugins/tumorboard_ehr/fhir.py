"""FHIR R4 resources in and out: Bundle JSON files or NDJSON (bulk export) into the events table.

Each resource of a type the loader converts is validated with ``fhir.resources``
(its R4B models, which read R4 resources of these types) before its fields are
read; an invalid one stops the read with the file, the entry and pydantic's
message. Resources of other types (Encounter, Claim, ...) are counted and
reported, never fatal.

What becomes what (docs/ehr.md):

=======================================  ==========  =========================================
resource                                 domain      day, value
=======================================  ==========  =========================================
Patient                                  (person)    birthDate -> year of birth, gender
Condition                                condition   onsetDateTime / onsetPeriod.start / recordedDate
MedicationRequest                        drug        authoredOn
MedicationStatement                      drug        effectiveDateTime / effectivePeriod.start / dateAsserted
Procedure                                procedure   performedDateTime / performedPeriod.start
Observation (laboratory, vital-signs)    measurement effective[x] / issued; valueQuantity (value, unit)
Observation (other categories)           observation effective[x]; valueQuantity or valueString
DiagnosticReport, DocumentReference      note        text: presentedForm / content attachments, conclusion
=======================================  ==========  =========================================

A resource's code is its first coding (``vocabulary/code``, ``SNOMED/254637007``);
a coding in ``OMOP_SYSTEM`` names the OMOP concept (coded.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tumorboard.api import DataError, parallel_map

from .coded import CODE_TABLE, CODED_EVENTS, OMOP_SYSTEM, coded_source, system_of, vocabulary_of
from .events import Source

CONVERTED = ("Patient", "Condition", "MedicationRequest", "MedicationStatement", "Procedure", "Observation",
             "DiagnosticReport", "DocumentReference")
MEASUREMENT_CATEGORIES = {"laboratory", "vital-signs"}
PART_FILES = 100  # files per task of a parallel read
PART_BYTES = 16 << 20  # a larger .ndjson file (a bulk export) is read in pieces of this size
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _model(resource_type: str):
    try:
        from fhir.resources.R4B import get_fhir_model_class  # the ``ehr`` extra; OMOP and MEDS need no FHIR
    except ImportError as exc:
        raise DataError('reading FHIR needs fhir.resources (not installed): pip install "tumorboard[ehr]"') from exc
    return get_fhir_model_class(resource_type)


def fhir_files(folder: Path) -> list[Path]:
    """The folder's .json (Bundle or single resource) and .ndjson files, at any depth, in a stable order."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".json", ".ndjson"))
    if not files:
        raise DataError(f"{folder}: no .json (Bundle) or .ndjson files; a FHIR input is a folder of those")
    return files


def ndjson_ranges(path: Path, size: int) -> list[tuple[int, int, int]]:
    """(start byte, end byte, first line number) of pieces of about ``size`` bytes, cut at line ends,
    so one large bulk-export file is read by several workers and errors still name their line."""
    total = path.stat().st_size
    if total <= size:
        return [(0, total, 1)]
    cuts = [0]
    with open(path, "rb") as fh:
        while cuts[-1] + size < total:
            fh.seek(cuts[-1] + size)
            fh.readline()  # to the end of the line the cut fell in
            if fh.tell() >= total:
                break
            cuts.append(fh.tell())
        cuts.append(total)
        ranges, line = [], 1
        for start, end in zip(cuts, cuts[1:], strict=False):
            ranges.append((start, end, line))
            fh.seek(start)
            line += fh.read(end - start).count(b"\n")
    return ranges


def file_resources(path: Path, not_fhir: list[Path], piece: tuple[int, int, int] | None = None
                   ) -> Iterator[tuple[str, dict]]:
    """(where in the file, resource) for every resource of one .json Bundle or .ndjson file (or of one
    ``piece`` of an .ndjson file: start byte, end byte, first line); a .json file that holds no FHIR
    resource (a manifest) is added to ``not_fhir``."""
    if path.suffix.lower() == ".ndjson":
        start, end, first = piece or (0, path.stat().st_size, 1)
        with open(path, "rb") as fh:
            fh.seek(start)
            line_no = first
            while fh.tell() < end:
                line = fh.readline().decode("utf-8")
                if line.strip():
                    yield f"line {line_no}", _parse(line, path, f"line {line_no}")
                line_no += 1
        return
    document = _parse(path.read_text(encoding="utf-8"), path, "the file", strict=False)
    if "resourceType" not in document:
        not_fhir.append(path)
    elif document.get("resourceType") == "Bundle":
        for k, entry in enumerate(document.get("entry") or [], 1):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict):
                if entry.get("fullUrl"):
                    resource = {**resource, "_fullUrl": entry["fullUrl"]}
                yield f"entry {k}", resource
    else:
        yield "the file", document


def _parse(text: str, path: Path, where: str, strict: bool = True) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: {where} is not valid JSON ({exc}); FHIR files hold one Bundle per .json file "
                        "or one resource per .ndjson line") from exc
    if not isinstance(value, dict) or (strict and "resourceType" not in value):
        raise DataError(f"{path}: {where} is not a FHIR resource (no resourceType)")
    return value


def _validate(resource: dict, path: Path, entry: str) -> None:
    body = {k: v for k, v in resource.items() if k != "_fullUrl"}
    try:
        _model(resource["resourceType"]).model_validate(body)
    except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError and fhir.resources' own errors alike
        first = str(exc).strip().splitlines()
        raise DataError(f"{path}: {entry} ({resource['resourceType']} {resource.get('id', '')!s}) is not a valid "
                        f"FHIR R4 resource: {' '.join(first[:3])}; fix the resource or remove it") from exc


def _date(value) -> str | None:
    return value[:10] if isinstance(value, str) and len(value) >= 10 else (value if isinstance(value, str) else None)


def _first(resource: dict, *paths: str) -> str | None:
    for path in paths:
        value = resource
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            return value
    return None


def _coding(concept: dict | None) -> tuple[str, str | None, int | None] | None:
    """(code, description, OMOP concept id) of a CodeableConcept."""
    if not isinstance(concept, dict):
        return None
    codings = [c for c in concept.get("coding") or [] if isinstance(c, dict) and c.get("code")]
    omop = next((c for c in codings if c.get("system") == OMOP_SYSTEM), None)
    other = next((c for c in codings if c.get("system") != OMOP_SYSTEM), None)
    chosen = other or omop
    if chosen is None:
        return None
    code = f"{vocabulary_of(chosen.get('system'))}/{chosen['code']}" if chosen is other else f"OMOP/{chosen['code']}"
    description = chosen.get("display") or concept.get("text")
    omop_id = int(omop["code"]) if omop is not None and str(omop["code"]).lstrip("-").isdigit() else None
    return code, description, omop_id


def _concept_text(concept: dict | None) -> str | None:
    """A categorical value (``valueCodeableConcept``: smoking status, say) as its text or first display."""
    if not isinstance(concept, dict):
        return None
    displays = [c.get("display") for c in concept.get("coding") or [] if isinstance(c, dict) and c.get("display")]
    return concept.get("text") or (displays[0] if displays else None)


def _patient_ref(resource: dict) -> str | None:
    subject = resource.get("subject") or resource.get("patient")
    return subject.get("reference") if isinstance(subject, dict) else None


def _attachment_text(attachments: list) -> str | None:
    texts = []
    for attachment in attachments:
        if not isinstance(attachment, dict) or not attachment.get("data"):
            continue
        if not str(attachment.get("contentType", "text/plain")).startswith("text/"):
            continue
        try:
            texts.append(base64.b64decode(attachment["data"]).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError):
            continue
    return "\n".join(texts) or None


def _read_part(pieces: list[tuple[str, tuple[int, int, int] | None]], identifier_system: str | None
               ) -> tuple[dict, list, dict, Counter, list]:
    """Validate and convert the resources of some files or pieces of files (one task of a parallel read)."""
    patients: dict[str, tuple[str, float | None, int | None]] = {}  # reference -> (patient id, female, birth year)
    rows: list[tuple] = []
    codes: dict[str, tuple[str | None, int | None]] = {}
    ignored: Counter[str] = Counter()
    not_fhir: list[Path] = []
    for name, piece in pieces:
        path = Path(name)
        for entry, resource in file_resources(path, not_fhir, piece):
            kind = resource["resourceType"]
            if kind not in CONVERTED:
                ignored[kind] += 1
                continue
            _validate(resource, path, entry)
            if kind == "Patient":
                pid = resource.get("id")
                if identifier_system:
                    pid = next((i.get("value") for i in resource.get("identifier") or []
                                if isinstance(i, dict) and i.get("system") == identifier_system), None)
                if not pid:
                    raise DataError(f"{path}: {entry}: Patient without an "
                                    f"{'identifier in ' + identifier_system if identifier_system else 'id'}")
                gender = resource.get("gender")
                female = 1.0 if gender == "female" else 0.0 if gender == "male" else None
                birth = resource.get("birthDate")
                record = (str(pid), female, int(birth[:4]) if birth else None)
                for ref in (f"Patient/{resource.get('id')}", resource.get("_fullUrl")):
                    if ref:
                        patients[ref] = record
                continue
            row = _event(resource, kind, codes)
            if row is not None:
                rows.append(row)
    return patients, rows, codes, ignored, not_fhir


def _event(resource: dict, kind: str, codes: dict) -> tuple | None:
    """One converted resource as (patient reference, date, code, value, unit, text, domain)."""
    ref = _patient_ref(resource)
    if kind in ("DiagnosticReport", "DocumentReference"):
        text = _attachment_text(resource.get("presentedForm") or []) if kind == "DiagnosticReport" else \
            _attachment_text([c.get("attachment") for c in resource.get("content") or [] if isinstance(c, dict)])
        text = text or resource.get("conclusion")
        day = _first(resource, "effectiveDateTime", "effectivePeriod.start", "issued", "date", "context.period.start")
        return (ref, _date(day), "NOTE", None, None, text, "note") if text and day else None
    concept = resource.get("medicationCodeableConcept") if kind.startswith("Medication") else resource.get("code")
    coded = _coding(concept)
    if coded is None:
        return None
    code, description, omop_id = coded
    codes.setdefault(code, (description, omop_id))
    value = unit = text = None
    if kind == "Condition":
        domain, day = "condition", _first(resource, "onsetDateTime", "onsetPeriod.start", "recordedDate")
    elif kind == "MedicationRequest":
        domain, day = "drug", _first(resource, "authoredOn")
    elif kind == "MedicationStatement":
        domain, day = "drug", _first(resource, "effectiveDateTime", "effectivePeriod.start", "dateAsserted")
    elif kind == "Procedure":
        domain, day = "procedure", _first(resource, "performedDateTime", "performedPeriod.start")
    else:  # Observation
        categories = {c.get("code") for cat in resource.get("category") or [] for c in cat.get("coding") or []}
        domain = "measurement" if categories & MEASUREMENT_CATEGORIES else "observation"
        day = _first(resource, "effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued")
        quantity = resource.get("valueQuantity") or {}
        value, unit = quantity.get("value"), quantity.get("unit") or quantity.get("code")
        text = resource.get("valueString") or _concept_text(resource.get("valueCodeableConcept"))
    return (ref, _date(day), code, None if value is None else float(value), unit, text, domain) if day else None


def read_fhir(folder: Path, identifier_system: str | None, code_domains: dict[str, str]) -> tuple[Source, dict[str, int]]:
    """Read every resource of the folder into the loader's Source (and each code's concept number).

    Validation is most of the cost (about 0.25 ms a resource): files, and pieces
    of large .ndjson files, are read as separate tasks on the run's executor
    (worker processes when the run has them).
    """
    files = fhir_files(folder)
    small = [(str(p), None) for p in files if p.suffix.lower() != ".ndjson" or p.stat().st_size <= PART_BYTES]
    tasks = [small[lo:lo + PART_FILES] for lo in range(0, len(small), PART_FILES)]
    tasks += [[(str(p), piece)] for p in files if p.suffix.lower() == ".ndjson" and p.stat().st_size > PART_BYTES
              for piece in ndjson_ranges(p, PART_BYTES)]
    parts = parallel_map(_read_part, [(task, identifier_system) for task in tasks])
    patients: dict[str, tuple[str, float | None, int | None]] = {}
    rows: list[tuple] = []
    codes: dict[str, tuple[str | None, int | None]] = {}
    ignored: Counter[str] = Counter()
    not_fhir: list[Path] = []
    for part_patients, part_rows, part_codes, part_ignored, part_not_fhir in parts:
        patients.update(part_patients)
        rows += part_rows
        for code, value in part_codes.items():
            codes.setdefault(code, value)
        ignored.update(part_ignored)
        not_fhir += part_not_fhir
    if not_fhir:
        ignored[f".json file(s) without a FHIR resource (e.g. {not_fhir[0].name})"] = len(not_fhir)
    unknown_refs = {r[0] for r in rows} - set(patients)
    report = [f"{folder}: resources of types not converted were counted and left out: "
              + ", ".join(f"{k} {n}" for k, n in ignored.most_common())] if ignored else []
    if unknown_refs:
        report.append(f"{folder}: {sum(r[0] in unknown_refs for r in rows)} resource(s) refer to patients not in the "
                      f"files (e.g. {sorted(unknown_refs, key=str)[0]!r}); they were left out")
    frame = pl.DataFrame(
        [r for r in rows if r[0] in patients], orient="row",
        schema={"ref": pl.String, "date": pl.String, "code": pl.String, "value": pl.Float64, "unit": pl.String,
                "text": pl.String, "domain": pl.String})
    link = pl.DataFrame([(ref, rec[0]) for ref, rec in patients.items()], orient="row",
                        schema={"ref": pl.String, "patient_id": pl.String})
    day = pl.col("date").str.to_date("%Y-%m-%d", strict=False).cast(pl.Int32)
    events = frame.join(link, on="ref", how="left").select(
        "patient_id", day.alias("day"), "code", "value", "unit", "text", "domain")
    bad = frame.filter(day.is_null())
    if bad.height:
        raise DataError(f"{folder}: {bad.height} resource date(s) are not FHIR dates (YYYY-MM-DD...), e.g. "
                        f"{bad['date'][0]!r} for {bad['code'][0]}")
    persons = pl.DataFrame(list({rec[0]: rec for rec in patients.values()}.values()), orient="row",
                           schema={"patient_id": pl.String, "female": pl.Float64, "year_of_birth": pl.Int32})
    code_table = pl.DataFrame([(c, d, o, None) for c, (d, o) in codes.items()], orient="row", schema=CODE_TABLE)
    return coded_source(events.cast(CODED_EVENTS), persons, code_table, files, report, code_domains)


# --- writing -------------------------------------------------------------------------------------------------------

def _codeable(code: str | None, description: str | None, concept: int) -> dict:
    codings = []
    if code and not code.startswith("OMOP/"):
        vocabulary, _, value = code.partition("/")
        codings.append({"system": system_of(vocabulary), "code": value, **({"display": description} if description else {})})
    codings.append({"system": OMOP_SYSTEM, "code": str(concept), **({"display": description} if description else {})})
    return {"coding": codings, **({"text": description} if description else {})}


def write_fhir(source: Source, concepts: pl.DataFrame | None, out: Path) -> dict[str, int]:
    """One Bundle (type collection) per patient in ``out/<patient_id>.json``; returns resource counts.

    Each coding carries the vocabulary code and the OMOP concept id, so the
    bundles read back into the OMOP source's features.
    """
    from .meds import coded_events

    events = coded_events(source, concepts)
    descriptions = {} if concepts is None else dict(zip(concepts["concept_id"].cast(pl.Int64).to_list(),
                                                        concepts["concept_name"].cast(pl.String).to_list(), strict=True))
    counts: Counter[str] = Counter()
    by_person = {p: [] for p in source.persons["person"].to_list()}
    for row in events.sort("person", "day", "domain", "concept", maintain_order=True).iter_rows(named=True):
        by_person.setdefault(row["person"], []).append(("event", row))
    for row in source.notes.sort("person", "day", maintain_order=True).iter_rows(named=True):
        by_person.setdefault(row["person"], []).append(("note", row))
    out.mkdir(parents=True, exist_ok=True)
    for person, patient_id, female, year in source.persons.select(
            "person", "patient_id", "female", "year_of_birth").iter_rows():
        if not FHIR_ID.fullmatch(patient_id):
            raise ValueError(f"patient id {patient_id!r} is not a valid FHIR id (letters, digits, '-' and '.', "
                             "at most 64); convert with person ids instead")
        ref = {"reference": f"Patient/{patient_id}"}
        patient = {"resourceType": "Patient", "id": patient_id,
                   **({"gender": "female" if female == 1 else "male"} if female is not None else {}),
                   **({"birthDate": f"{year:04d}"} if year is not None else {})}
        entries = [patient]
        for k, (what, row) in enumerate(by_person.get(person, [])):
            date = _iso(row["day"])
            rid = f"{patient_id}-{k}"
            if what == "note":
                data = base64.b64encode(row["text"].encode("utf-8")).decode("ascii")
                entries.append({"resourceType": "DocumentReference", "id": rid, "status": "current", "subject": ref,
                                "date": f"{date}T00:00:00Z",
                                "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": data}}]})
                continue
            code = _codeable(row["code"], descriptions.get(row["concept"]), row["concept"])
            domain = row["domain"]
            if domain == "condition":
                entries.append({"resourceType": "Condition", "id": rid, "subject": ref, "code": code, "onsetDateTime": date})
            elif domain == "drug":
                entries.append({"resourceType": "MedicationRequest", "id": rid, "status": "completed", "intent": "order",
                                "subject": ref, "medicationCodeableConcept": code, "authoredOn": date})
            elif domain == "procedure":
                entries.append({"resourceType": "Procedure", "id": rid, "status": "completed", "subject": ref,
                                "code": code, "performedDateTime": date})
            else:
                category = "laboratory" if domain == "measurement" else "social-history"
                resource = {"resourceType": "Observation", "id": rid, "status": "final",
                            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                                      "code": category}]}],
                            "code": code, "subject": ref, "effectiveDateTime": date}
                if row["text"] is not None:
                    resource["valueString"] = row["text"]
                elif row["value"] is not None:
                    resource["valueQuantity"] = {"value": row["value"], **({"unit": row["unit"]} if row["unit"] else {})}
                entries.append(resource)
        for resource in entries:
            counts[resource["resourceType"]] += 1
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in entries]}
        # named by the person number: a patient id is data, never part of a path
        (out / f"patient-{person:08d}.json").write_text(json.dumps(bundle, separators=(",", ":")), encoding="utf-8")
    return dict(counts)


def _iso(day: int) -> str:
    import datetime as dt

    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(day))).isoformat()
