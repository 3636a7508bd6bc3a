"""The cohort report (``report.cohort``): one self-contained HTML file per run, ``report.html``.

A reporter: tumorboard renders it into the run directory after the run's
results are saved, and ``tumorboard report RUN_DIR`` redraws it. Reads only
what the run wrote (metrics.json, predictions.parquet,
provenance.json, resolved.json, attributions/), so ``tumorboard report
RUN_DIR`` can redraw it at any time. It lists no patient identifiers.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import polars as pl

from tumorboard.api import Reporter, RunFiles

from .figures import BLUE, GREY, ORANGE, PALETTE, RED, embed, figure, fmt, interval, page, readable, table

REPORT_NAME = "report.html"


def oof_scores(run: RunFiles) -> pl.DataFrame:
    """Each patient's out-of-fold test prediction, averaged over repeats.

    ``score`` is the probability (binary), the predicted value (regression),
    the risk (survival) or the top class probability (multiclass).
    """
    frame = run.predictions().filter(pl.col("set") == "test")
    probabilities = [c for c in frame.columns if c.startswith("p_")]
    score = pl.max_horizontal(probabilities) if run.task == "multiclass" else pl.col("y_pred")
    truth = [c for c in ("y_true", "event") if c in frame.columns]
    return (frame.with_columns(score.alias("score")).group_by("patient_id", maintain_order=True)
            .agg(pl.col("score").mean(), *[pl.col(c).first() for c in truth]))


# --- sections ----------------------------------------------------------------------------------

def _summary(run: RunFiles) -> str:
    spec, m = run.spec, run.metrics
    modalities = ", ".join(f"{x['name']} ({x['plugin']})" for x in spec.get("modality", []))
    rows = [("task", run.task), ("target", str(spec.get("cohort", {}).get("target", ""))),
            ("patients scored", fmt(m.get("n"))), ("validation", f"{m.get('strategy', '')}, {m.get('folds', '')} folds"),
            ("modalities", modalities), ("fusion", spec.get("fusion", {}).get("plugin", "")),
            ("model", spec.get("model", {}).get("plugin", ""))]
    if m.get("search"):
        rows.append(("hyperparameter search", f"nested: {', '.join(m['search']['selections'])} chosen per outer fold "
                     "(see Hyperparameter search)"))
    return table(["", ""], rows) + ("<p class=\"note\">Every figure below is computed on out-of-fold predictions: "
                                    "each patient scored by a model that never saw them.</p>")


def _performance(run: RunFiles) -> str:
    m = run.metrics
    level = int(round(100 * float(m.get("confidence", 0.95))))
    per_fold = m.get("per_fold", {})
    rows = [(name, interval(entry), f"{fmt(per_fold[name]['mean'])} ± {fmt(per_fold[name]['sd'])}" if name in per_fold else "")
            for name, entry in m.get("overall", {}).items()]
    out = table(["metric", f"value ({level}% CI, bootstrap)", "per fold: mean ± SD"], rows)
    for name, entry in m.get("sets", {}).items():
        out += f"<p>{html.escape(name)} set: " + ", ".join(f"{k} {interval(v)}" for k, v in entry.items()) + "</p>"
    return out


def _curves(run: RunFiles) -> str:
    curves, task = run.metrics.get("curves", {}), run.task
    images = []
    if "roc" in curves:
        fig, ax = figure(4.2, 3.6)
        ax.plot(curves["roc"]["fpr"], curves["roc"]["tpr"], color=BLUE, lw=2)
        ax.plot([0, 1], [0, 1], color=GREY, ls="--", lw=1)
        ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=f"ROC (AUROC {interval(run.metrics['overall'].get('auroc'))})")
        images.append(embed(fig, "ROC curve"))
    if "pr" in curves:
        fig, ax = figure(4.2, 3.6)
        ax.plot(curves["pr"]["recall"], curves["pr"]["precision"], color=ORANGE, lw=2)
        ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", ylim=(0, 1.02), title="Precision-recall")
        images.append(embed(fig, "precision-recall curve"))
    if "reliability" in curves:
        r = curves["reliability"]
        fig, ax = figure(4.2, 3.6)
        ax.plot([0, 1], [0, 1], color=GREY, ls="--", lw=1)
        ax.plot(r["predicted"], r["observed"], "o-", color=BLUE)
        ece = curves.get("calibration", {}).get("ece")
        ax.set(xlabel="predicted probability", ylabel="observed rate", title=f"Calibration (ECE {fmt(ece)})")
        images.append(embed(fig, "calibration curve"))
    if "risk_groups" in curves:
        groups = curves["risk_groups"]
        fig, ax = figure(5.2, 3.6)
        for k, g in enumerate(groups["groups"]):
            ax.step([0, *g["km_time"]], [1.0, *g["km_survival"]], where="post", color=PALETTE[k % len(PALETTE)],
                    label=f"{g['name']} (n={g['n']}, {g['events']} events)")
        p = groups.get("logrank", {}).get("p_value")
        ax.set(xlabel="time", ylabel="survival probability", ylim=(0, 1.02),
               title="Kaplan-Meier by predicted risk group" + (f" (log-rank p = {p:.2g})" if p is not None else ""))
        ax.legend(fontsize=8, frameon=False)
        images.append(embed(fig, "Kaplan-Meier curves by risk group"))
    if task == "regression":
        scores = oof_scores(run)
        fig, ax = figure(4.2, 3.6)
        ax.scatter(scores["y_true"], scores["score"], s=8, color=BLUE, alpha=0.6)
        ax.set(xlabel="observed", ylabel="predicted (out of fold)", title="Predicted against observed")
        images.append(embed(fig, "predicted against observed"))
    return "<div class=\"grid\">" + "".join(f"<div>{i}</div>" for i in images) + "</div>" if images else ""


def _drivers(run: RunFiles) -> str:
    shap = run.attribution("explain.shap")
    if shap is not None:
        return _shap_summary(run, shap[0], shap[1])
    for method in run.explainers():
        found = run.attribution(method)
        if found is not None and len(found[0]):
            top = found[0].head(15)
            fig, ax = figure(6.0, 0.3 * len(top) + 1.0)
            ax.barh([readable(f, run.feature_labels()) for f in top["feature"]][::-1], top["importance"].to_list()[::-1], color=BLUE)
            ax.set(xlabel=f"importance ({method})")
            return embed(fig, f"feature importance by {method}")
    return ""


def _shap_summary(run: RunFiles, overall: pl.DataFrame, summary: dict[str, Any]) -> str:
    values = run.per_patient("explain.shap")
    features = run.per_patient("explain.shap", "features")
    top = overall.head(15)["feature"].to_list()
    fig, ax = figure(7.2, 0.34 * len(top) + 1.2)
    rng = np.random.default_rng(0)
    for row, name in enumerate(reversed(top)):
        phi = values[name].to_numpy() if values is not None else np.zeros(0)
        colour = BLUE
        if features is not None and name in features.columns:
            x = features[name].to_numpy().astype(float)
            lo, hi = np.nanpercentile(x, [5, 95]) if np.isfinite(x).any() else (0.0, 1.0)
            colour = np.clip((x - lo) / ((hi - lo) or 1.0), 0, 1)
        ax.scatter(phi, row + rng.uniform(-0.28, 0.28, len(phi)), c=colour, cmap="coolwarm", vmin=0, vmax=1, s=6, alpha=0.7)
    ax.axvline(0, color=GREY, lw=1)
    ax.set_yticks(range(len(top)), [readable(f, run.feature_labels()) for f in reversed(top)], fontsize=8)
    ax.set(xlabel=f"SHAP value ({summary.get('units') or 'model output'})")
    out = embed(fig, "SHAP summary: per-patient contributions of the 15 most important features") + (
        "<p class=\"note\">One dot per patient; colour is the feature's value (blue low, red high); right of the "
        "line raises the prediction, left lowers it.</p>")
    shares = summary.get("modality_shares")
    if shares:
        fig, ax = figure(4.6, 0.45 * len(shares) + 1.0)
        names = list(shares)
        ax.barh(names[::-1], [shares[n] for n in names][::-1], color=[PALETTE[k % len(PALETTE)] for k in range(len(names))][::-1])
        for y, n in enumerate(names[::-1]):
            ax.text(shares[n], y, f" {shares[n]:.0%}", va="center", fontsize=9)
        ax.set(xlabel="share of absolute SHAP attribution", xlim=(0, 1))
        out += "<div class=\"grid\"><div>" + embed(fig, "modality shares of the attribution") + "</div><div>" + (
            "<p class=\"note\">Each modality's share of the absolute SHAP values, pooled over patients "
            "(per-patient shares are on each patient card). A modality with many weak features (thousands of "
            "genes) collects small attributions from each, so its share reads high next to a few strong "
            "clinical features.</p>") + "</div></div>"
    return out


def _subgroups(run: RunFiles) -> str:
    m = run.metrics
    subgroups = m.get("subgroups") or {}
    if not subgroups:
        return ""
    primary = next(iter(m.get("overall", {})), None)
    rows, labels, points = [], [], []
    for column, levels in subgroups.items():
        for level, metrics in levels.items():
            entry = metrics.get(primary, {})
            rows.append((column, level, fmt(entry.get("n")), interval(entry)))
            labels.append(f"{column} = {level}")
            points.append((entry.get("value"), entry.get("ci_low"), entry.get("ci_high")))
    out = table(["subgroup", "level", "patients", f"{primary} (CI)"], rows)
    gaps = m.get("subgroup_gaps") or {}
    if gaps:
        out += "<p>Largest gap between levels (" + html.escape(primary or "") + "): " + ", ".join(
            f"{html.escape(c)} {fmt(g.get(primary))}" for c, g in gaps.items()) + "</p>"
    odds = m.get("equalized_odds") or {}
    if odds:
        out += "<p>Equalized-odds difference (largest TPR or FPR gap at threshold 0.5): " + ", ".join(
            f"{html.escape(c)} {fmt(v.get('difference'))}" for c, v in odds.items()) + "</p>"
    usable = [(label, p) for label, p in zip(labels, points, strict=True) if p[0] is not None]
    if usable:
        fig, ax = figure(6.0, 0.3 * len(usable) + 1.0)
        for y, (_, (v, lo, hi)) in enumerate(reversed(usable)):
            ax.plot([lo if lo is not None else v, hi if hi is not None else v], [y, y], color=GREY)
            ax.plot(v, y, "o", color=BLUE)
        overall = m["overall"].get(primary, {}).get("value")
        if overall is not None:
            ax.axvline(overall, color=RED, ls="--", lw=1, label="whole cohort")
            ax.legend(fontsize=8, frameon=False)
        ax.set_yticks(range(len(usable)), [label for label, _ in reversed(usable)], fontsize=8)
        ax.set(xlabel=f"{primary} with CI")
        out += embed(fig, "subgroup forest plot")
    return out


def _ablation(run: RunFiles) -> str:
    ablation = run.metrics.get("ablation")
    if not ablation:
        return ""
    primary = ablation["primary_metric"]
    full = run.metrics["overall"][primary]
    labels = ["all modalities", *ablation["subsets"]]
    entries = [full, *(s["metrics"][primary] for s in ablation["subsets"].values())]
    fig, ax = figure(6.0, 0.35 * len(labels) + 1.0)
    for y, (label, e) in enumerate(zip(labels[::-1], entries[::-1], strict=True)):
        ax.plot([e["ci_low"], e["ci_high"]], [y, y], color=GREY)
        ax.plot(e["value"], y, "o", color=RED if label == "all modalities" else BLUE)
    ax.set_yticks(range(len(labels)), labels[::-1], fontsize=9)
    ax.set(xlabel=f"{primary} with CI")
    rows = [(label, interval(s["metrics"][primary]), interval(s["gain"][primary]))
            for label, s in ablation["subsets"].items()]
    return embed(fig, "modality ablation") + table(["modalities", primary, "gain of all modalities (paired CI)"], rows)


def _search(run: RunFiles) -> str:
    search = run.metrics.get("search")
    if not search:
        return ""
    keys = list(search["selections"])
    out = (f"<p>Each outer fold's configuration was chosen by {search['sampler']} search on "
           f"{html.escape(search['metric'])} ({search['direction']}) over {search['inner_folds']} inner folds of that "
           "fold's training patients only; the refit's by its own search on all patients. The performance above is "
           "the outer folds': it includes the search.</p>")
    rows = [(label, fmt(entry["inner_score"]), f"{entry['complete']} / {entry['pruned']} / {entry['fail']}",
             *(_value(entry["params"].get(k)) for k in keys)) for label, entry in search["searches"].items()]
    out += table(["search", f"best inner {search['metric']}", "trials complete / pruned / failed", *keys], rows)
    unstable = [k for k, v in search["selections"].items() if not v["stable"]]
    if unstable:
        out += (f"<p class='warn'>Unstable across outer folds: {html.escape(', '.join(unstable))}. Several values "
                "score alike; the refit's value is one of them.</p>")
    if search.get("importance"):
        rows = [(k, fmt(v)) for k, v in sorted(search["importance"].items(), key=lambda kv: -kv[1])]
        out += "<p>Parameter importance in the refit's search (fANOVA, Optuna):</p>" + table(["parameter", "importance"], rows)
    return out + "<p class='note'>Every trial: search/trials.parquet.</p>"


def _value(value: Any) -> str:
    """A selected parameter value for a table cell (table() escapes it)."""
    if value is None:
        return "(not used)"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _provenance(run: RunFiles) -> str:
    p = run.provenance
    plugins = ", ".join(f"{name} {info.get('version', '')}" for name, info in p.get("plugins", {}).items())
    rows = [("tumorboard", p.get("tumorboard", "")), ("plugins", plugins), ("Python", p.get("python", "")),
            ("platform", p.get("platform", "")), ("seed", p.get("seed", "")),
            ("input files (SHA-256 in provenance.json)", len(p.get("inputs_sha256", {}))),
            ("started", p.get("started", "")), ("finished", p.get("finished", ""))]
    out = table(["", ""], rows)
    warnings = run.metrics.get("warnings") or []
    if warnings:
        out += "<p class=\"warn\">Warnings of this run:</p><ul>" + "".join(
            f"<li class=\"warn\">{html.escape(w)}</li>" for w in warnings) + "</ul>"
    return out


def _tripod(run: RunFiles) -> str:
    from .tripod import checklist

    items, _ = checklist(run)
    filled = [(item, text) for item, text in items if text]
    todo = [item.number for item, text in items if not text]
    return (f"<p>{len(filled)} of {len(items)} TRIPOD+AI items are answered from this run's files (tripod_ai.md, "
            f"model_card.md); items {', '.join(todo)} are for the study team.</p>"
            + table(["item", "topic", "from this run"], [(i.number, i.topic, text) for i, text in filled]))


class CohortReport(Reporter):
    """The run's cohort report: performance with intervals, curves, drivers, subgroup audit, ablation, search,
    provenance."""

    name = "report.cohort"
    output = REPORT_NAME
    requires = ("matplotlib",)
    install = 'pip install "tumorboard[report]"'

    def render(self, run: RunFiles) -> str:
        name = run.spec.get("run", {}).get("name", run.folder.name)
        sections = [
            ("Summary", _summary(run)),
            ("Performance", _performance(run)),
            ("Curves", _curves(run)),
            ("What drives the predictions", _drivers(run)),
            ("Subgroup audit", _subgroups(run)),
            ("Modality ablation", _ablation(run)),
            ("Hyperparameter search", _search(run)),
            ("TRIPOD+AI", _tripod(run)),
            ("Provenance", _provenance(run)),
        ]
        return page(f"tumorboard cohort report: {name}", f"{run.task} task, {fmt(run.metrics.get('n'))} patients",
                    sections)
