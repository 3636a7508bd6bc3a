"""Radiomic features of a region: shape, first-order statistics and texture (GLCM, GLRLM, GLSZM,
GLDM, NGTDM).

Definitions follow IBSI (Zwanenburg et al., 2020) and, where IBSI leaves a
choice, pyradiomics' (so that its published baselines can be matched):
intensities are discretised with a fixed bin width from the region's
minimum; energy-type features add ``shift`` to every intensity. Kurtosis is
IBSI's excess kurtosis (pyradiomics reports it 3 higher).

Every family is computed on the region's bounding box: no feature looks
further than one voxel beyond the region (neighbours outside it
count as absent), so the crop changes no value and saves most of the work on
a whole CT.
"""

from __future__ import annotations

import numpy as np

EPS = np.spacing(1)  # pyradiomics' guard against log2(0)


def discretise(values: np.ndarray, bin_width: float) -> np.ndarray:
    """Fixed-bin-width discretisation: bin 1 holds the region's minimum."""
    return (np.floor(values / bin_width) - np.floor(values.min() / bin_width) + 1).astype(np.int64)


def first_order(values: np.ndarray, voxel_volume: float, bin_width: float = 25.0, shift: float = 0.0) -> dict[str, float]:
    """First-order statistics of the region's intensities (one value per voxel)."""
    x = np.asarray(values, dtype=np.float64)
    mean = x.mean()
    d = x - mean
    m2, m3, m4 = (d**2).mean(), (d**3).mean(), (d**4).mean()
    p10, p25, p50, p75, p90 = np.percentile(x, [10, 25, 50, 75, 90])
    robust = x[(x >= p10) & (x <= p90)]
    counts = np.bincount(discretise(x, bin_width))[1:]
    p = counts[counts > 0] / len(x)
    energy = float(((x + shift) ** 2).sum())
    return {
        "Energy": energy,
        "TotalEnergy": energy * voxel_volume,
        "Entropy": float(-(p * np.log2(p + EPS)).sum()),
        "Minimum": float(x.min()),
        "10Percentile": float(p10),
        "90Percentile": float(p90),
        "Maximum": float(x.max()),
        "Mean": float(mean),
        "Median": float(p50),
        "InterquartileRange": float(p75 - p25),
        "Range": float(x.max() - x.min()),
        "MeanAbsoluteDeviation": float(np.abs(d).mean()),
        "RobustMeanAbsoluteDeviation": float(np.abs(robust - robust.mean()).mean()),
        "RootMeanSquared": float(np.sqrt(((x + shift) ** 2).mean())),
        "Skewness": float(m3 / m2**1.5) if m2 > 0 else 0.0,
        "Kurtosis": float(m4 / m2**2 - 3.0) if m2 > 0 else 0.0,
        "Variance": float(m2),
        "Uniformity": float((p**2).sum()),
    }


def voxel_shape(region: np.ndarray, spacing_zyx: tuple[float, float, float]) -> dict[str, float]:
    """Volume from voxel counts and the principal axes of the region's voxel coordinates (in mm)."""
    coords = np.argwhere(region).astype(np.float64) * np.asarray(spacing_zyx)
    voxel_volume = float(np.prod(spacing_zyx))
    if len(coords) < 2:
        eig = np.zeros(3)
    else:
        # IBSI's reference values use the sample covariance (n - 1); pyradiomics divides by n, so its
        # axis lengths are smaller by sqrt((n - 1) / n) (0.35% for a 143-voxel region)
        eig = np.sort(np.clip(np.linalg.eigvalsh(np.cov(coords, rowvar=False)), 0, None))
    least, minor, major = eig
    return {
        "VoxelVolume": float(region.sum()) * voxel_volume,
        "MajorAxisLength": float(4 * np.sqrt(major)),
        "MinorAxisLength": float(4 * np.sqrt(minor)),
        "LeastAxisLength": float(4 * np.sqrt(least)),
        "Elongation": float(np.sqrt(minor / major)) if major > 0 else 0.0,
        "Flatness": float(np.sqrt(least / major)) if major > 0 else 0.0,
    }


def _directions() -> np.ndarray:
    """The 13 unique neighbour offsets (z, y, x) at distance 1 in 3-D."""
    offsets = [(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dz, dy, dx) > (0, 0, 0)]
    return np.array(offsets)


# the 13 directions are the last 13 of the 26 neighbour offsets (both lists in lexicographic order)
POSITIVE_DIRECTIONS = slice(13, 26)


def glcm(image: np.ndarray, region: np.ndarray, bin_width: float = 25.0,
         levels: tuple[np.ndarray, np.ndarray] | None = None,
         neighbours: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """Grey-level co-occurrence features: symmetric matrices for the 13 directions at distance 1,
    each feature computed per direction and averaged (IBSI 'averaged over directions', 3-D).

    Grey levels absent from the region are dropped, as pyradiomics does. Every
    texture family takes ``levels``, the (discretised levels, levels present)
    of ``region_levels``, and ``neighbours``, the 26-neighbour gather of
    ``_neighbour_levels``, so ``region_features`` computes both once for all.

    The matrices are symmetric, so the row and column marginals are one; every
    feature that weighs P by a function of i + j or |i - j| is computed from
    P's sums along those diagonals (IBSI's p_{x+y}, p_{x-y}), which are far
    smaller than P.
    """
    levels, present = levels or region_levels(image, region, bin_width)
    index = np.zeros(levels.max() + 1, dtype=np.int64)
    index[present] = np.arange(len(present))
    ng = len(present)
    # every (voxel, neighbour at offset) pair inside the region, all 13 directions in one count
    own, around = neighbours or _neighbour_levels(levels)
    around = around[:, POSITIVE_DIRECTIONS]
    pairs = ((np.arange(around.shape[1])[None, :] * ng + index[own][:, None]) * ng + index[around])[around > 0]
    counts = np.bincount(pairs, minlength=around.shape[1] * ng * ng).reshape(-1, ng, ng).astype(np.float64)
    counts += counts.transpose(0, 2, 1)
    totals = counts.sum((1, 2))
    if not (totals > 0).any():
        return {}
    # a direction without any pair inside the region is left out, as in IBSI's averaging
    P = counts[totals > 0] / totals[totals > 0, None, None]  # (directions, ng, ng)
    flat = P.reshape(len(P), ng * ng)
    g = present.astype(np.float64)
    px = P.sum(2)  # (directions, ng); = the column marginal
    ux = px @ g
    squares = (px * (g[None, :] - ux[:, None]) ** 2).sum(1)  # sigma_x^2 = sigma_y^2
    # p_{x+y} and p_{x-y} over every integer sum and difference in range (absent ones hold 0 and add nothing)
    low, high = int(present[0]), int(present[-1])
    ksum = np.arange(2 * low, 2 * high + 1, dtype=np.float64)
    kdiff = np.arange(high - low + 1, dtype=np.float64)
    cells = np.arange(ng * ng)
    sums = (present[:, None] + present[None, :]).ravel() - 2 * low
    diffs = np.abs(present[:, None] - present[None, :]).ravel()
    onehot = np.zeros((ng * ng, len(ksum) + len(kdiff)))
    onehot[cells, sums] = 1.0
    onehot[cells, len(ksum) + diffs] = 1.0
    grouped = flat @ onehot
    pxy_sum, pxy_diff = grouped[:, : len(ksum)], grouped[:, len(ksum):]
    autocorrelation = flat @ np.outer(g, g).ravel()
    hx = -(px * np.log2(px + EPS)).sum(1)
    hxy = -(flat * np.log2(flat + EPS)).sum(1)
    outer = (px[:, :, None] * px[:, None, :]).reshape(len(P), ng * ng)
    log_outer = np.log2(outer + EPS)
    hxy1 = -(flat * log_outer).sum(1)
    hxy2 = -(outer * log_outer).sum(1)
    centred = ksum[None, :] - 2 * ux[:, None]
    centred2 = centred * centred
    diff_avg = pxy_diff @ kdiff
    sum_avg = pxy_sum @ ksum
    top = float(present.max())  # the normalising number of grey levels counts empty bins between the extremes
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(squares > 0, (autocorrelation - ux**2) / squares, 1.0)
        imc1 = np.where(hx > 0, (hxy - hxy1) / hx, 0.0)
        imc2 = np.where(hxy2 > hxy, np.sqrt(1 - np.exp(-2 * (hxy2 - hxy))), 0.0)
        # maximal correlation coefficient: sqrt of Q's second largest eigenvalue, Q = D^-1 P D^-1 P for a
        # symmetric P with marginal D. Q is similar to A @ A with A = D^-1/2 P D^-1/2 symmetric, so Q's
        # eigenvalues are the squares of A's: a symmetric solver (eigvalsh) for every direction at once,
        # exact where the general one leaves rounding-level imaginary parts
        scale = 1 / np.sqrt(px + EPS)
        A = scale[:, :, None] * P * scale[:, None, :]
        magnitude = np.sort(np.abs(np.linalg.eigvalsh(A)), axis=1)
        mcc = magnitude[:, -2] if ng > 1 else np.ones(len(P))
        inverse_square = np.where(kdiff > 0, 1.0 / kdiff**2, 0.0)
    features = {
        "Autocorrelation": autocorrelation,
        "JointAverage": ux,
        "ClusterProminence": (pxy_sum * centred2 * centred2).sum(1),
        "ClusterShade": (pxy_sum * centred2 * centred).sum(1),
        "ClusterTendency": (pxy_sum * centred2).sum(1),
        "Contrast": pxy_diff @ kdiff**2,
        "Correlation": corr,
        "DifferenceAverage": diff_avg,
        "DifferenceEntropy": -(pxy_diff * np.log2(pxy_diff + EPS)).sum(1),
        "DifferenceVariance": (pxy_diff * (kdiff[None, :] - diff_avg[:, None]) ** 2).sum(1),
        "JointEnergy": (flat**2).sum(1),
        "JointEntropy": hxy,
        "Imc1": imc1,
        "Imc2": imc2,
        "Idm": pxy_diff @ (1 / (1 + kdiff**2)),
        "MCC": mcc,
        "Idmn": pxy_diff @ (1 / (1 + kdiff**2 / top**2)),
        "Id": pxy_diff @ (1 / (1 + kdiff)),
        "Idn": pxy_diff @ (1 / (1 + kdiff / top)),
        "InverseVariance": pxy_diff @ inverse_square,
        "MaximumProbability": flat.max(1),
        "SumAverage": sum_avg,
        "SumEntropy": -(pxy_sum * np.log2(pxy_sum + EPS)).sum(1),
        "SumSquares": squares,
    }
    return {name: float(np.mean(value)) for name, value in features.items()}


def region_levels(image: np.ndarray, region: np.ndarray, bin_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Discretised grey levels inside the region (0 outside), on the arrays with a background border one
    voxel wide (neighbour shifts never wrap), and the levels present."""
    image, region = np.pad(image, 1), np.pad(region, 1)
    levels = np.zeros(region.shape, dtype=np.int64)
    levels[region] = discretise(image[region].astype(np.float64), bin_width)
    return levels, np.unique(levels[region])


def _runs(coords: np.ndarray, level: np.ndarray, size: int,
          offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grey level, length, direction) of every run of equal levels along each of ``offsets``, for
    region voxels at ``coords`` (their levels ``level``; ``size`` bounds every coordinate).

    Each voxel lies on one line {p + k * offset}: the line's key is the point
    where it crosses the plane of the offset's first non-zero axis, the
    voxel's position along it is k. Sorting by (direction, line, position)
    lines runs up consecutively; a run ends where the line, the level or the
    position's continuity breaks. One sort for every direction instead of a
    walk step by step.
    """
    n, width = len(coords), 4 * size
    axis = np.argmax(offsets != 0, axis=1)  # first non-zero axis of each offset
    step = offsets[np.arange(len(offsets)), axis]  # +-1
    position = coords[:, axis] * step  # (voxels, directions)
    base = coords[:, None, :] - position[:, :, None] * offsets[None, :, :] + 2 * size  # in [0, 4 * size)
    line = (base[..., 0] * width + base[..., 1]) * width + base[..., 2]
    key = ((np.arange(len(offsets))[None, :] * width**3 + line) * width + position + 2 * size).T.ravel()
    # keys are unique (one voxel, one direction): sorting them with each one's index packed into the low
    # bits gives argsort's order about three times faster, when key and index fit in 63 bits
    shift = max(int(len(key) - 1).bit_length(), 1)
    if len(key) and int(key.max()) < 2 ** (62 - shift):
        packed = np.sort((key << shift) | np.arange(len(key)))
        order, key = packed & ((1 << shift) - 1), packed >> shift
    else:
        order = np.argsort(key)
        key = key[order]
    levels = np.tile(level, len(offsets))[order]
    starts = np.ones(len(key), dtype=bool)
    # consecutive keys differ by exactly 1 along one line; anything else (another line, a gap) breaks the run
    starts[1:] = (key[1:] != key[:-1] + 1) | (levels[1:] != levels[:-1])
    first = np.flatnonzero(starts)
    return levels[first], np.diff(np.append(first, len(key))), order[first] // n  # run start -> its direction


# one set of formulas serves both size matrices: P[i, j] counts runs (GLRLM) or zones (GLSZM) of
# grey level i and length/size j; the families differ only in names
_RUN_NAMES = ("ShortRunEmphasis", "LongRunEmphasis", "GrayLevelNonUniformity", "GrayLevelNonUniformityNormalized",
              "RunLengthNonUniformity", "RunLengthNonUniformityNormalized", "RunPercentage", "GrayLevelVariance",
              "RunVariance", "RunEntropy", "LowGrayLevelRunEmphasis", "HighGrayLevelRunEmphasis",
              "ShortRunLowGrayLevelEmphasis", "ShortRunHighGrayLevelEmphasis", "LongRunLowGrayLevelEmphasis",
              "LongRunHighGrayLevelEmphasis")
_ZONE_NAMES = ("SmallAreaEmphasis", "LargeAreaEmphasis", "GrayLevelNonUniformity", "GrayLevelNonUniformityNormalized",
               "SizeZoneNonUniformity", "SizeZoneNonUniformityNormalized", "ZonePercentage", "GrayLevelVariance",
               "ZoneVariance", "ZoneEntropy", "LowGrayLevelZoneEmphasis", "HighGrayLevelZoneEmphasis",
               "SmallAreaLowGrayLevelEmphasis", "SmallAreaHighGrayLevelEmphasis", "LargeAreaLowGrayLevelEmphasis",
               "LargeAreaHighGrayLevelEmphasis")


def _size_matrix(level: np.ndarray, size: np.ndarray, present: np.ndarray,
                 direction: np.ndarray | None = None, directions: int = 1) -> np.ndarray:
    """Counts of (grey level, size) pairs, (directions, levels, sizes 1..max); rows follow ``present``."""
    index = np.zeros(present.max() + 1, dtype=np.int64)
    index[present] = np.arange(len(present))
    width = int(size.max())
    direction = np.zeros(len(level), dtype=np.int64) if direction is None else direction
    flat = (direction * len(present) + index[level]) * width + size - 1
    counts = np.bincount(flat, minlength=directions * len(present) * width)
    return counts.reshape(directions, len(present), width).astype(np.float64)


def _size_matrix_features(P: np.ndarray, grey: np.ndarray, n_voxels: int, names: tuple[str, ...]) -> dict[str, float]:
    """The 16 IBSI run-length / size-zone features, under the family's ``names``.

    ``P`` is (directions, levels, sizes): each feature is computed per
    direction and averaged, as IBSI's 'averaged over directions'. Features
    whose weight depends on the grey level alone or the size alone are sums
    over P's marginals; the four that weigh both are one matrix product.
    """
    nz = P.sum((1, 2))
    i = grey.astype(np.float64)
    j = np.arange(1, P.shape[2] + 1, dtype=np.float64)
    rows, columns = P.sum(2), P.sum(1)  # (directions, levels), (directions, sizes)
    p_rows, p_columns = rows / nz[:, None], columns / nz[:, None]
    mu_i, mu_j = p_rows @ i, p_columns @ j
    p = P / nz[:, None, None]
    i2, j2 = i**2, j**2
    # the joint weights, (levels x sizes) each: 1/(i^2 j^2), i^2/j^2, j^2/i^2, i^2 j^2
    joint = np.stack([np.outer(1 / i2, 1 / j2), np.outer(i2, 1 / j2), np.outer(1 / i2, j2), np.outer(i2, j2)],
                     axis=-1).reshape(-1, 4)
    both = (P.reshape(len(P), -1) @ joint) / nz[:, None]
    values = (
        columns @ (1 / j2) / nz, columns @ j2 / nz,
        (rows**2).sum(1) / nz, (rows**2).sum(1) / nz**2,
        (columns**2).sum(1) / nz, (columns**2).sum(1) / nz**2,
        nz / n_voxels, (p_rows * (i[None, :] - mu_i[:, None]) ** 2).sum(1),
        (p_columns * (j[None, :] - mu_j[:, None]) ** 2).sum(1), -(p * np.log2(p + EPS)).sum((1, 2)),
        rows @ (1 / i2) / nz, rows @ i2 / nz,
        both[:, 0], both[:, 1],
        both[:, 2], both[:, 3],
    )
    return {name: float(np.mean(v)) for name, v in zip(names, values, strict=True)}


def glrlm(image: np.ndarray, region: np.ndarray, bin_width: float = 25.0,
          levels: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """Grey-level run-length features over the 13 directions, each computed per direction and averaged."""
    levels, present = levels or region_levels(image, region, bin_width)
    coords = np.argwhere(levels > 0)
    offsets = _directions()
    level, length, direction = _runs(coords, levels[tuple(coords.T)], int(max(levels.shape)), offsets)
    P = _size_matrix(level, length, present, direction, len(offsets))
    return _size_matrix_features(P, present, len(coords), _RUN_NAMES)


def glszm(image: np.ndarray, region: np.ndarray, bin_width: float = 25.0,
          levels: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """Grey-level size-zone features (3-D): a zone is a 26-connected group of voxels of one grey level."""
    from skimage.measure import label

    levels, present = levels or region_levels(image, region, bin_width)
    if len(present) == 0:
        return {}
    # one pass labels every zone: neighbours join only when their grey levels are equal
    zones, n = label(levels, background=0, connectivity=3, return_num=True)
    zone_size = np.bincount(zones.ravel(), minlength=n + 1)[1:]
    zone_level = np.zeros(n + 1, dtype=np.int64)
    zone_level[zones] = levels
    P = _size_matrix(zone_level[1:], zone_size, present)
    return _size_matrix_features(P, present, int(region.sum()), _ZONE_NAMES)


def mesh_shape(region: np.ndarray, spacing_zyx: tuple[float, float, float]) -> dict[str, float]:
    """Shape from a marching-cubes surface of the region (scikit-image, at level 0.5 of the padded mask).

    Volume by the divergence theorem over the mesh's triangles; sphericity
    (36 pi V^2)^(1/3) / A; the maximum 3-D diameter, the largest distance
    between two vertices, over the vertices that can be an end of it
    (``_diameter_candidates``).
    """
    from scipy.spatial.distance import pdist
    from skimage.measure import marching_cubes

    verts, faces, _, _ = marching_cubes(np.pad(region, 1).astype(np.float32), 0.5, spacing=spacing_zyx)
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    u, v = b - a, c - a
    # one cross product per triangle gives both: its area is half the norm, and a . (u x v) = a . (b x c)
    # is six times the signed volume of the tetrahedron it spans with the origin (divergence theorem)
    cross = np.stack([u[:, 1] * v[:, 2] - u[:, 2] * v[:, 1], u[:, 2] * v[:, 0] - u[:, 0] * v[:, 2],
                      u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]], axis=1)
    area = float(np.sqrt((cross**2).sum(1)).sum()) / 2
    volume = abs(float((a * cross).sum())) / 6
    ends = _diameter_candidates(verts)
    return {
        "MeshVolume": volume,
        "SurfaceArea": area,
        "SurfaceVolumeRatio": area / volume if volume > 0 else 0.0,
        "Sphericity": float((36 * np.pi * volume**2) ** (1 / 3) / area) if area > 0 else 0.0,
        "Maximum3DDiameter": float(pdist(ends).max()) if len(ends) > 1 else 0.0,
    }


# directions whose extreme points give a first, lower bound of the diameter
_PROBES = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [1, 1, -1], [1, -1, 1], [-1, 1, 1]], dtype=np.float64)


def _diameter_candidates(points: np.ndarray) -> np.ndarray:
    """The points that can end the largest distance between two of ``points``, exactly.

    Two filters, each keeping every point the largest distance D can need:
    - a shell: with c the centroid and R the largest distance from it, a pair
      (p, q) is at most |p - c| + R apart, so p can end D only if
      |p - c| + R >= d0, any distance known to be at most D (here the largest
      between the extreme points along seven directions);
    - lines: a point between two others on an axis-parallel line is at most
      as far from any q as the farther of those two, so along each axis only
      the two extreme points of every line of points sharing the other two
      coordinates are kept (marching-cubes vertices share them in long rows);
      used when the shell leaves many points (a round region).
    A few hundred points remain at most, where Qhull's convex hull cost about a
    millisecond per region.
    """
    if len(points) < 3:
        return points
    radius = np.sqrt(((points - points.mean(0)) ** 2).sum(1))
    projection = points @ _PROBES.T
    low, high = points[projection.argmin(0)], points[projection.argmax(0)]
    known = np.sqrt(((high - low) ** 2).sum(1)).max()
    # (a margin for rounding: two points alone sit exactly on the bound, and keeping more is harmless)
    points = points[radius + radius.max() >= known * (1 - 1e-9)]
    if len(points) <= 256:
        return points
    for axis in range(points.shape[1]):
        others = [a for a in range(points.shape[1]) if a != axis]
        order = np.lexsort((points[:, axis], *(points[:, a] for a in others[::-1])))
        rows = points[order][:, others]
        new_line = np.ones(len(order), dtype=bool)
        new_line[1:] = (rows[1:] != rows[:-1]).any(1)
        last = np.append(new_line[1:], True)
        points = points[order[new_line | last]]
    return points


_DEPENDENCE_NAMES = ("SmallDependenceEmphasis", "LargeDependenceEmphasis", "GrayLevelNonUniformity",
                     "GrayLevelNonUniformityNormalized", "DependenceNonUniformity", "DependenceNonUniformityNormalized",
                     "DependencePercentage", "GrayLevelVariance", "DependenceVariance", "DependenceEntropy",
                     "LowGrayLevelEmphasis", "HighGrayLevelEmphasis", "SmallDependenceLowGrayLevelEmphasis",
                     "SmallDependenceHighGrayLevelEmphasis", "LargeDependenceLowGrayLevelEmphasis",
                     "LargeDependenceHighGrayLevelEmphasis")


def _all_offsets() -> np.ndarray:
    """The 26 neighbour offsets (z, y, x) at Chebyshev distance 1 in 3-D."""
    return np.array([(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dz, dy, dx) != (0, 0, 0)])


def _neighbour_levels(levels: np.ndarray, offsets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(levels of the region's voxels, (voxels, offsets) levels of their neighbours at each offset, all 26
    by default; 0 = outside the region).

    ``levels`` must carry a border of zeros one voxel wide (``region_levels``), so
    every neighbour index stays inside the array; only region voxels are
    gathered, not the whole box.
    """
    flat = levels.ravel()
    at = np.flatnonzero(flat)
    strides = np.array(levels.strides) // levels.itemsize
    steps = (_all_offsets() if offsets is None else offsets) @ strides
    return flat[at], flat[at[:, None] + steps[None, :]]


def gldm(image: np.ndarray, region: np.ndarray, bin_width: float = 25.0, levels: tuple[np.ndarray, np.ndarray] | None = None,
         neighbours: tuple[np.ndarray, np.ndarray] | None = None, alpha: float = 0.0) -> dict[str, float]:
    """Grey-level dependence features (IBSI's NGLDM, 3-D, distance 1, coarseness ``alpha``).

    A voxel's dependence is 1 plus the number of its 26 neighbours inside the
    region whose grey level differs from its own by at most ``alpha``;
    P[i, j] counts voxels of grey level i with dependence j.
    """
    levels, present = levels or region_levels(image, region, bin_width)
    if len(present) == 0:
        return {}
    own, around = neighbours or _neighbour_levels(levels)
    dependence = 1 + ((around > 0) & (np.abs(around - own[:, None]) <= alpha)).sum(1)
    P = _size_matrix(own, dependence, present)
    features = _size_matrix_features(P, present, len(own), _DEPENDENCE_NAMES)
    p = P / P.sum()
    features["DependenceEnergy"] = float((p**2).sum())
    return features


def ngtdm(image: np.ndarray, region: np.ndarray, bin_width: float = 25.0,
          levels: tuple[np.ndarray, np.ndarray] | None = None,
          neighbours: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """Neighbourhood grey-tone difference features (IBSI, 3-D, distance 1).

    For a voxel with at least one of its 26 neighbours inside the region, s_i
    adds |i - mean grey level of those neighbours|; voxels with no neighbour
    in the region are left out (IBSI; pyradiomics).
    """
    levels, present = levels or region_levels(image, region, bin_width)
    if len(present) == 0:
        return {}
    own, around = neighbours or _neighbour_levels(levels)
    count = (around > 0).sum(1)
    use = count > 0
    if not use.any():
        return {}
    level = own[use]
    diff = np.abs(level - around[use].sum(1) / count[use])
    n = np.bincount(level, minlength=present.max() + 1)[present].astype(np.float64)
    s = np.bincount(level, weights=diff, minlength=present.max() + 1)[present]
    keep = n > 0
    g, n, s = present[keep].astype(np.float64), n[keep], s[keep]
    nvp = n.sum()
    p = n / nvp
    ngp = len(g)
    gi, gj = g[:, None], g[None, :]
    pi, pj = p[:, None], p[None, :]
    si, sj = s[:, None], s[None, :]
    ps = float((p * s).sum())
    busy_denominator = float(np.abs(gi * pi - gj * pj).sum())
    return {
        # pyradiomics' convention for a region without any grey-tone difference
        "Coarseness": 1.0 / ps if ps > 0 else 1e6,
        "Contrast": float((pi * pj * (gi - gj) ** 2).sum() / (ngp * (ngp - 1)) * s.sum() / nvp) if ngp > 1 else 0.0,
        "Busyness": ps / busy_denominator if busy_denominator > 0 else 0.0,
        "Complexity": float((np.abs(gi - gj) * (pi * si + pj * sj) / (pi + pj)).sum() / nvp),
        "Strength": float(((pi + pj) * (gi - gj) ** 2).sum() / s.sum()) if s.sum() > 0 else 0.0,
    }


def bounding_box(region: np.ndarray, margin: np.ndarray | int = 0) -> tuple[slice, ...]:
    """The region's bounding box grown by ``margin`` voxels per axis, within the array (all of it when
    the region is empty)."""
    margin = np.broadcast_to(np.asarray(margin, dtype=int), (region.ndim,))
    box = []
    for axis in range(region.ndim):
        hit = np.flatnonzero(region.any(axis=tuple(a for a in range(region.ndim) if a != axis)))
        if len(hit) == 0:
            return tuple(slice(None) for _ in region.shape)
        box.append(slice(max(int(hit[0]) - margin[axis], 0), min(int(hit[-1]) + margin[axis] + 1, region.shape[axis])))
    return tuple(box)


def crop_to_region(image: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The region's bounding box (each family adds the one-voxel background border it needs)."""
    box = bounding_box(region)
    return image[box], region[box]


FAMILIES = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")


def region_features(image: np.ndarray, region: np.ndarray, spacing_zyx: tuple[float, float, float],
                    families: tuple[str, ...] = FAMILIES, bin_width: float = 25.0,
                    shift: float = 0.0) -> dict[str, float]:
    """Every asked family's features of one region, named ``family:Feature``."""
    image, region = crop_to_region(image, region)
    out: dict[str, float] = {}
    if "shape" in families:
        out.update({f"shape:{k}": v for k, v in voxel_shape(region, spacing_zyx).items()})
        out.update({f"shape:{k}": v for k, v in mesh_shape(region, spacing_zyx).items()})
    if "firstorder" in families:
        out.update({f"firstorder:{k}": v for k, v in
                    first_order(image[region], float(np.prod(spacing_zyx)), bin_width, shift).items()})
    texture = (("glcm", glcm), ("glrlm", glrlm), ("glszm", glszm), ("gldm", gldm), ("ngtdm", ngtdm))
    shared = region_levels(image, region, bin_width) if any(f in families for f, _ in texture) else None
    # the 26-neighbour gather serves GLCM (its 13 directions), GLDM and NGTDM
    gathered = (_neighbour_levels(shared[0]) if shared is not None and len(shared[1])
                and any(f in families for f in ("glcm", "gldm", "ngtdm")) else None)
    for family, compute in texture:
        if family in families:
            extra = {"neighbours": gathered} if family in ("glcm", "gldm", "ngtdm") else {}
            out.update({f"{family}:{k}": v for k, v in compute(image, region, bin_width, shared, **extra).items()})
    return out
