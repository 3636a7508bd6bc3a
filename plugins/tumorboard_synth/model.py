"""The generative model: patients' latent state, then response and survival from it.

All randomness of one chunk of patients comes from generators seeded by
``(seed, chunk, stream)``, so a cohort is the same whatever else is generated
and the chunks can be written one at a time.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from scipy.stats import norm

from . import params as P

# population constants turn raw values into the z-scores the outcome model uses
_STAGE_MEAN = float(np.dot(P.STAGE_P, [1, 2, 3, 4]))
HB_MEAN, HB_SLOPE, HB_NOISE = 13.0, -0.6, 1.2
CEA_MEAN, CEA_SLOPE, CEA_NOISE = 1.2, 0.4, 0.8
_STAGE_VAR = float(np.dot(P.STAGE_P, (np.arange(1, 5) - _STAGE_MEAN) ** 2))


def _pop_mean(intercept: float, slope: float) -> float:
    """Population mean of ``intercept + slope * (stage - 2.5)``."""
    return intercept + slope * (_STAGE_MEAN - 2.5)


def draw_patients(rng: np.random.Generator, start: int, n: int, confounded: bool) -> dict[str, np.ndarray]:
    """Baseline state of patients ``start .. start+n-1``: demographics, disease, omics and imaging latents."""
    idx = np.arange(start, start + n)
    age = np.clip(rng.normal(64, 10, n), 30, 90).round(0)
    sex = np.where(rng.random(n) < 0.5, "female", "male")
    race = rng.choice(list(P.RACE), n, p=[0.70, 0.15, 0.10, 0.05])
    hispanic = rng.random(n) < 0.10
    site = rng.choice(P.SITES, n, p=P.SITE_P)
    smoking = rng.choice(P.SMOKING, n, p=P.SMOKING_P)
    stage = rng.choice([1, 2, 3, 4], n, p=P.STAGE_P)
    ecog_latent = 0.03 * (age - 64) + 0.35 * (stage - 2.5) + rng.standard_normal(n)
    ecog = np.digitize(ecog_latent, [-0.4, 0.7, 1.6])
    comorbid = {c: rng.random(n) < prevalence for c, prevalence in P.COMORBIDITIES.items()}
    # COPD follows smoking: half the prevalence in never smokers, 1.3x in others
    copd = P.LOCAL + 11
    comorbid[copd] = rng.random(n) < P.COMORBIDITIES[copd] * np.where(smoking == "never", 0.5, 1.3)

    hemoglobin = HB_MEAN + HB_SLOPE * (stage - 2.5) + rng.normal(0, HB_NOISE, n)
    log_cea = CEA_MEAN + CEA_SLOPE * (stage - 2.5) + rng.normal(0, CEA_NOISE, n)
    ckd = comorbid[443597]
    creatinine = 0.9 * np.exp(rng.normal(0, 0.2, n)) + 0.6 * ckd
    ldh = 190 * np.exp(0.15 * (stage - 2.5) + rng.normal(0, 0.25, n))
    albumin = 4.1 - 0.2 * ecog + rng.normal(0, 0.35, n)

    never = smoking == "never"
    asian = race == "asian"
    p_egfr = expit(-2.6 + 1.3 * never + 1.0 * asian)
    egfr = rng.random(n) < p_egfr
    kras = ~egfr & (rng.random(n) < np.where(never, 0.12, 0.36))
    mutations = {"EGFR": egfr, "KRAS": kras}
    for gene, freq in P.DRIVERS.items():
        if gene not in mutations:
            mutations[gene] = rng.random(n) < freq

    programs = rng.standard_normal((n, len(P.PROGRAMS)))
    programs[:, 1] += 0.3 * (stage - 2.5)  # proliferation rises with stage
    programs[:, 2] += 1.2 * egfr  # EGFR signalling in EGFR-mutant tumours

    log_volume = P.LOG_VOLUME_MEAN + P.LOG_VOLUME_STAGE * (stage - 2.5) + P.LOG_VOLUME_SD * rng.standard_normal(n)
    het_latent = rng.standard_normal(n) + 0.3 * programs[:, 1]
    irregularity = norm.cdf(0.5 * het_latent + 0.87 * rng.standard_normal(n))
    has_scan = rng.random(n) >= 0.10

    if confounded:
        c = P.CONFOUNDED_LOGIT
        # as a physician would choose: the drug for EGFR-mutant, fit patients; not for KRAS-mutant ones
        logit = c["intercept"] + c["EGFR"] * egfr + c["KRAS"] * kras + c["ecog"] * (ecog - 1)
        targeted = rng.random(n) < expit(logit)
    else:
        targeted = rng.random(n) < 0.5
    return {
        "index": idx, "age": age, "sex": sex, "race": race, "hispanic": hispanic, "site": site,
        "smoking": smoking, "stage": stage, "ecog": ecog, "comorbid": comorbid,
        "hemoglobin": hemoglobin, "log_cea": log_cea, "creatinine": creatinine, "ldh": ldh, "albumin": albumin,
        "mutations": mutations, "programs": programs, "log_volume": log_volume,
        "heterogeneity": norm.cdf(het_latent / np.sqrt(1.09)), "het_latent": het_latent,
        "irregularity": irregularity, "has_scan": has_scan, "targeted": targeted,
    }


def standardised(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The z-scores the outcome model reads (population constants, not sample statistics)."""
    stage = p["stage"]
    hb_sd = np.sqrt(HB_NOISE**2 + HB_SLOPE**2 * _STAGE_VAR)
    cea_sd = np.sqrt(CEA_NOISE**2 + CEA_SLOPE**2 * _STAGE_VAR)
    vol_sd = np.sqrt(P.LOG_VOLUME_SD**2 + P.LOG_VOLUME_STAGE**2 * _STAGE_VAR)
    return {
        "ecog": p["ecog"] - 1.0,
        "stage": stage - 2.5,
        "hemoglobin_z": (p["hemoglobin"] - _pop_mean(HB_MEAN, HB_SLOPE)) / hb_sd,
        "cea_log_z": (p["log_cea"] - _pop_mean(CEA_MEAN, CEA_SLOPE)) / cea_sd,
        "log_volume_z": (p["log_volume"] - _pop_mean(P.LOG_VOLUME_MEAN, P.LOG_VOLUME_STAGE)) / vol_sd,
        "heterogeneity_z": p["het_latent"] / np.sqrt(1.09),
    }


def response_components(p: dict[str, np.ndarray], targeted: np.ndarray) -> dict[str, np.ndarray]:
    """Each modality's additive part of the response log-odds under a given arm."""
    z = standardised(p)
    c, o, i = P.RESPONSE["clinical"], P.RESPONSE["omics"], P.RESPONSE["imaging"]
    t = targeted.astype(float)
    return {
        "clinical": c["ecog"] * z["ecog"] + c["stage"] * z["stage"] + c["hemoglobin_z"] * z["hemoglobin_z"]
        + c["cea_log_z"] * z["cea_log_z"],
        "omics": o["immune_program"] * p["programs"][:, 0]
        + t * (o["targeted_x_EGFR"] * p["mutations"]["EGFR"] + o["targeted_x_KRAS"] * p["mutations"]["KRAS"]),
        "imaging": i["log_volume_z"] * z["log_volume_z"] + i["heterogeneity_z"] * z["heterogeneity_z"],
    }


def outcomes(rng: np.random.Generator, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Response, survival and the per-patient truth (probabilities under each arm, best arm)."""
    n = len(p["index"])
    parts = response_components(p, p["targeted"])
    eta = P.B0 + parts["clinical"] + parts["omics"] + parts["imaging"]
    prob = expit(eta)
    response = rng.random(n) < prob
    p_arm = {arm: expit(P.B0 + sum(response_components(p, np.full(n, arm == "targeted")).values())) for arm in P.ARMS}
    effect = p_arm["targeted"] - p_arm["chemo"]
    # ties (no planted effect) go to the reference arm, the standard of care
    best = np.where(effect > 1e-12, "targeted", "chemo")

    z = standardised(p)
    s = P.SURVIVAL
    t = p["targeted"].astype(float)
    xi_parts = {
        "clinical": s["clinical"]["ecog"] * z["ecog"] + s["clinical"]["stage"] * z["stage"]
        + s["clinical"]["hemoglobin_z"] * z["hemoglobin_z"],
        "omics": s["omics"]["proliferation_program"] * p["programs"][:, 1]
        + t * (s["omics"]["targeted_x_EGFR"] * p["mutations"]["EGFR"] + s["omics"]["targeted_x_KRAS"] * p["mutations"]["KRAS"]),
        "imaging": s["imaging"]["log_volume_z"] * z["log_volume_z"],
    }
    xi = sum(xi_parts.values()) + s["response"] * response
    lam0 = np.log(2) / P.MEDIAN_OS_MONTHS**P.WEIBULL_K
    death = (-np.log(rng.random(n)) / (lam0 * np.exp(xi))) ** (1 / P.WEIBULL_K)
    admin = rng.uniform(*P.ADMIN_CENSOR_MONTHS, n)
    dropout = rng.exponential(1 / P.DROPOUT_RATE, n)
    censor = np.minimum(admin, dropout)
    event = death <= censor
    time = np.maximum(np.minimum(death, censor), 0.1).round(2)
    return {
        "eta": eta, "eta_parts": parts, "prob": prob, "response": response,
        "p_chemo": p_arm["chemo"], "p_targeted": p_arm["targeted"], "effect": effect, "best": best,
        "xi": xi, "xi_parts": xi_parts, "os_months": time, "os_event": event,
    }
