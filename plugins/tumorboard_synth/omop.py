"""OMOP CDM v5.4 tables for a chunk of synthetic patients, built column-wise (no per-patient loops).

Column names, order and types follow the CDM v5.4 specification (``SCHEMAS``);
every table is written with exactly these columns, nullable foreign keys empty.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from . import params as P

I, F, S, D, T = pl.Int64, pl.Float64, pl.String, pl.Date, pl.Datetime("us")

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "person": {
        "person_id": I, "gender_concept_id": I, "year_of_birth": I, "month_of_birth": I, "day_of_birth": I,
        "birth_datetime": T, "race_concept_id": I, "ethnicity_concept_id": I, "location_id": I, "provider_id": I,
        "care_site_id": I, "person_source_value": S, "gender_source_value": S, "gender_source_concept_id": I,
        "race_source_value": S, "race_source_concept_id": I, "ethnicity_source_value": S,
        "ethnicity_source_concept_id": I,
    },
    "observation_period": {
        "observation_period_id": I, "person_id": I, "observation_period_start_date": D,
        "observation_period_end_date": D, "period_type_concept_id": I,
    },
    "condition_occurrence": {
        "condition_occurrence_id": I, "person_id": I, "condition_concept_id": I, "condition_start_date": D,
        "condition_start_datetime": T, "condition_end_date": D, "condition_end_datetime": T,
        "condition_type_concept_id": I, "condition_status_concept_id": I, "stop_reason": S, "provider_id": I,
        "visit_occurrence_id": I, "visit_detail_id": I, "condition_source_value": S,
        "condition_source_concept_id": I, "condition_status_source_value": S,
    },
    "drug_exposure": {
        "drug_exposure_id": I, "person_id": I, "drug_concept_id": I, "drug_exposure_start_date": D,
        "drug_exposure_start_datetime": T, "drug_exposure_end_date": D, "drug_exposure_end_datetime": T,
        "verbatim_end_date": D, "drug_type_concept_id": I, "stop_reason": S, "refills": I, "quantity": F,
        "days_supply": I, "sig": S, "route_concept_id": I, "lot_number": S, "provider_id": I,
        "visit_occurrence_id": I, "visit_detail_id": I, "drug_source_value": S, "drug_source_concept_id": I,
        "route_source_value": S, "dose_unit_source_value": S,
    },
    "procedure_occurrence": {
        "procedure_occurrence_id": I, "person_id": I, "procedure_concept_id": I, "procedure_date": D,
        "procedure_datetime": T, "procedure_end_date": D, "procedure_end_datetime": T,
        "procedure_type_concept_id": I, "modifier_concept_id": I, "quantity": I, "provider_id": I,
        "visit_occurrence_id": I, "visit_detail_id": I, "procedure_source_value": S,
        "procedure_source_concept_id": I, "modifier_source_value": S,
    },
    "measurement": {
        "measurement_id": I, "person_id": I, "measurement_concept_id": I, "measurement_date": D,
        "measurement_datetime": T, "measurement_time": S, "measurement_type_concept_id": I,
        "operator_concept_id": I, "value_as_number": F, "value_as_concept_id": I, "unit_concept_id": I,
        "range_low": F, "range_high": F, "provider_id": I, "visit_occurrence_id": I, "visit_detail_id": I,
        "measurement_source_value": S, "measurement_source_concept_id": I, "unit_source_value": S,
        "unit_source_concept_id": I, "value_source_value": S, "measurement_event_id": I,
        "meas_event_field_concept_id": I,
    },
    "observation": {
        "observation_id": I, "person_id": I, "observation_concept_id": I, "observation_date": D,
        "observation_datetime": T, "observation_type_concept_id": I, "value_as_number": F, "value_as_string": S,
        "value_as_concept_id": I, "qualifier_concept_id": I, "unit_concept_id": I, "provider_id": I,
        "visit_occurrence_id": I, "visit_detail_id": I, "observation_source_value": S,
        "observation_source_concept_id": I, "unit_source_value": S, "qualifier_source_value": S,
        "value_source_value": S, "observation_event_id": I, "obs_event_field_concept_id": I,
    },
    "note": {
        "note_id": I, "person_id": I, "note_date": D, "note_datetime": T, "note_type_concept_id": I,
        "note_class_concept_id": I, "note_title": S, "note_text": S, "encoding_concept_id": I,
        "language_concept_id": I, "provider_id": I, "visit_occurrence_id": I, "visit_detail_id": I,
        "note_source_value": S, "note_event_id": I, "note_event_field_concept_id": I,
    },
    "death": {
        "person_id": I, "death_date": D, "death_datetime": T, "death_type_concept_id": I,
        "cause_concept_id": I, "cause_source_value": S, "cause_source_concept_id": I,
    },
    "concept": {
        "concept_id": I, "concept_name": S, "domain_id": S, "vocabulary_id": S, "concept_class_id": S,
        "standard_concept": S, "concept_code": S, "valid_start_date": D, "valid_end_date": D, "invalid_reason": S,
    },
}

EPOCH_INDEX = np.datetime64("2015-01-01")  # index dates fall in 2015-2020


def frame(table: str, columns: dict[str, object]) -> pl.DataFrame:
    """A table with every CDM column in order; columns not given are null."""
    n = len(next(iter(columns.values())))
    out = {}
    for name, dtype in SCHEMAS[table].items():
        if name in columns:
            out[name] = pl.Series(name, columns[name]).cast(dtype)
        else:
            out[name] = pl.Series(name, [None] * n, dtype=dtype)
    return pl.DataFrame(out)


def _dates(index_day: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return (index_day + np.round(offsets).astype(np.int64)).astype("datetime64[D]")


def _ids(person: np.ndarray, base: int) -> np.ndarray:
    # unique across chunks and tables: person id x 1000 + running number
    order = np.argsort(person, kind="stable")
    running = np.empty(len(person), dtype=np.int64)
    _, starts, counts = np.unique(person[order], return_index=True, return_counts=True)
    running[order] = np.arange(len(person)) - np.repeat(starts, counts)
    return person.astype(np.int64) * 1000 + base + running


def person_ids(p: dict) -> np.ndarray:
    return p["index"].astype(np.int64) + 1


def patient_ids(p: dict) -> list[str]:
    return [f"P{i + 1:06d}" for i in p["index"]]


def concept_table() -> pl.DataFrame:
    ids = sorted(P.CONCEPTS)
    rows = [P.CONCEPTS[i] for i in ids]
    return frame("concept", {
        "concept_id": ids,
        "concept_name": [r[0] for r in rows],
        "domain_id": [r[1] for r in rows],
        "vocabulary_id": [r[2] for r in rows],
        "concept_class_id": ["Local" if r[2] == "tumorboard-synth" else "Standard" for r in rows],
        "standard_concept": ["" if r[2] == "tumorboard-synth" else "S" for r in rows],
        "concept_code": [r[3] for r in rows],
        "valid_start_date": np.full(len(ids), np.datetime64("1970-01-01", "D")),
        "valid_end_date": np.full(len(ids), np.datetime64("2099-12-31", "D")),
    })


def build(rng: np.random.Generator, p: dict, o: dict) -> dict[str, pl.DataFrame]:
    """All OMOP tables for one chunk of patients."""
    n = len(p["index"])
    pid = person_ids(p)
    index_day = (EPOCH_INDEX + rng.integers(0, 6 * 365, n).astype("timedelta64[D]")).astype(np.int64)
    diag_offset = -rng.integers(14, 75, n)
    followup_days = np.round(o["os_months"] * 30.4375).astype(np.int64)
    tables: dict[str, pl.DataFrame] = {}

    # person: the patient id of the outcomes table is person_source_value (a study pseudonym)
    birth = _dates(index_day, -(p["age"] * 365.25 + rng.integers(0, 365, n)))
    years = birth.astype("datetime64[Y]").astype(int) + 1970
    months = birth.astype("datetime64[M]").astype(int) % 12 + 1
    days = (birth - birth.astype("datetime64[M]")).astype(int) + 1
    site_number = np.searchsorted(np.array(P.SITES), p["site"]) + 1
    tables["person"] = frame("person", {
        "person_id": pid, "gender_concept_id": [P.GENDER[s] for s in p["sex"]], "year_of_birth": years,
        "month_of_birth": months, "day_of_birth": days, "birth_datetime": birth.astype("datetime64[us]"),
        "race_concept_id": [P.RACE[r] for r in p["race"]],
        "ethnicity_concept_id": np.where(p["hispanic"], P.ETHNICITY["hispanic"], P.ETHNICITY["not hispanic"]),
        "care_site_id": site_number, "person_source_value": patient_ids(p),
        "gender_source_value": np.where(p["sex"] == "female", "F", "M"), "gender_source_concept_id": np.zeros(n, int),
        "race_source_value": p["race"], "race_source_concept_id": np.zeros(n, int),
        "ethnicity_source_value": np.where(p["hispanic"], "hispanic", "not hispanic"),
        "ethnicity_source_concept_id": np.zeros(n, int),
    })
    tables["observation_period"] = frame("observation_period", {
        "observation_period_id": pid, "person_id": pid,
        "observation_period_start_date": _dates(index_day, np.full(n, -3 * 365)),
        "observation_period_end_date": _dates(index_day, followup_days),
        "period_type_concept_id": np.full(n, P.TYPE_EHR),
    })
    tables["condition_occurrence"] = _conditions(rng, p, pid, index_day, diag_offset)
    tables["drug_exposure"] = _drugs(rng, p, o, pid, index_day, followup_days)
    tables["procedure_occurrence"] = _procedures(rng, p, pid, index_day, diag_offset)
    tables["measurement"] = _measurements(rng, p, o, pid, index_day, diag_offset, followup_days)
    tables["observation"] = _observations(rng, p, pid, index_day, diag_offset)
    tables["note"] = _notes(rng, p, o, pid, index_day, diag_offset)
    dead = o["os_event"]
    death_day = _dates(index_day[dead], followup_days[dead])
    tables["death"] = frame("death", {
        "person_id": pid[dead], "death_date": death_day, "death_datetime": death_day.astype("datetime64[us]"),
        "death_type_concept_id": np.full(int(dead.sum()), P.TYPE_EHR), "cause_concept_id": np.full(int(dead.sum()), P.CANCER),
        "cause_source_value": ["C34.90"] * int(dead.sum()), "cause_source_concept_id": np.zeros(int(dead.sum()), int),
    })
    return tables


def _conditions(rng, p, pid, index_day, diag_offset) -> pl.DataFrame:
    persons, concepts, offsets, sources = [pid], [np.full(len(pid), P.CANCER)], [diag_offset], [np.full(len(pid), "C34.90")]
    for concept, has in sorted(p["comorbid"].items()):
        # chronic conditions are re-coded at several visits before the index date
        counts = np.where(has, 1 + rng.poisson(1.5, len(pid)), 0)
        who = np.repeat(np.arange(len(pid)), counts)
        persons.append(pid[who])
        concepts.append(np.full(len(who), concept))
        offsets.append(-rng.integers(30, 3 * 365, len(who)))
        sources.append(np.full(len(who), P.CONCEPTS[concept][3]))
    person = np.concatenate(persons)
    start = _dates(np.repeat(index_day, 1)[np.searchsorted(pid, person)], np.concatenate(offsets))
    return frame("condition_occurrence", {
        "condition_occurrence_id": _ids(person, 0), "person_id": person, "condition_concept_id": np.concatenate(concepts),
        "condition_start_date": start, "condition_start_datetime": start.astype("datetime64[us]"),
        "condition_type_concept_id": np.full(len(person), P.TYPE_EHR), "condition_status_concept_id": np.zeros(len(person), int),
        "condition_source_value": np.concatenate(sources), "condition_source_concept_id": np.zeros(len(person), int),
    })


def _repeat_events(rng, who_mask, n_per, spacing, first_offset, limit):
    """Per selected patient, ``n_per`` events every ``spacing`` days from ``first_offset``, up to ``limit``."""
    counts = np.where(who_mask, n_per, 0)
    who = np.repeat(np.arange(len(who_mask)), counts)
    k = np.arange(len(who)) - np.repeat(np.cumsum(counts) - counts, counts)
    offsets = first_offset[who] + k * spacing + rng.integers(-2, 3, len(who))
    keep = offsets <= limit[who]
    return who[keep], offsets[keep]


def _drugs(rng, p, o, pid, index_day, followup_days) -> pl.DataFrame:
    n = len(pid)
    parts = []  # (who, offsets, concept name, days supply, quantity, route)
    chemo = ~p["targeted"]
    cycles = 4 + rng.poisson(1.0, n)
    zero = np.zeros(n, dtype=np.int64)
    for drug in ("carboplatin", "pemetrexed"):
        who, off = _repeat_events(rng, chemo, cycles, 21, zero, followup_days)
        parts.append((who, off, drug, 1, 1.0, "intravenous"))
    months = np.maximum(followup_days // 30, 1)
    who, off = _repeat_events(rng, p["targeted"], np.minimum(months, 24), 30, zero, followup_days)
    parts.append((who, off, "osimertinib", 30, 30.0, "oral"))
    # second line after progression for half the non-responders
    second = ~o["response"] & (rng.random(n) < 0.5) & (followup_days > 150)
    who, off = _repeat_events(rng, second, np.full(n, 4), 21, np.full(n, 120), followup_days)
    parts.append((who, off, "docetaxel", 1, 1.0, "intravenous"))
    chronic = {"metformin": p["comorbid"][201826], "lisinopril": p["comorbid"][320128], "atorvastatin": rng.random(n) < 0.3}
    for drug, has in chronic.items():
        who, off = _repeat_events(rng, has, np.full(n, 8), 90, np.full(n, -365), followup_days)
        parts.append((who, off, drug, 90, 90.0, "oral"))
    who = np.concatenate([w for w, *_ in parts])
    off = np.concatenate([o_ for _, o_, *_ in parts])
    names = np.concatenate([np.full(len(w), d) for w, _, d, *_ in parts])
    supply = np.concatenate([np.full(len(w), s) for w, _, _, s, *_ in parts])
    quantity = np.concatenate([np.full(len(w), q) for w, _, _, _, q, _ in parts])
    route = np.concatenate([np.full(len(w), r) for w, *_, r in parts])
    person = pid[who]
    start = _dates(index_day[who], off)
    end = _dates(index_day[who], off + supply)
    return frame("drug_exposure", {
        "drug_exposure_id": _ids(person, 0), "person_id": person,
        "drug_concept_id": [P.DRUG[d] for d in names], "drug_exposure_start_date": start,
        "drug_exposure_start_datetime": start.astype("datetime64[us]"), "drug_exposure_end_date": end,
        "drug_exposure_end_datetime": end.astype("datetime64[us]"), "drug_type_concept_id": np.full(len(person), P.TYPE_EHR),
        "refills": np.zeros(len(person), int), "quantity": quantity, "days_supply": supply,
        "route_concept_id": np.zeros(len(person), int), "drug_source_value": names,
        "drug_source_concept_id": np.zeros(len(person), int), "route_source_value": route,
    })


def _procedures(rng, p, pid, index_day, diag_offset) -> pl.DataFrame:
    n = len(pid)
    rt = (p["stage"] == 3) & (rng.random(n) < 0.4)
    who = np.concatenate([np.arange(n), np.arange(n), np.flatnonzero(p["has_scan"]), np.flatnonzero(rt)])
    concept = np.concatenate([np.full(n, P.LOCAL + 501), np.full(n, P.LOCAL + 502),
                              np.full(int(p["has_scan"].sum()), P.LOCAL + 502), np.full(int(rt.sum()), P.LOCAL + 503)])
    off = np.concatenate([diag_offset - 7, diag_offset, np.full(int(p["has_scan"].sum()), 60), np.full(int(rt.sum()), 10)])
    person = pid[who]
    day = _dates(index_day[who], off)
    return frame("procedure_occurrence", {
        "procedure_occurrence_id": _ids(person, 0), "person_id": person, "procedure_concept_id": concept,
        "procedure_date": day, "procedure_datetime": day.astype("datetime64[us]"),
        "procedure_type_concept_id": np.full(len(person), P.TYPE_EHR), "modifier_concept_id": np.zeros(len(person), int),
        "procedure_source_value": [P.CONCEPTS[c][3] for c in concept], "procedure_source_concept_id": np.zeros(len(person), int),
    })


def _measurements(rng, p, o, pid, index_day, diag_offset, followup_days) -> pl.DataFrame:
    n = len(pid)
    # visits: diagnosis, baseline (index day or up to 3 days before), routine
    # visits in the year before, and treatment visits every ~3-4 weeks after
    n_pre = rng.poisson(5, n)
    n_post = np.minimum(rng.poisson(np.minimum(followup_days, 365) / 25), 16)
    counts = 2 + n_pre + n_post
    who = np.repeat(np.arange(n), counts)
    k = np.arange(len(who)) - np.repeat(np.cumsum(counts) - counts, counts)
    pre_off = -rng.integers(4, 365, len(who))
    post_off = 1 + (rng.random(len(who)) * np.minimum(followup_days, 365)[who]).astype(np.int64)
    offset = np.where(k == 0, diag_offset[who], np.where(k == 1, -rng.integers(0, 4, len(who)),
                      np.where(k < 2 + n_pre[who], pre_off, post_off)))
    post = offset > 0
    months = np.maximum(offset, 0) / 30.4
    responder = o["response"][who]
    rows = []

    def add(mask, concept, unit_concept, unit, values, source):
        rows.append((who[mask], offset[mask], np.full(mask.sum(), concept), np.full(mask.sum(), unit_concept),
                     np.full(mask.sum(), unit), values[mask], np.full(mask.sum(), source)))

    trend = np.where(responder, -1.0, 0.6)  # what treatment does to the disease after the index date
    labs = {
        "hemoglobin": p["hemoglobin"][who] - 0.4 * post + rng.normal(0, 0.35, len(who)),
        "creatinine": p["creatinine"][who] * np.exp(rng.normal(0, 0.06, len(who))),
        "ldh": p["ldh"][who] * np.exp(0.15 * trend * np.minimum(months, 6) / 6 + rng.normal(0, 0.08, len(who))),
        "albumin": p["albumin"][who] + rng.normal(0, 0.15, len(who)),
        "cea": np.exp(p["log_cea"][who] + 0.5 * trend * np.minimum(months, 6) / 6 + rng.normal(0, 0.12, len(who))),
    }
    site = p["site"][who]
    for lab, (concept, unit_concept, unit, prob) in P.LABS.items():
        measured = (rng.random(len(who)) < prob) | (k == 1)  # baseline panel is (nearly) complete
        measured &= rng.random(len(who)) < 0.97
        values = labs[lab].copy()
        # 0.2% keying errors (a decimal point lost): absurd values for loaders to flag
        values = np.where(rng.random(len(who)) < 0.002, values * 100, values)
        local = P.SITE_UNITS.get("site_c", {}).get(lab)
        if local:
            other = site == "site_c"
            add(measured & ~other, concept, unit_concept, unit, values, lab)
            add(measured & other, concept, local[0], local[1], values * local[2], lab)
        else:
            add(measured, concept, unit_concept, unit, values, lab)
    worse = post & ~responder & (months > 3)
    ecog_value = np.minimum(p["ecog"][who] + worse, 4).astype(float)
    add(rng.random(len(who)) < 0.4, P.ECOG_CONCEPT, 0, "", ecog_value, "ECOG")
    add(k == 0, P.STAGE_CONCEPT, 0, "", p["stage"][who].astype(float), "STAGE")

    w = np.concatenate([r[0] for r in rows])
    off = np.concatenate([r[1] for r in rows])
    person = pid[w]
    day = _dates(index_day[w], off)
    values = np.concatenate([r[5] for r in rows])
    concept = np.concatenate([r[2] for r in rows])
    rounded = np.where(concept == P.LABS["ldh"][0], np.round(values, 0), np.round(values, 2))
    unit_text = np.concatenate([r[4] for r in rows])
    return frame("measurement", {
        "measurement_id": _ids(person, 0), "person_id": person, "measurement_concept_id": concept,
        "measurement_date": day, "measurement_datetime": day.astype("datetime64[us]"),
        "measurement_type_concept_id": np.full(len(person), P.TYPE_EHR), "operator_concept_id": np.zeros(len(person), int),
        "value_as_number": rounded, "value_as_concept_id": np.zeros(len(person), int),
        "unit_concept_id": np.concatenate([r[3] for r in rows]),
        "measurement_source_value": np.concatenate([r[6] for r in rows]),
        "measurement_source_concept_id": np.zeros(len(person), int),
        "unit_source_value": np.where(unit_text == "", None, unit_text),
        "value_source_value": rounded.astype(str),
    })


def _observations(rng, p, pid, index_day, diag_offset) -> pl.DataFrame:
    n = len(pid)
    again = rng.random(n) < 0.5
    who = np.concatenate([np.arange(n), np.flatnonzero(again)])
    off = np.concatenate([diag_offset, -rng.integers(100, 700, int(again.sum()))])
    status = p["smoking"][who]
    value = {"never": P.LOCAL + 302, "former": P.LOCAL + 303, "current": P.LOCAL + 304}
    person = pid[who]
    day = _dates(index_day[who], off)
    return frame("observation", {
        "observation_id": _ids(person, 0), "person_id": person, "observation_concept_id": np.full(len(who), P.LOCAL + 301),
        "observation_date": day, "observation_datetime": day.astype("datetime64[us]"),
        "observation_type_concept_id": np.full(len(who), P.TYPE_EHR), "value_as_string": status,
        "value_as_concept_id": [value[s] for s in status], "observation_source_value": np.full(len(who), "smoking"),
        "observation_source_concept_id": np.zeros(len(who), int), "value_source_value": status,
    })


SIDES = ("right upper", "right middle", "right lower", "left upper", "left lower")


def _notes(rng, p, o, pid, index_day, diag_offset) -> pl.DataFrame:
    """Pathology and radiology texts, with negated findings ("no evidence of metastasis")."""
    n = len(pid)
    texts, titles, classes, offsets, who = [], [], [], [], []
    egfr, kras = p["mutations"]["EGFR"], p["mutations"]["KRAS"]
    tested = rng.random(n) >= 0.12
    lobe = rng.choice(SIDES, n)
    grade = rng.choice(["well", "moderately", "poorly"], n, p=[0.2, 0.45, 0.35])
    diameter = 2 * (3 * np.exp(p["log_volume"]) / (4 * np.pi)) ** (1 / 3) / 10  # cm
    metastatic = rng.choice(["Multiple hepatic lesions consistent with metastatic disease.",
                             "Findings suspicious for metastasis to the left adrenal gland.",
                             "Lytic lesion in T8 consistent with osseous metastasis."], n)
    negated = rng.choice(["No evidence of metastasis.", "No evidence of metastatic disease in the abdomen.",
                          "Negative for distant metastasis."], n)
    extras = rng.choice(["No pleural effusion.", "Small left pleural effusion.", "Mediastinal lymph nodes not enlarged.",
                         "Enlarged subcarinal lymph node."], n)
    for i in range(n):
        if not tested[i]:
            molecular = "Molecular testing: pending; insufficient tissue for EGFR and KRAS analysis."
        else:
            e = "EGFR exon 19 deletion detected." if egfr[i] else "No EGFR mutation detected."
            r = "KRAS G12C mutation detected." if kras[i] else "KRAS: negative for mutation."
            molecular = f"Molecular testing: {e} {r}"
        texts.append(f"Biopsy, {lobe[i]} lobe of lung. Diagnosis: adenocarcinoma, {grade[i]} differentiated. {molecular}")
        titles.append("Surgical pathology report")
        classes.append(P.LOCAL + 401)
        offsets.append(diag_offset[i] - 7)
        who.append(i)
        finding = metastatic[i] if p["stage"][i] == 4 else negated[i]
        texts.append(f"CT chest, abdomen and pelvis: {diameter[i]:.1f} cm spiculated mass in the {lobe[i]} lobe. "
                     f"{finding} {extras[i]}")
        titles.append("CT staging")
        classes.append(P.LOCAL + 402)
        offsets.append(diag_offset[i])
        who.append(i)
        if p["has_scan"][i]:
            # after the index date: describes the response itself (a loader must never use it)
            outcome = ("Interval decrease in size of the dominant mass, consistent with partial response."
                       if o["response"][i] else
                       "Interval increase in size of the dominant mass, consistent with progressive disease.")
            texts.append(f"CT chest follow-up: {outcome}")
            titles.append("CT restaging")
            classes.append(P.LOCAL + 402)
            offsets.append(60)
            who.append(i)
    who_a = np.array(who)
    person = pid[who_a]
    day = _dates(index_day[who_a], np.array(offsets))
    return frame("note", {
        "note_id": _ids(person, 0), "person_id": person, "note_date": day, "note_datetime": day.astype("datetime64[us]"),
        "note_type_concept_id": np.full(len(who_a), P.TYPE_EHR), "note_class_concept_id": classes,
        "note_title": titles, "note_text": texts, "encoding_concept_id": np.zeros(len(who_a), int),
        "language_concept_id": np.full(len(who_a), P.LANGUAGE_ENGLISH),
    })
