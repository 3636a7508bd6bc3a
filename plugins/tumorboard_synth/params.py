"""Every number of the synthetic cohort's generative model, in one place.

docs/synthetic-cohort.md states the same equations; the ground-truth file
records these values with each generated cohort.
"""

from __future__ import annotations

# --- OMOP concept ids ------------------------------------------------------
# Standard ids were checked against the OMOP vocabulary (the Synthea27Nj
# CONCEPT table in shared/data holds them). Ids of 2,000,000,000 and above are
# the CDM's range for local concepts; ours are listed in omop/concept.csv.
LOCAL = 2_000_000_000

GENDER = {"male": 8507, "female": 8532}
RACE = {"white": 8527, "black": 8516, "asian": 8515, "other": 0}
ETHNICITY = {"hispanic": 38003563, "not hispanic": 38003564}
TYPE_EHR = 32817  # type concept "EHR"
LANGUAGE_ENGLISH = 4180186

CONCEPTS: dict[int, tuple[str, str, str, str]] = {
    # id: (name, domain, vocabulary, code)
    4115276: ("Non-small cell lung cancer", "Condition", "SNOMED", "254637007"),
    201826: ("Type 2 diabetes mellitus", "Condition", "SNOMED", "44054006"),
    320128: ("Essential hypertension", "Condition", "SNOMED", "59621000"),
    313217: ("Atrial fibrillation", "Condition", "SNOMED", "49436004"),
    443597: ("Chronic kidney disease stage 3", "Condition", "SNOMED", "433144002"),
    LOCAL + 11: ("Chronic obstructive pulmonary disease", "Condition", "tumorboard-synth", "COPD"),
    3000963: ("Hemoglobin [Mass/volume] in Blood", "Measurement", "LOINC", "718-7"),
    3016723: ("Creatinine [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "2160-0"),
    3016436: ("Lactate dehydrogenase [Enzymatic activity/volume] in Serum or Plasma", "Measurement", "LOINC", "2532-0"),
    3024561: ("Albumin [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "1751-7"),
    LOCAL + 101: ("Carcinoembryonic antigen (CEA) in serum", "Measurement", "tumorboard-synth", "CEA"),
    LOCAL + 103: ("ECOG performance status", "Measurement", "tumorboard-synth", "ECOG"),
    LOCAL + 104: ("TNM stage group", "Measurement", "tumorboard-synth", "STAGE"),
    1308216: ("lisinopril", "Drug", "RxNorm", "29046"),
    LOCAL + 201: ("carboplatin", "Drug", "tumorboard-synth", "CARBOPLATIN"),
    LOCAL + 202: ("pemetrexed", "Drug", "tumorboard-synth", "PEMETREXED"),
    LOCAL + 203: ("osimertinib", "Drug", "tumorboard-synth", "OSIMERTINIB"),
    LOCAL + 204: ("docetaxel", "Drug", "tumorboard-synth", "DOCETAXEL"),
    LOCAL + 205: ("metformin", "Drug", "tumorboard-synth", "METFORMIN"),
    LOCAL + 206: ("atorvastatin", "Drug", "tumorboard-synth", "ATORVASTATIN"),
    LOCAL + 301: ("Tobacco smoking status", "Observation", "tumorboard-synth", "SMOKING"),
    LOCAL + 302: ("Never smoker", "Meas Value", "tumorboard-synth", "NEVER"),
    LOCAL + 303: ("Former smoker", "Meas Value", "tumorboard-synth", "FORMER"),
    LOCAL + 304: ("Current smoker", "Meas Value", "tumorboard-synth", "CURRENT"),
    LOCAL + 401: ("Pathology report", "Note", "tumorboard-synth", "PATHOLOGY"),
    LOCAL + 402: ("Radiology report", "Note", "tumorboard-synth", "RADIOLOGY"),
    LOCAL + 501: ("Biopsy of lung", "Procedure", "tumorboard-synth", "LUNG_BIOPSY"),
    LOCAL + 502: ("CT of chest", "Procedure", "tumorboard-synth", "CT_CHEST"),
    LOCAL + 503: ("Radiotherapy to thorax", "Procedure", "tumorboard-synth", "RT_THORAX"),
    8507: ("MALE", "Gender", "Gender", "M"),
    8532: ("FEMALE", "Gender", "Gender", "F"),
    8713: ("gram per deciliter", "Unit", "UCUM", "g/dL"),
    8840: ("milligram per deciliter", "Unit", "UCUM", "mg/dL"),
    8749: ("micromole per liter", "Unit", "UCUM", "umol/L"),
    8645: ("unit per liter", "Unit", "UCUM", "U/L"),
    8636: ("gram per liter", "Unit", "UCUM", "g/L"),
    8842: ("nanogram per milliliter", "Unit", "UCUM", "ng/mL"),
}

COMORBIDITIES = {  # concept: prevalence
    201826: 0.20, 320128: 0.40, 313217: 0.07, 443597: 0.08, LOCAL + 11: 0.15,
}
CANCER = 4115276
DRUG = {"carboplatin": LOCAL + 201, "pemetrexed": LOCAL + 202, "osimertinib": LOCAL + 203,
        "docetaxel": LOCAL + 204, "metformin": LOCAL + 205, "atorvastatin": LOCAL + 206,
        "lisinopril": 1308216}

# labs: concept, unit concept, unit text, measured at a visit with this probability
LABS = {
    "hemoglobin": (3000963, 8713, "g/dL", 0.75),
    "creatinine": (3016723, 8840, "mg/dL", 0.70),
    "ldh": (3016436, 8645, "U/L", 0.55),
    "albumin": (3024561, 8713, "g/dL", 0.50),
    "cea": (LOCAL + 101, 8842, "ng/mL", 0.60),
}
ECOG_CONCEPT = LOCAL + 103
STAGE_CONCEPT = LOCAL + 104
# site_c reports creatinine in umol/L (x 88.4) and hemoglobin in g/L (x 10),
# as labs outside the US do: loaders must convert units
SITE_UNITS = {"site_c": {"creatinine": (8749, "umol/L", 88.4), "hemoglobin": (8636, "g/L", 10.0)}}

# --- cohort ------------------------------------------------------------------
SITES = ("site_a", "site_b", "site_c", "site_d")
SITE_P = (0.35, 0.30, 0.20, 0.15)
STAGE_P = (0.15, 0.25, 0.35, 0.25)  # stage I..IV
SMOKING = ("never", "former", "current")
SMOKING_P = (0.30, 0.45, 0.25)
ARMS = ("chemo", "targeted")  # chemo is the reference arm (standard of care)

# --- omics -------------------------------------------------------------------
DRIVERS = {  # gene: base frequency
    "TP53": 0.50, "KRAS": 0.28, "EGFR": 0.15, "STK11": 0.15, "KEAP1": 0.12,
    "PIK3CA": 0.08, "BRAF": 0.04, "ERBB2": 0.03, "MET": 0.03, "NF1": 0.06,
}
N_PASSENGERS = 40
PROGRAMS = ("immune", "proliferation", "egfr_signalling", "stromal", "hypoxia")
PROGRAM_MARKERS = {
    "immune": ["CD8A", "CD8B", "GZMA", "GZMB", "PRF1", "IFNG", "CXCL9", "CXCL10", "CD274", "LAG3",
               "PDCD1", "CTLA4", "IDO1", "HLA-DRA", "CD3E", "CD2", "NKG7", "CCL5", "STAT1", "TBX21"],
    "proliferation": ["MKI67", "TOP2A", "CCNB1", "BUB1", "AURKA", "CDK1", "CCNE1", "E2F1", "MCM2", "PCNA",
                      "TYMS", "RRM2", "CENPF", "KIF11", "PLK1", "CDC20", "BIRC5", "FOXM1", "MYBL2", "UBE2C"],
    "egfr_signalling": ["EGFR", "DUSP6", "ETV4", "ETV5", "SPRY4", "SPRY2", "PHLDA1", "EPHA2", "AREG", "EREG"],
    "stromal": ["COL1A1", "COL1A2", "COL3A1", "FAP", "ACTA2", "PDGFRB", "SPARC", "DCN", "LUM", "POSTN"],
    "hypoxia": ["CA9", "VEGFA", "SLC2A1", "PGK1", "LDHA", "BNIP3", "NDRG1", "ADM", "ANGPTL4", "P4HA1"],
}
LAYER_MISSING = {"mutation": 0.05, "cnv": 0.10, "rna": 0.10, "methylation": 0.30, "protein": 0.40, "metabolite": 0.50}
N_CNV_GENES, N_CPG, N_PROTEIN, N_METABOLITE = 400, 500, 150, 100

# --- outcome model -------------------------------------------------------------
# response: logit p = B0 + eta_clinical + eta_omics + eta_imaging
B0 = 0.1
RESPONSE = {
    "clinical": {"ecog": -0.55, "stage": -0.45, "hemoglobin_z": 0.45, "cea_log_z": -0.45},
    "omics": {"immune_program": 1.0, "targeted_x_EGFR": 2.8, "targeted_x_KRAS": -2.0},
    "imaging": {"log_volume_z": -0.8, "heterogeneity_z": -0.6},
}
# survival: log hazard = xi (Weibull, shape WEIBULL_K, median OS about 18 months at xi = 0)
SURVIVAL = {
    "clinical": {"ecog": 0.30, "stage": 0.35, "hemoglobin_z": -0.25},
    "omics": {"proliferation_program": 0.45, "targeted_x_EGFR": -0.9, "targeted_x_KRAS": 0.3},
    "imaging": {"log_volume_z": 0.35},
    "response": -0.5,
}
WEIBULL_K = 1.3
MEDIAN_OS_MONTHS = 18.0
ADMIN_CENSOR_MONTHS = (12.0, 60.0)  # uniform end of follow-up
DROPOUT_RATE = 0.008  # per month

# imaging: tumour volume (mm^3) and heterogeneity
LOG_VOLUME_MEAN, LOG_VOLUME_SD = 8.3, 0.5  # exp(8.3) ~ 4000 mm^3
LOG_VOLUME_STAGE = 0.25  # per stage above 2.5
CONFOUNDED_LOGIT = {"intercept": -0.5, "EGFR": 3.0, "KRAS": -1.5, "ecog": -0.8}
