"""Per-patient raw features from events before each patient's index date.

Raw features depend only on the patient's own record (windows are relative to
their own index date), so they are computed once for every patient; what is
learned across patients (vocabulary, imputation, winsorising, scaling) happens
in the component's fit, on training patients only.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

# unit conversions to the canonical unit of common labs: (concept, unit) -> factor
CONVERSIONS = {
    (3016723, "umol/l"): ("mg/dl", 1 / 88.4),  # creatinine
    (3000963, "g/l"): ("g/dl", 0.1),  # hemoglobin
    (3024561, "g/l"): ("g/dl", 0.1),  # albumin
}
# plausible ranges in canonical units; values outside are flagged (then winsorised in fit)
PLAUSIBLE = {3000963: (2, 25), 3016723: (0.1, 20), 3016436: (30, 10000), 3024561: (0.5, 7)}

NEGATION = r"\b(no|not|without|negative for|absence of|ruled out|free of)\b"
DEFAULT_FINDINGS = {
    "metastasis": r"metasta",
    "pleural_effusion": r"pleural effusion",
    "egfr": r"\begfr\b",
    "kras": r"\bkras\b",
    "lymph_node": r"lymph node",
}


def window_days(window: str) -> int | None:
    """'30d' -> 30, '1y' -> 365, 'all' -> None."""
    if window == "all":
        return None
    match = re.fullmatch(r"(\d+)([dwmy])", window)
    if not match:
        raise ValueError(f"window {window!r}: use a number of days, weeks, months or years ('30d', '12m', '1y') or 'all'")
    n, unit = int(match.group(1)), match.group(2)
    return n * {"d": 1, "w": 7, "m": 30, "y": 365}[unit]


def normalise_units(events: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Convert known units to each lab's canonical unit; values in unknown units are left out (reported)."""
    report: list[str] = []
    m = events.filter(pl.col("domain") == "measurement")
    if m.height == 0:
        return events, report
    unit = pl.col("unit").str.to_lowercase().str.strip_chars()
    m = m.with_columns(unit.alias("unit"))
    # the canonical unit of a concept: its most frequent unit (a convention of the data, not a label)
    canonical = (m.filter(pl.col("unit").is_not_null()).group_by("concept", "unit").len()
                 .sort(["concept", "len", "unit"], descending=[False, True, False]).group_by("concept").first()
                 .select("concept", pl.col("unit").alias("canonical")))
    conv = pl.DataFrame([{"concept": c, "unit": u, "to": to, "factor": f} for (c, u), (to, f) in CONVERSIONS.items()],
                        schema={"concept": pl.Int64, "unit": pl.String, "to": pl.String, "factor": pl.Float64})
    m = m.join(canonical, on="concept", how="left").join(conv, on=["concept", "unit"], how="left")
    ok = (pl.col("unit").is_null() | (pl.col("unit") == pl.col("canonical")).fill_null(False)
          | (pl.col("to") == pl.col("canonical")).fill_null(False))
    unknown = m.filter(~ok & pl.col("value").is_not_null())
    if unknown.height:
        top = unknown.group_by("concept", "unit").len().sort("len", descending=True).head(5)
        listed = ", ".join(f"{u!r} for concept {c} ({n} rows)" for c, u, n in top.iter_rows())
        report.append(f"{unknown.height} measurement value(s) in units that cannot be converted to the concept's "
                      f"usual unit were left out: {listed}")
    m = m.with_columns(
        pl.when(ok).then(pl.col("value") * pl.col("factor").fill_null(1.0)).otherwise(None).alias("value"),
        pl.coalesce("canonical", "unit").alias("unit"),
    ).drop("canonical", "to", "factor")
    flags = []
    for concept, (low, high) in PLAUSIBLE.items():
        n = m.filter((pl.col("concept") == concept) & ((pl.col("value") < low) | (pl.col("value") > high))).height
        if n:
            flags.append(f"concept {concept}: {n}")
    negative = m.filter(pl.col("value") < 0).height
    if flags or negative:
        report.append("implausible lab values flagged (kept, then winsorised at the training 1st/99th percentiles): "
                      + ", ".join(flags + ([f"negative values: {negative}"] if negative else [])))
    return pl.concat([events.filter(pl.col("domain") != "measurement"), m.select(events.columns)]), report


def _label(domain: str, concept: int, names: dict[int, str]) -> str:
    return f"{domain}:{names.get(concept, concept)}"


def raw_features(
    events: pl.DataFrame, persons: pl.DataFrame, notes: pl.DataFrame, index: pl.DataFrame,
    windows: list[str], families: set[str], findings: dict[str, str], names: dict[int, str],
) -> pl.DataFrame:
    """One row per person with an index date; columns are raw (unscaled) features, NaN where unknown."""
    base = index.join(persons, on="person", how="inner")
    # half-open window: an event on the index date is follow-up, not history
    history = (events.join(index, on="person", how="inner")
               .filter(pl.col("day") < pl.col("index_day"))
               .with_columns((pl.col("index_day") - pl.col("day")).alias("delta")))
    parts = [base.select("person")]
    if "demographics" in families:
        parts.append(base.select("person", (pl.col("index_day") / 365.25 + 1970 - pl.col("year_of_birth")).alias("age"),
                                 pl.col("female").alias("sex_female")))
    long_parts = []
    for window in windows:
        days = window_days(window)
        w = history if days is None else history.filter(pl.col("delta") <= days)
        coded = w.filter(pl.col("domain").is_in([d for d in ("condition", "drug", "procedure", "observation") if d in families]))
        if coded.height:
            agg = coded.group_by("person", "domain", "concept").agg(pl.len().alias("count"), pl.col("delta").min().alias("days_since_last"))
            stats = ["count"] + (["days_since_last"] if days is None else [])
            for stat in stats:
                long_parts.append(agg.select("person", pl.concat_str([pl.col("domain"), pl.lit(":"), pl.col("concept").cast(pl.String),
                                                                      pl.lit(f":{stat}@{window}")]).alias("feature"),
                                             pl.col(stat).cast(pl.Float64).alias("value")))
        valued = w.filter((pl.col("domain") == "observation") & pl.col("text").is_not_null()) if "observation" in families else w.head(0)
        if valued.height:
            # the last recorded value of a categorical observation (smoking status: never / former / current)
            last = valued.sort("delta", descending=True).group_by("person", "concept").agg(pl.col("text").last())
            long_parts.append(last.select("person", pl.concat_str([pl.lit("observation:"), pl.col("concept").cast(pl.String),
                                                                   pl.lit(f":last={'{'}"), pl.col("text").str.to_lowercase(),
                                                                   pl.lit(f"{'}'}@{window}")]).alias("feature"),
                                          pl.lit(1.0).alias("value")))
        labs = w.filter((pl.col("domain") == "measurement") & pl.col("value").is_not_null()) if "measurements" in families else w.head(0)
        if labs.height:
            t = -pl.col("delta") / 365.25
            agg = labs.sort("delta", descending=True).group_by("person", "concept").agg(
                pl.col("value").last().alias("last"), pl.col("value").mean().alias("mean"),
                pl.col("value").min().alias("min"), pl.col("value").max().alias("max"), pl.len().cast(pl.Float64).alias("n"),
                # least-squares slope per year; NaN with fewer than two distinct times
                ((t * pl.col("value")).mean() - t.mean() * pl.col("value").mean()).alias("_cov"),
                ((t * t).mean() - t.mean() ** 2).alias("_var"),
            ).with_columns(pl.when(pl.col("_var") > 1e-12).then(pl.col("_cov") / pl.col("_var")).otherwise(None).alias("slope"))
            for stat in ("last", "mean", "min", "max", "slope", "n"):
                long_parts.append(agg.select("person", pl.concat_str([pl.lit("measurement:"), pl.col("concept").cast(pl.String),
                                                                      pl.lit(f":{stat}@{window}")]).alias("feature"),
                                             pl.col(stat).alias("value")))
    if long_parts:
        long = pl.concat(long_parts)
        wide = long.pivot(on="feature", index="person", values="value", aggregate_function="first")
        # group_by and pivot order columns by first appearance: sort them so a run is reproducible
        parts.append(wide.select("person", *sorted(c for c in wide.columns if c != "person")))
    if "notes" in families and notes.height and findings:
        parts.append(note_flags(notes.join(index, on="person").filter(pl.col("day") < pl.col("index_day")), findings))
    out = parts[0]
    for part in parts[1:]:
        out = out.join(part, on="person", how="left")
    # a concept never seen before the index date has count 0, not "unknown"
    counts = [c for c in out.columns if ":count@" in c or ":last={" in c or c.startswith("note:")]
    out = out.with_columns(pl.col(counts).fill_null(0.0)) if counts else out
    rename = {c: _readable(c, names) for c in out.columns if c != "person"}
    return out.rename(rename)


def _readable(feature: str, names: dict[int, str]) -> str:
    parts = feature.split(":")
    if len(parts) == 3 and parts[1].lstrip("-").isdigit():
        concept = int(parts[1])
        return f"{parts[0]}:{names[concept]}:{parts[2]}" if concept in names else feature
    return feature


def note_flags(notes: pl.DataFrame, findings: dict[str, str]) -> pl.DataFrame:
    """Per person and finding: affirmed (mentioned without negation) and negated mentions in notes."""
    sentences = (notes.select("person", pl.col("text").str.to_lowercase().str.extract_all(r"[^.;\n]+").alias("s"))
                 .explode("s").drop_nulls("s"))
    negated = pl.col("s").str.contains(NEGATION)
    cols = []
    for name, pattern in findings.items():
        mention = pl.col("s").str.contains(pattern)
        cols += [(mention & ~negated).cast(pl.Float64).alias(f"note:{name}:affirmed"),
                 (mention & negated).cast(pl.Float64).alias(f"note:{name}:negated")]
    return sentences.select("person", *cols).group_by("person").max().sort("person")


def index_from_concepts(events: pl.DataFrame, concepts: list[int]) -> pl.DataFrame:
    """Each person's first day with any of ``concepts``."""
    return (events.filter(pl.col("concept").is_in(concepts)).group_by("person")
            .agg(pl.col("day").min().alias("index_day")))


def to_matrix(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    present = [c for c in columns if c in frame.columns]
    out = np.full((frame.height, len(columns)), np.nan)
    if present:
        block = frame.select(pl.col(present).cast(pl.Float64)).to_numpy()
        index = {c: j for j, c in enumerate(columns)}
        out[:, [index[c] for c in present]] = block
    return out
