"""Per (patient, concept) statistics over nested look-back windows, in one sort and numpy reductions.

Events are sorted once by (patient row, concept, days before index). A
patient's events of one concept are then a contiguous segment, most recent
first, and the events inside a look-back window are a prefix of that segment,
so every window's count, sums, minimum and maximum are segment reductions
of masked values — no group-by per window, no long table of feature names,
no pivot.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl


def segment_table(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """Sort events (columns _row, concept, delta[, value]) and find each (row, concept) segment."""
    raw_concept = frame["concept"].to_numpy()
    top = int(raw_concept.max()) + 1 if len(raw_concept) else 1
    if 0 <= raw_concept.min(initial=0) and top <= 1 << 16:
        dense, n_concepts = pl.Series(raw_concept), top  # already small codes (long event tables)
    else:
        concepts = np.unique(raw_concept)
        dense, n_concepts = pl.Series(np.searchsorted(concepts, raw_concept)), len(concepts)
    rows = frame["_row"].max() + 1 if frame.height else 1
    if rows * n_concepts < 2**42:
        # one int64 key sorts several times faster than three columns; the stable
        # sort keeps file order among same-day events
        key = (pl.Series(frame["_row"]).cast(pl.Int64) * n_concepts + dense) * 2**21 + frame["delta"].clip(0, 2**21 - 1)
        order = pl.DataFrame({"k": key}).with_row_index("_i").sort("k", maintain_order=True)["_i"].to_numpy()
    else:
        order = frame.with_row_index("_i").sort(["_row", "concept", "delta"], maintain_order=True)["_i"].to_numpy()
    row = frame["_row"].to_numpy()[order]
    concept = frame["concept"].to_numpy()[order]
    delta = frame["delta"].to_numpy()[order]
    change = np.flatnonzero((np.diff(row) != 0) | (np.diff(concept) != 0)) + 1
    starts = np.concatenate([[0], change]).astype(np.int64) if len(row) else np.zeros(0, dtype=np.int64)
    out = {"row": row[starts], "concept": concept[starts], "starts": starts, "delta": delta}
    if "value" in frame.columns:
        out["value"] = frame["value"].to_numpy()[order]
    return out


def _sum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(x, starts) if len(x) else np.zeros(len(starts))


def lab_stats(seg: dict[str, np.ndarray], days: int | None) -> dict[str, np.ndarray]:
    """last, mean, min, max, least-squares slope per year, and n within the window, per segment."""
    starts, v, delta = seg["starts"], seg["value"], seg["delta"]
    if "t" not in seg:  # the same for every window: compute once
        seg["t"] = -delta / 365.25
        seg["tt"], seg["tv"] = seg["t"] * seg["t"], seg["t"] * v
    t, tt, tv = seg["t"], seg["tt"], seg["tv"]
    if days is None:
        inside = None
        n = np.diff(np.append(starts, len(v))).astype(np.float64)
        sums = [_sum(x, starts) for x in (v, t, tt, tv)]
    else:
        inside = delta <= days
        n = _sum(inside.astype(np.float64), starts)
        sums = [_sum(np.where(inside, x, 0.0), starts) for x in (v, t, tt, tv)]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean, tmean = sums[0] / n, sums[1] / n
        var = sums[2] / n - tmean**2
        slope = np.where(var > 1e-12, (sums[3] / n - tmean * mean) / var, np.nan)
        stats = {
            # a segment starts with its most recent event, which lies in every window that holds any
            "last": v[starts] if len(v) else np.zeros(0),
            "mean": mean,
            "min": np.minimum.reduceat(v if inside is None else np.where(inside, v, np.inf), starts) if len(v) else n,
            "max": np.maximum.reduceat(v if inside is None else np.where(inside, v, -np.inf), starts) if len(v) else n,
            "slope": slope, "n": n,
        }
    empty = n == 0
    if empty.any():  # never in the 'all' window; mean and slope are already NaN there
        for key in ("last", "min", "max", "n"):
            stats[key] = stats[key].astype(np.float64, copy=True)
            stats[key][empty] = np.nan
    return stats


def coded_stats(seg: dict[str, np.ndarray], days: int | None) -> dict[str, np.ndarray]:
    """count and days since the most recent event within the window, per segment."""
    starts, delta = seg["starts"], seg["delta"]
    inside = np.ones(len(delta)) if days is None else (delta <= days).astype(np.float64)
    count = _sum(inside, starts)
    last = delta[starts].astype(np.float64) if len(delta) else count
    return {"count": count, "days_since_last": np.where(count > 0, last, np.nan)}


def scatter(seg: dict[str, np.ndarray], stats: dict[str, np.ndarray], n_rows: int, names: list[str],
            label) -> tuple[list[str], list[np.ndarray]]:
    """One (patients x concepts) block per statistic; ``label(stat, concept)`` names the columns."""
    concepts = np.unique(seg["concept"])
    col = np.searchsorted(concepts, seg["concept"])
    columns, blocks = [], []
    for stat in names:
        block = np.full((n_rows, len(concepts)), np.nan)
        keep = ~np.isnan(stats[stat])
        block[seg["row"][keep], col[keep]] = stats[stat][keep]
        blocks.append(block)
        columns += [label(stat, int(c)) for c in concepts]
    return columns, blocks


DENSE_LIMIT = 20_000_000  # patients x concepts cells per statistic for the dense path


def dense_lab_blocks(frame: pl.DataFrame, n_rows: int, windows: list[tuple[str, int | None]]) -> tuple[list[str], list[np.ndarray]] | None:
    """Lab statistics by direct binning on (concept, patient row) cells, without sorting.

    Counts and sums are ``np.bincount`` over a cell key; min, max and the most
    recent value are unbuffered ``ufunc.at`` reductions. Cells are numbered
    concept-major, so each statistic is written straight into its (patients x
    concepts) columns of one column-major matrix, the single block returned. Returns
    None when the cell grid would be too large (many concepts), so the caller
    uses segments.
    """
    raw_concept = frame["concept"].to_numpy()
    if len(raw_concept) == 0 or raw_concept.min() < 0:
        return None
    top = int(raw_concept.max()) + 1
    if top <= 1 << 24:
        # codes as lookup-table indices: cheaper than sorting for unique values and positions
        present = np.bincount(raw_concept, minlength=top) > 0
        concepts = np.flatnonzero(present)
        lut = np.cumsum(present) - 1
    else:
        concepts = np.unique(raw_concept)
        lut = None
    k = len(concepts)
    if n_rows * k > DENSE_LIMIT or frame.height >= 1 << 40:
        return None
    cells = n_rows * k
    key = lut[raw_concept] if lut is not None else np.searchsorted(concepts, raw_concept)
    key *= n_rows
    key += frame["_row"].to_numpy()
    delta = frame["delta"].to_numpy().astype(np.int64, copy=False)
    v = frame["value"].to_numpy()
    t = delta * (-1 / 365.25)

    def most_recent() -> np.ndarray:
        # the most recent value; among same-day values the first in file order
        bits = max(int(len(v)).bit_length(), 1)
        position = np.left_shift(delta, bits)
        for lo in range(0, len(v), 1 << 20):  # the file position in chunks: no second events-long array
            position[lo:lo + (1 << 20)] |= np.arange(lo, min(lo + (1 << 20), len(v)))
        best = np.full(cells, np.iinfo(np.int64).max)
        np.minimum.at(best, key, position)
        seen = best != np.iinfo(np.int64).max
        last = np.full(cells, np.nan)
        last[seen] = v[best[seen] & ((1 << bits) - 1)]
        return last

    stats_ = ("last", "mean", "min", "max", "slope", "n")
    # every statistic is written straight into its columns of one column-major matrix:
    # a (patients x concepts) column block of it is one contiguous run of cells
    matrix = np.empty((n_rows, len(windows) * len(stats_) * k), order="F")
    slot = {(w, stat): matrix[:, (i * len(stats_) + j) * k:(i * len(stats_) + j + 1) * k].T.reshape(-1)
            for i, (w, _) in enumerate(windows) for j, stat in enumerate(stats_)}

    def window_stats(window: str, days: int | None) -> np.ndarray:
        if days is None:
            kk, vv, t1 = key, v, t
        else:
            inside = np.flatnonzero(delta <= days)
            kk, vv, t1 = key[inside], v[inside], t[inside]
        out = {stat: slot[window, stat] for stat in stats_}
        n = out["n"]
        np.copyto(n, np.bincount(kk, minlength=cells))
        empty = n == 0
        n[empty] = np.nan  # so every mean below is NaN where the window holds nothing
        mean = np.divide(np.bincount(kk, vv, cells), n, out=out["mean"])
        # bincount of no events returns integers even with weights: cast, or the in-place divisions fail
        tmean = np.bincount(kk, t1, cells).astype(np.float64, copy=False)
        tmean /= n
        var = np.bincount(kk, t1 * t1, cells).astype(np.float64, copy=False)
        var /= n
        var -= tmean * tmean
        slope = np.divide(np.bincount(kk, t1 * vv, cells), n, out=out["slope"])
        tmean *= mean
        slope -= tmean
        with np.errstate(invalid="ignore", divide="ignore"):
            slope /= var
        slope[~(var > 1e-12)] = np.nan  # one time point (or none): no slope
        for stat, ufunc, start in (("min", np.minimum, np.inf), ("max", np.maximum, -np.inf)):
            out[stat].fill(start)
            ufunc.at(out[stat], kk, vv)
            out[stat][empty] = np.nan
        return empty

    # numpy releases the GIL in bincount: the windows and the most recent value
    # partly run side by side on the machine's cores
    with ThreadPoolExecutor(max_workers=min(len(windows) + 1, os.cpu_count() or 1)) as pool:
        recent = pool.submit(most_recent)
        empties = list(pool.map(window_stats, *zip(*windows, strict=True)))
        last_all = recent.result()
    columns = []
    for (window, _), empty in zip(windows, empties, strict=True):
        np.copyto(slot[window, "last"], last_all)
        slot[window, "last"][empty] = np.nan
        for stat in stats_:
            columns += [f"measurement:{int(c)}:{stat}@{window}" for c in concepts]
    return columns, [matrix]


def assemble(blocks: list[np.ndarray], n_rows: int) -> np.ndarray:
    """Blocks side by side in one column-major matrix: column-major blocks copy as contiguous memory."""
    if len(blocks) == 1:
        return blocks[0]  # the lab statistics alone (hundreds of MB at scale): no copy
    matrix = np.empty((n_rows, sum(b.shape[1] for b in blocks)), order="F")
    j = 0
    for block in blocks:
        matrix[:, j:j + block.shape[1]] = block
        j += block.shape[1]
    return matrix
