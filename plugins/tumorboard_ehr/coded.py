"""Events coded by strings (MEDS codes, FHIR codings) into the loader's ``Source``.

OMOP tables name every event by an integer concept id; MEDS and FHIR name them
by strings (``LOINC/718-7``, a FHIR ``Coding``). This module gives each code the
integer the feature code expects, so the three inputs produce the same features:

* a code whose metadata (MEDS ``codes.parquet`` column ``omop_concept_id``, or a
  FHIR coding in ``OMOP_SYSTEM``) names its OMOP concept keeps that concept id and
  the OMOP-style label ``name [concept id]``: a dataset converted from OMOP
  gives exactly the OMOP features;
* the common labs whose units the loader converts keep their OMOP concept id
  when coded in LOINC (``LOINC_CONCEPTS``), so unit conversion and plausibility
  flags apply to them too;
* any other code gets a negative number (never an OMOP id) and the label
  ``description [code]``.

The domain (condition, drug, procedure, measurement, observation, note) of a
code comes from the event itself where the format says it (FHIR resource types),
then from metadata (a ``domain`` column), then from the code's vocabulary prefix
(``DOMAIN_OF_PREFIX``), and last from its values: a code with numeric values is
a measurement, any other an observation.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from .events import EVENT_SCHEMA, Source

DOMAINS = ("condition", "drug", "procedure", "measurement", "observation", "note")

# FHIR coding system URI <-> vocabulary name as OMOP and MEDS write it ("LOINC/718-7")
SYSTEMS = {
    "http://snomed.info/sct": "SNOMED",
    "http://loinc.org": "LOINC",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD10CM",
    "http://hl7.org/fhir/sid/icd-10": "ICD10",
    "http://hl7.org/fhir/sid/icd-9-cm": "ICD9CM",
    "http://www.ama-assn.org/go/cpt": "CPT4",
    "http://hl7.org/fhir/sid/ndc": "NDC",
    "http://www.whocc.no/atc": "ATC",
    "http://www.cms.gov/Medicare/Coding/ICD10": "ICD10PCS",
}
VOCABULARY_SYSTEM = {v: k for k, v in SYSTEMS.items()}
# a coding in this system carries the OMOP concept id as its code (written by our converters)
OMOP_SYSTEM = "https://athena.ohdsi.org/search-terms/terms"
LOCAL_SYSTEM_PREFIX = "urn:omop-vocabulary:"

DOMAIN_OF_PREFIX = {
    "icd10cm": "condition", "icd9cm": "condition", "icd10": "condition", "icd9": "condition",
    "diagnosis": "condition", "condition": "condition", "snomed": "condition",
    "rxnorm": "drug", "rxnorm extension": "drug", "ndc": "drug", "atc": "drug", "medication": "drug", "drug": "drug",
    "cpt4": "procedure", "hcpcs": "procedure", "icd10pcs": "procedure", "icd9proc": "procedure",
    "procedure": "procedure",
    "loinc": "measurement", "lab": "measurement", "measurement": "measurement", "vitals": "measurement",
    "observation": "observation",
    "note": "note",
}
# LOINC codes of the labs with unit conversions and plausible ranges (features.CONVERSIONS, PLAUSIBLE)
LOINC_CONCEPTS = {"LOINC/718-7": 3000963, "LOINC/2160-0": 3016723, "LOINC/1751-7": 3024561, "LOINC/2532-0": 3016436}

FEMALE = re.compile(r"^(gender|sex)\W+(f|female)$", re.IGNORECASE)
MALE = re.compile(r"^(gender|sex)\W+(m|male)$", re.IGNORECASE)

CODED_EVENTS = {"patient_id": pl.String, "day": pl.Int32, "code": pl.String, "value": pl.Float64,
                "unit": pl.String, "text": pl.String, "domain": pl.String}
CODE_TABLE = {"code": pl.String, "description": pl.String, "omop_concept_id": pl.Int64, "domain": pl.String}


def vocabulary_of(system: str | None) -> str:
    """A FHIR coding system as a vocabulary name (its URI where it is not a known one)."""
    if not system:
        return "unknown"
    if system.startswith(LOCAL_SYSTEM_PREFIX):
        return system[len(LOCAL_SYSTEM_PREFIX):]
    return SYSTEMS.get(system.rstrip("/"), system)


def system_of(vocabulary: str) -> str:
    """A vocabulary name as a FHIR coding system URI."""
    return VOCABULARY_SYSTEM.get(vocabulary, LOCAL_SYSTEM_PREFIX + vocabulary)


def domain_by_prefix(code: str, overrides: dict[str, str]) -> str | None:
    prefix = re.split(r"/+", code, maxsplit=1)[0].lower()
    for table in (overrides, DOMAIN_OF_PREFIX):
        for key, domain in table.items():
            if key.lower() == prefix:
                return domain
    return None


def coded_source(events: pl.DataFrame, persons: pl.DataFrame, codes: pl.DataFrame, files: list[Path],
                 report: list[str], code_domains: dict[str, str]) -> tuple[Source, dict[str, int]]:
    """The loader's ``Source`` and each code's concept number.

    ``events``: CODED_EVENTS (``domain`` null where the format does not say);
    ``persons``: patient_id, female, year_of_birth; ``codes``: CODE_TABLE rows from metadata.
    """
    seen = (events.group_by("code").agg(pl.col("value").is_not_null().any().alias("_numeric"),
                                          pl.col("domain").drop_nulls().first().alias("_event_domain"))
            .join(codes.unique("code", keep="first"), on="code", how="left").sort("code"))
    domains, concepts, names = [], [], {}
    local = 0
    for code, numeric, event_domain, description, omop_id, meta_domain in seen.select(
            "code", "_numeric", "_event_domain", "description", "omop_concept_id", "domain").iter_rows():
        domain = event_domain or meta_domain or domain_by_prefix(code, code_domains) or (
            "measurement" if numeric else "observation")
        if domain not in DOMAINS:
            raise ValueError(f"code {code!r}: domain {domain!r} is not one of {', '.join(DOMAINS)}")
        if omop_id is not None:
            concept = int(omop_id)
            names[concept] = f"{description or code} [{concept}]"
        else:
            if code in LOINC_CONCEPTS:
                concept = LOINC_CONCEPTS[code]
            else:
                local += 1
                concept = -local  # negative: never an OMOP concept id
            names[concept] = f"{description} [{code}]" if description else code
        domains.append(domain)
        concepts.append(concept)
    code_of = pl.DataFrame({"code": seen["code"], "_code_domain": domains, "concept": concepts},
                           schema={"code": pl.String, "_code_domain": pl.String, "concept": pl.Int64})
    ids = pl.concat([persons.select("patient_id"), events.select("patient_id").unique()]).unique().sort("patient_id")
    person_of = ids.with_row_index("person").with_columns(pl.col("person").cast(pl.Int64))
    joined = (events.join(code_of, on="code", how="left").join(person_of, on="patient_id", how="left")
              .with_columns(pl.coalesce("domain", "_code_domain").alias("domain")))
    notes = joined.filter((pl.col("domain") == "note") & pl.col("text").is_not_null()).select(
        "person", "day", "text")
    coded = joined.filter(pl.col("domain") != "note").select(
        "person", "day", pl.col("domain").cast(pl.Categorical), "concept", "value", "unit", "text")
    persons_out = person_of.join(persons, on="patient_id", how="left").select(
        "person", "patient_id", pl.col("female").cast(pl.Float64), pl.col("year_of_birth").cast(pl.Int32))
    source = Source(coded.cast(EVENT_SCHEMA) if coded.height else pl.DataFrame(schema=EVENT_SCHEMA),
                    persons_out, notes, files, report, names)
    return source, dict(zip(code_of["code"].to_list(), code_of["concept"].to_list(), strict=True))


def sex_of(code: str) -> float | None:
    """1.0 for a female gender code (``GENDER//F``, ``Gender/female``), 0.0 for male, None otherwise."""
    if FEMALE.match(code):
        return 1.0
    if MALE.match(code):
        return 0.0
    return None
