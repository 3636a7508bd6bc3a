"""The patient card: one patient's prediction, where it sits in the cohort, and why.

``tumorboard explain RUN_DIR --patient ID`` writes it as a self-contained
HTML file. It names the patient only by a short reference, an HMAC of the
study id keyed with the run's own random secret (``card-key.txt`` in the run
directory): a card shared without its run cannot be mapped back to an id by
hashing every id of a known format.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import polars as pl

from tumorboard.api import RunFiles, TumorboardError, atomic_write_text, patient_reference, safe_output_file

from .figures import BLUE, GREY, ORANGE, PALETTE, RED, embed, figure, fmt, page, readable, table
from .report import oof_scores


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _prediction(run: RunFiles, scores: pl.DataFrame, patient: str) -> tuple[str, float]:
    """The headline: the out-of-fold prediction with an interval the cohort supports, and its value."""
    row = scores.filter(pl.col("patient_id") == patient)
    value = float(row["score"][0])
    all_scores = scores["score"].to_numpy()
    task = run.task
    if task == "binary":
        # an interval for this patient: what happened to cohort patients with a similar predicted probability
        order = np.argsort(np.abs(all_scores - value))[: max(30, len(all_scores) // 10)]
        outcomes = scores["y_true"].to_numpy()[order].astype(int)
        low, high = _wilson(int(outcomes.sum()), len(outcomes))
        detail = (f"Among the {len(order)} cohort patients with the closest predicted probabilities "
                  f"({fmt(all_scores[order].min(), 2)}–{fmt(all_scores[order].max(), 2)}), "
                  f"{int(outcomes.sum())} responded: an observed rate of {fmt(outcomes.mean(), 2)} "
                  f"(95% CI {fmt(low, 2)}–{fmt(high, 2)}, Wilson).")
        headline = f"predicted probability of {html.escape(str(run.spec.get('cohort', {}).get('target', 'the outcome')))}"
    elif task == "regression":
        residual = scores["y_true"].to_numpy() - all_scores
        low, high = np.quantile(residual, [0.025, 0.975])
        detail = (f"95% prediction interval {fmt(value + low, 2)} to {fmt(value + high, 2)} "
                  "(the 2.5th and 97.5th percentiles of the cohort's out-of-fold errors added to the prediction).")
        headline = "predicted value"
    else:
        rank = float((all_scores < value).mean())
        detail = f"Higher than the predicted {'risk' if task == 'survival' else 'score'} of {rank:.0%} of the cohort."
        headline = "predicted risk score" if task == "survival" else "top class probability"
    text = (f"<p class=\"big\">{fmt(value, 2)}</p><p>{headline} (out of fold: from a model that never saw this "
            f"patient)</p><p>{detail}</p>")
    return text, value


def _position(scores: pl.DataFrame, value: float, task: str) -> str:
    all_scores = scores["score"].to_numpy()
    fig, ax = figure(5.0, 2.6)
    ax.hist(all_scores, bins=30, color=GREY, alpha=0.7)
    ax.axvline(value, color=RED, lw=2.5, label="this patient")
    ax.legend(frameon=False, fontsize=8)
    ax.set(xlabel={"binary": "predicted probability", "survival": "predicted risk"}.get(task, "prediction"),
           ylabel="patients")
    percentile = float((all_scores < value).mean())
    return embed(fig, "the patient's prediction in the cohort's distribution") + (
        f"<p>Higher than {percentile:.0%} of the {len(all_scores)} cohort patients' out-of-fold predictions.</p>")


def _contributions(run: RunFiles, patient: str) -> str:
    found = run.attribution("explain.shap")
    values = run.per_patient("explain.shap")
    if found is None or values is None or patient not in set(values["patient_id"]):
        why = ("the run has no explain.shap explainer (add one to the spec)" if found is None else
               "the patient was not in explain.shap's sample (raise its max_patients)")
        return f"<p class=\"note\">No SHAP values for this patient: {why}.</p>"
    summary = found[1]
    row = values.filter(pl.col("patient_id") == patient).drop("patient_id")
    phi = row.to_numpy()[0]
    names = row.columns
    top = np.argsort(-np.abs(phi))[:10]
    fig, ax = figure(7.0, 0.36 * len(top) + 1.1)
    labels = [readable(names[j], run.feature_labels()) for j in top][::-1]
    ax.barh(labels, phi[top][::-1], color=[RED if v > 0 else BLUE for v in phi[top][::-1]])
    ax.axvline(0, color=GREY, lw=1)
    ax.tick_params(axis="y", labelsize=8)
    ax.set(xlabel=f"contribution ({summary.get('units') or 'model output'})")
    baseline = summary.get("baseline")
    final = (baseline or 0.0) + float(phi.sum())
    note = ""
    if baseline is not None and run.task == "binary":
        note = (f"<p class=\"note\">These explain the final model, refitted on every patient including this one; "
                f"it gives this patient {fmt(1 / (1 + np.exp(-final)), 2)} (the cohort's average log-odds "
                f"{fmt(baseline, 2)} plus these contributions, sum {fmt(phi.sum(), 2)}). A gap to the out-of-fold "
                "figure above is the model fitting patients it has seen. Red raises the predicted probability, "
                "blue lowers it.</p>")
    rows = [(readable(names[j], run.feature_labels()), fmt(phi[j], 3), "raises" if phi[j] > 0 else "lowers") for j in top]
    return embed(fig, "top contributing features") + note + table(["feature", "contribution", "direction"], rows)


def _modalities(run: RunFiles, patient: str) -> str:
    out = ""
    shares = run.per_patient("explain.shap", "modalities")
    if shares is not None and patient in set(shares["patient_id"]):
        row = shares.filter(pl.col("patient_id") == patient).drop("patient_id")
        names, values = row.columns, row.to_numpy()[0]
        fig, ax = figure(4.6, 0.45 * len(names) + 0.9)
        ax.barh(names[::-1], values[::-1], color=[PALETTE[k % len(PALETTE)] for k in range(len(names))][::-1])
        ax.set(xlim=(0, 1), xlabel="share of this patient's absolute attribution")
        out += embed(fig, "modality shares for this patient")
    presence_path = run.folder / "presence.parquet"
    if presence_path.is_file():
        presence = pl.read_parquet(presence_path).filter(pl.col("patient_id") == patient).drop("patient_id")
        absent = [c for c in presence.columns if not bool(presence[c][0])]
        out += ("<p><b>Missing data:</b> " + (", ".join(html.escape(a) for a in absent) + " not available for this "
                "patient (the model treated them as absent)." if absent else "every modality is available.") + "</p>")
    features = run.per_patient("explain.shap", "features")
    if features is not None and patient in set(features["patient_id"]):
        row = features.filter(pl.col("patient_id") == patient)
        # "days since last" of a condition or drug is missing when there was none: not a missing measurement
        missing = [c for c in row.columns if c.endswith("__missing") and "days_since" not in c
                   and row[c][0] is not None and float(row[c][0]) > 0]
        if missing:
            out += "<p>Missing measurements (imputed): " + ", ".join(
                html.escape(readable(c, run.feature_labels()).removesuffix(" is missing").replace(" is missing (", " (")) for c in missing[:12]) + (
                f" and {len(missing) - 12} more" if len(missing) > 12 else "") + ".</p>"
    return out


def _saliency(run: RunFiles, patient: str) -> str:
    path = run.folder / "attributions" / "explain.saliency-images.npz"
    if not path.is_file():
        return ""
    parts: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as stored:
        for key in stored.files:  # modality/patient/part
            modality, pid, part = key.split("/", 2)
            if pid == patient:
                parts.setdefault(modality, {})[part] = stored[key]
    out = ""
    for modality, arrays in parts.items():
        if "tile_attention" in arrays:
            out += _tiles(modality, arrays)
            continue
        image, saliency, mask = arrays["image"], arrays["saliency"], arrays.get("mask")
        fig, ax = figure(4.4, 4.4)
        ax.imshow(image, cmap="gray")
        positive = np.clip(saliency, 0, None)
        if positive.max() > 0:
            ax.imshow(np.ma.masked_less_equal(positive, 0.05 * positive.max()), cmap="hot", alpha=0.6)
        if mask is not None and mask.any():
            ax.contour(mask, [0.5], colors=[ORANGE], linewidths=1.5)
        ax.set_axis_off()
        inside, share = float(arrays.get("inside", np.nan)), float(arrays.get("mask_share", np.nan))
        support = float(arrays.get("support_share", np.nan))
        out += "<div>" + embed(fig, f"saliency overlay on the {modality} slice with the largest tumour area") + (
            f"<p class=\"note\">{html.escape(modality)}: the slice with the largest tumour area; hot colours mark "
            f"voxels that pushed the imaging network towards its prediction (integrated gradients), the orange line "
            f"the tumour mask. {fmt(inside, 2) if np.isfinite(inside) else 'n/a'} of the positive attribution mass "
            f"lies inside the mask, which covers {fmt(share, 2) if np.isfinite(share) else 'n/a'} of the network's "
            "input" + (f" and {fmt(support, 2)} of the voxels that can carry attribution (those that differ from "
                       "the reference image)" if np.isfinite(support) else "") + ".</p></div>")
    return f"<div class=\"grid\">{out}</div>" if out else ""


def _tiles(modality: str, arrays: dict[str, np.ndarray]) -> str:
    """A slide modality's most-attended tiles: where they are, and how much of the attention each drew."""
    weights = arrays["tile_attention"]
    rows = [[str(k + 1), str(int(arrays["tile_slide"][k])), fmt(float(arrays["tile_x"][k]), 0),
             fmt(float(arrays["tile_y"][k]), 0), fmt(float(w), 3)] for k, w in enumerate(weights)]
    total = arrays.get("tile_count")
    count = int(total) if total is not None and np.isfinite(total) else None
    return ("<div>" + table(["rank", "slide", "x (px)", "y (px)", "attention"], rows) +
            f"<p class=\"note\">{html.escape(modality)}: the tiles the attention pool weighted most for this patient "
            f"(slide: its place among the patient's slides in the manifest; x, y: the tile's level-0 pixel "
            f"position). Together they drew {fmt(float(weights.sum()), 2)} of the patient's attention"
            + (f", spread over {count} tiles" if count else "") + ".</p></div>")


def patient_card(folder: Path, patient: str, out: Path | None = None, overwrite: bool = False) -> Path:
    """Write the card of ``patient`` for the run in ``folder``; return its path.

    An explicit ``out`` never replaces an existing file unless ``overwrite``,
    and never a file of the run or one of its inputs.
    """
    run = RunFiles(folder)
    if out is not None:
        safe_output_file(out, overwrite, run.folder)
    scores = oof_scores(run)
    if patient not in set(scores["patient_id"]):
        raise TumorboardError(f"{folder}: patient {patient!r} has no out-of-fold prediction in this run "
                       "(check the id against the cohort's outcomes table)")
    ref = patient_reference(folder, patient)
    prediction, value = _prediction(run, scores, patient)
    name = run.spec.get("run", {}).get("name", Path(folder).name)
    sections = [
        ("Prediction", prediction),
        ("Where this patient sits in the cohort", _position(scores, value, run.task)),
        ("Top contributing features", _contributions(run, patient)),
        ("Modalities and missing data", _modalities(run, patient)),
        ("Imaging saliency and attended tiles", _saliency(run, patient)),
    ]
    text = page(f"Patient card, reference {ref}",
                f"run {name}; the reference is keyed with this run's secret and cannot be traced to the study id "
                "without the run directory", sections)
    target = out or Path(folder) / "cards" / f"card-{ref}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    return target
