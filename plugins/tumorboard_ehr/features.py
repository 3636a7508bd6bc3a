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

from .segments import assemble, coded_stats, dense_lab_blocks, lab_stats, segment_table
from .segments import scatter as segment_scatter

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
    if m["unit"].n_unique() <= 1:
        # a single unit string (or none) everywhere: nothing to convert or to reject
        return events, report + _flags(m)
    events = events.with_columns(pl.col("unit").cast(pl.String))
    m = m.with_columns(pl.col("unit").cast(pl.String))
    pairs = m.select("concept", "unit").unique()
    known = {(c, u) for c, u in CONVERSIONS}
    if pairs["concept"].n_unique() == pairs.height and not any(
            (c, (u or "").lower()) in known for c, u in pairs.iter_rows()):
        # one unit per lab and nothing to convert: only the plausibility flags below apply
        return events, report + _flags(m)
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
    report += _flags(m)
    return pl.concat([events.filter(pl.col("domain") != "measurement"), m.select(events.columns)]), report


def _flags(m: pl.DataFrame) -> list[str]:
    """Implausible lab values: outside known plausible ranges, or negative."""
    flags = []
    for concept, (low, high) in PLAUSIBLE.items():
        n = m.filter((pl.col("concept") == concept) & ((pl.col("value") < low) | (pl.col("value") > high))).height
        if n:
            flags.append(f"concept {concept}: {n}")
    negative = m.filter(pl.col("value") < 0).height
    if flags or negative:
        return ["implausible lab values flagged (kept, then winsorised at the training 1st/99th percentiles): "
                + ", ".join(flags + ([f"negative values: {negative}"] if negative else []))]
    return []


def _history(events: pl.DataFrame, base: pl.DataFrame) -> pl.DataFrame:
    """Events strictly before each patient's index date, with their patient row and days before the index."""
    person = base["person"].to_numpy()
    top = int(person.max()) + 1 if len(person) else 1
    if top <= 50_000_000 and events["person"].min() is not None and events["person"].min() >= 0:
        # persons are small integers: look rows and index dates up in arrays, no join of millions of rows
        row_of = np.full(max(top, int(events["person"].max()) + 1), -1, dtype=np.int64)
        row_of[person] = np.arange(len(person))
        index_day = base["index_day"].to_numpy().astype(np.int64)
        row = row_of[events["person"].to_numpy()]
        known = row >= 0
        delta = np.where(known, index_day[np.where(known, row, 0)] - events["day"].to_numpy(), -1)
        keep = known & (delta > 0)  # half-open window: an event on the index date is follow-up, not history
        return events.filter(pl.Series(keep)).with_columns(pl.Series("_row", row[keep]), pl.Series("delta", delta[keep]))
    rows = base.select("person", "index_day").with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    return (events.join(rows, on="person", how="inner")
            # half-open window: an event on the index date is follow-up, not history
            .filter(pl.col("day") < pl.col("index_day"))
            .with_columns((pl.col("index_day") - pl.col("day")).cast(pl.Int64).alias("delta")))


def raw_features(
    events: pl.DataFrame, persons: pl.DataFrame, notes: pl.DataFrame, index: pl.DataFrame,
    windows: list[str], families: set[str], findings: dict[str, str], names: dict[int, str],
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(persons, feature names, matrix): one row per person with an index date, raw values, NaN where unknown."""
    base = index.join(persons, on="person", how="inner")
    # carry only what the features read: units were normalised already; text only exists for observations
    keep = ["person", "day", "domain", "concept", "value"] + (["text"] if events["text"].null_count() < events.height else [])
    history = _history(events.select(keep), base)
    if "text" not in history.columns:
        history = history.with_columns(pl.lit(None, pl.String).alias("text"))
    persons = base["person"].to_numpy()
    n = len(persons)
    columns: list[str] = []
    blocks: list[np.ndarray] = []
    if "demographics" in families:
        demo = base.select((pl.col("index_day") / 365.25 + 1970 - pl.col("year_of_birth")).alias("age"),
                           pl.col("female").alias("sex_female"))
        columns += demo.columns
        blocks.append(demo.cast(pl.Float64).to_numpy())

    def scatter(agg: pl.DataFrame, keys: list[str], stats: list[str], label) -> None:
        # (patient row, key) aggregates go straight into a matrix: building a long
        # table of feature-name strings and pivoting it costs far more
        table = agg.select(keys).unique().sort(keys).with_row_index("_k")
        joined = agg.join(table, on=keys)
        r, k = joined["_row"].to_numpy(), joined["_k"].to_numpy()
        for stat in stats:
            block = np.full((n, table.height), np.nan)
            block[r, k] = joined[stat].cast(pl.Float64).fill_null(np.nan).to_numpy()
            blocks.append(block)
            columns.extend(label(stat, key) for key in table.drop("_k").iter_rows())

    def add(result: tuple[list[str], list[np.ndarray]]) -> None:
        columns.extend(result[0])
        blocks.extend(result[1])

    for domain in [d for d in ("condition", "drug", "procedure", "observation") if d in families]:
        events_of = history.filter(pl.col("domain") == domain).select("_row", "concept", "delta")
        if events_of.height == 0:
            continue
        seg = segment_table(events_of)
        for window in windows:
            days = window_days(window)
            names_ = ["count"] + (["days_since_last"] if days is None else [])
            add(segment_scatter(seg, coded_stats(seg, days), n, names_,
                                lambda stat, c, w=window, d=domain: f"{d}:{c}:{stat}@{w}"))
    if "observation" in families:
        valued = history.filter((pl.col("domain") == "observation") & pl.col("text").is_not_null())
        for window in windows if valued.height else []:
            days = window_days(window)
            w = valued if days is None else valued.filter(pl.col("delta") <= days)
            # the last recorded value of a categorical observation (smoking status: never / former / current)
            last = (w.sort(["_row", "concept", "delta"], maintain_order=True).group_by("_row", "concept", maintain_order=True)
                    .agg(pl.col("text").first().str.to_lowercase()).with_columns(pl.lit(1.0).alias("flag")))
            scatter(last, ["concept", "text"], ["flag"],
                    lambda stat, key, w=window: "observation:" + f"{key[0]}:last={{{key[1]}}}@{w}")
    if "measurements" in families:
        labs = history.filter((pl.col("domain") == "measurement") & pl.col("value").is_not_null())
        if labs.height:
            dense = dense_lab_blocks(labs.select("_row", "concept", "delta", "value"), n,
                                     [(w, window_days(w)) for w in windows])
            if dense is not None:
                add(dense)
            seg = None if dense is not None else segment_table(labs.select("_row", "concept", "delta", "value"))
            for window in windows if seg is not None else []:
                add(segment_scatter(seg, lab_stats(seg, window_days(window)), n,
                                    ["last", "mean", "min", "max", "slope", "n"],
                                    lambda stat, c, w=window: f"measurement:{c}:{stat}@{w}"))
    if "notes" in families and notes.height and findings:
        flags = note_flags(notes.join(index, on="person").filter(pl.col("day") < pl.col("index_day")), findings)
        aligned = pl.DataFrame({"person": persons}).join(flags, on="person", how="left", maintain_order="left")
        names_ = [c for c in aligned.columns if c != "person"]
        columns += names_
        blocks.append(aligned.select(pl.col(names_).cast(pl.Float64)).to_numpy())
    matrix = assemble(blocks, n)
    # a concept never seen before the index date has count 0, not "unknown"
    zero = [j for j, c in enumerate(columns) if ":count@" in c or ":last={" in c or c.startswith("note:")]
    matrix[:, zero] = np.nan_to_num(matrix[:, zero], nan=0.0)
    return persons, [_readable(c, names) for c in columns], matrix


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
