"""Radiomic features of a region: shape, first-order statistics and texture (GLCM, GLRLM, GLSZM).

Definitions follow IBSI (Zwanenburg et al., 2020) and, where IBSI leaves a
choice, pyradiomics' (so that its published baselines can be matched):
intensities are discretised with a fixed bin width from the region's
minimum; energy-type features add ``shift`` to every intensity. Kurtosis is
IBSI's excess kurtosis (pyradiomics reports it 3 higher).
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


def _pairs(levels: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grey levels of every (voxel, neighbour at ``offset``) pair inside the region (level 0 = outside)."""
    dz, dy, dx = offset
    z, y, x = levels.shape
    a = levels[max(0, -dz):z - max(0, dz), max(0, -dy):y - max(0, dy), max(0, -dx):x - max(0, dx)]
    b = levels[max(0, dz):z - max(0, -dz) or None, max(0, dy):y - max(0, -dy) or None, max(0, dx):x - max(0, -dx) or None]
    both = (a > 0) & (b > 0)
    return a[both], b[both]


def glcm(image: np.ndarray, region: np.ndarray, bin_width: float = 25.0) -> dict[str, float]:
    """Grey-level co-occurrence features: symmetric matrices for the 13 directions at distance 1,
    each feature computed per direction and averaged (IBSI 'averaged over directions', 3-D).

    Grey levels absent from the region are dropped, as pyradiomics does.
    """
    levels = np.zeros(region.shape, dtype=np.int64)
    levels[region] = discretise(image[region].astype(np.float64), bin_width)
    present = np.unique(levels[region])
    index = np.zeros(levels.max() + 1, dtype=np.int64)
    index[present] = np.arange(len(present))
    ng = len(present)
    matrices = []
    for offset in _directions():
        a, b = _pairs(levels, offset)
        if len(a) == 0:
            continue
        counts = np.bincount(index[a] * ng + index[b], minlength=ng * ng).reshape(ng, ng).astype(np.float64)
        counts += counts.T
        matrices.append(counts / counts.sum())
    if not matrices:
        return {}
    P = np.stack(matrices, axis=2)  # (ng, ng, directions)
    g = present.astype(np.float64)
    i, j = np.meshgrid(g, g, indexing="ij")
    i3, j3 = i[:, :, None], j[:, :, None]
    px, py = P.sum(1, keepdims=True), P.sum(0, keepdims=True)
    ux, uy = (i3 * P).sum((0, 1), keepdims=True), (j3 * P).sum((0, 1), keepdims=True)
    sigx = np.sqrt(((i3 - ux) ** 2 * P).sum((0, 1), keepdims=True))
    sigy = np.sqrt(((j3 - uy) ** 2 * P).sum((0, 1), keepdims=True))
    ksum, kdiff = np.unique(i + j), np.unique(np.abs(i - j))
    pxy_sum = np.array([P[(i + j) == k].sum(0) for k in ksum])  # (k, directions)
    pxy_diff = np.array([P[np.abs(i - j) == k].sum(0) for k in kdiff])
    hx = -(px * np.log2(px + EPS)).sum((0, 1))
    hy = -(py * np.log2(py + EPS)).sum((0, 1))
    hxy = -(P * np.log2(P + EPS)).sum((0, 1))
    hxy1 = -(P * np.log2(px * py + EPS)).sum((0, 1))
    hxy2 = -(px * py * np.log2(px * py + EPS)).sum((0, 1))
    centred = (i3 + j3) - ux - uy
    diff_avg = (kdiff[:, None] * pxy_diff).sum(0)
    sum_avg = (ksum[:, None] * pxy_sum).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = ((P * (i3 - ux) * (j3 - uy)).sum((0, 1)) / (sigx * sigy)[0, 0])
        corr = np.where((sigx * sigy)[0, 0] > 0, corr, 1.0)
        imc1 = np.where(np.maximum(hx, hy) > 0, (hxy - hxy1) / np.maximum(hx, hy), 0.0)
        imc2 = np.where(hxy2 > hxy, np.sqrt(1 - np.exp(-2 * (hxy2 - hxy))), 0.0)
        # maximal correlation coefficient: second largest eigenvalue of Q
        mcc = []
        for d in range(P.shape[2]):
            pd, pxd, pyd = P[:, :, d], px[:, 0, d], py[0, :, d]
            q = (pd / (pxd[:, None] + EPS)) @ (pd / (pyd[None, :] + EPS)).T
            eig = np.sort(np.real(np.linalg.eigvals(q)))
            mcc.append(np.sqrt(max(eig[-2], 0.0)) if len(eig) > 1 else 1.0)
    off = np.abs(i3 - j3)
    features = {
        "Autocorrelation": (P * i3 * j3).sum((0, 1)),
        "JointAverage": ux[0, 0],
        "ClusterProminence": (P * centred**4).sum((0, 1)),
        "ClusterShade": (P * centred**3).sum((0, 1)),
        "ClusterTendency": (P * centred**2).sum((0, 1)),
        "Contrast": (P * off**2).sum((0, 1)),
        "Correlation": corr,
        "DifferenceAverage": diff_avg,
        "DifferenceEntropy": -(pxy_diff * np.log2(pxy_diff + EPS)).sum(0),
        "DifferenceVariance": ((kdiff[:, None] - diff_avg) ** 2 * pxy_diff).sum(0),
        "JointEnergy": (P**2).sum((0, 1)),
        "JointEntropy": hxy,
        "Imc1": imc1,
        "Imc2": imc2,
        "Idm": (P / (1 + off**2)).sum((0, 1)),
        "MCC": np.array(mcc),
        # the normalising number of grey levels counts the bins between the extremes, empty ones too
        "Idmn": (P / (1 + off**2 / present.max() ** 2)).sum((0, 1)),
        "Id": (P / (1 + off)).sum((0, 1)),
        "Idn": (P / (1 + off / present.max())).sum((0, 1)),
        "InverseVariance": np.array([(P[:, :, d][off[:, :, 0] > 0] / off[:, :, 0][off[:, :, 0] > 0] ** 2).sum()
                                     for d in range(P.shape[2])]),
        "MaximumProbability": P.max((0, 1)),
        "SumAverage": sum_avg,
        "SumEntropy": -(pxy_sum * np.log2(pxy_sum + EPS)).sum(0),
        "SumSquares": ((i3 - ux) ** 2 * P).sum((0, 1)),
    }
    return {name: float(np.mean(value)) for name, value in features.items()}


def _region_levels(image: np.ndarray, region: np.ndarray, bin_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Discretised grey levels inside the region (0 outside) and the levels present."""
    levels = np.zeros(region.shape, dtype=np.int64)
    levels[region] = discretise(image[region].astype(np.float64), bin_width)
    return levels, np.unique(levels[region])


def _runs(levels: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(grey level, length) of every run of equal levels inside the region along ``offset``."""
    shape = np.array(levels.shape)
    coords = np.argwhere(levels > 0)
    before = coords - offset
    inside = np.all((before >= 0) & (before < shape), axis=1)
    prev = np.zeros(len(coords), dtype=np.int64)
    prev[inside] = levels[tuple(before[inside].T)]
    own = levels[tuple(coords.T)]
    starts, level = coords[prev != own], own[prev != own]  # a run starts where the previous voxel differs
    length = np.zeros(len(starts), dtype=np.int64)
    active = np.arange(len(starts))
    step = 0
    while len(active):
        pos = starts[active] + step * offset
        ok = np.all((pos >= 0) & (pos < shape), axis=1)
        same = np.zeros(len(active), bool)
        same[ok] = levels[tuple(pos[ok].T)] == level[active[ok]]
        length[active[same]] += 1
        active = active[same]
        step += 1
    return level, length


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


def _size_matrix(level: np.ndarray, size: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Counts of (grey level, size) pairs; rows follow ``present``, columns sizes 1..max."""
    index = np.zeros(present.max() + 1, dtype=np.int64)
    index[present] = np.arange(len(present))
    P = np.zeros((len(present), int(size.max())))
    np.add.at(P, (index[level], size - 1), 1.0)
    return P


def _size_matrix_features(P: np.ndarray, grey: np.ndarray, n_voxels: int, names: tuple[str, ...]) -> dict[str, float]:
    """The 16 IBSI run-length / size-zone features of one matrix, under the family's ``names``."""
    nz = P.sum()
    i = grey.astype(np.float64)[:, None]
    j = np.arange(1, P.shape[1] + 1, dtype=np.float64)[None, :]
    p = P / nz
    mu_i, mu_j = (p * i).sum(), (p * j).sum()
    values = (
        (P / j**2).sum() / nz, (P * j**2).sum() / nz,
        (P.sum(1) ** 2).sum() / nz, (P.sum(1) ** 2).sum() / nz**2,
        (P.sum(0) ** 2).sum() / nz, (P.sum(0) ** 2).sum() / nz**2,
        nz / n_voxels, (p * (i - mu_i) ** 2).sum(), (p * (j - mu_j) ** 2).sum(), -(p * np.log2(p + EPS)).sum(),
        (P / i**2).sum() / nz, (P * i**2).sum() / nz,
        (P / (i**2 * j**2)).sum() / nz, (P * i**2 / j**2).sum() / nz,
        (P * j**2 / i**2).sum() / nz, (P * i**2 * j**2).sum() / nz,
    )
    return {name: float(v) for name, v in zip(names, values, strict=True)}


def glrlm(image: np.ndarray, region: np.ndarray, bin_width: float = 25.0) -> dict[str, float]:
    """Grey-level run-length features over the 13 directions, each computed per direction and averaged."""
    levels, present = _region_levels(image, region, bin_width)
    n_voxels = int(region.sum())
    per_direction: dict[str, list[float]] = {}
    for offset in _directions():
        level, length = _runs(levels, offset)
        if len(level) == 0:
            continue
        P = _size_matrix(level, length, present)
        for name, value in _size_matrix_features(P, present, n_voxels, _RUN_NAMES).items():
            per_direction.setdefault(name, []).append(value)
    return {name: float(np.mean(v)) for name, v in per_direction.items()}


def glszm(image: np.ndarray, region: np.ndarray, bin_width: float = 25.0) -> dict[str, float]:
    """Grey-level size-zone features (3-D): a zone is a 26-connected group of voxels of one grey level."""
    from scipy.ndimage import label

    levels, present = _region_levels(image, region, bin_width)
    if len(present) == 0:
        return {}
    connectivity = np.ones((3, 3, 3), dtype=bool)
    zone_level, zone_size = [], []
    for g in present:
        zones, n = label(levels == g, structure=connectivity)
        sizes = np.bincount(zones.ravel())[1:]
        zone_level.append(np.full(n, g))
        zone_size.append(sizes)
    P = _size_matrix(np.concatenate(zone_level), np.concatenate(zone_size), present)
    return _size_matrix_features(P, present, int(region.sum()), _ZONE_NAMES)


def mesh_shape(region: np.ndarray, spacing_zyx: tuple[float, float, float]) -> dict[str, float]:
    """Shape from a marching-cubes surface of the region (scikit-image, at level 0.5 of the padded mask).

    Volume by the divergence theorem over the mesh's triangles; sphericity
    (36 pi V^2)^(1/3) / A; the maximum 3-D diameter over the vertices of the
    mesh's convex hull (the farthest pair always lies on it).
    """
    from scipy.spatial import ConvexHull
    from scipy.spatial.distance import pdist
    from skimage.measure import marching_cubes, mesh_surface_area

    verts, faces, _, _ = marching_cubes(np.pad(region, 1).astype(np.float32), 0.5, spacing=spacing_zyx)
    tri = verts[faces]
    volume = abs(float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum())) / 6
    area = float(mesh_surface_area(verts, faces))
    try:
        hull = verts[ConvexHull(verts).vertices]
    except Exception:  # noqa: BLE001 - a flat region has no 3-D hull: use every vertex
        hull = verts
    return {
        "MeshVolume": volume,
        "SurfaceArea": area,
        "SurfaceVolumeRatio": area / volume if volume > 0 else 0.0,
        "Sphericity": float((36 * np.pi * volume**2) ** (1 / 3) / area) if area > 0 else 0.0,
        "Maximum3DDiameter": float(pdist(hull).max()) if len(hull) > 1 else 0.0,
    }


FAMILIES = ("shape", "firstorder", "glcm", "glrlm", "glszm")


def region_features(image: np.ndarray, region: np.ndarray, spacing_zyx: tuple[float, float, float],
                    families: tuple[str, ...] = FAMILIES, bin_width: float = 25.0,
                    shift: float = 0.0) -> dict[str, float]:
    """Every asked family's features of one region, named ``family:Feature``."""
    out: dict[str, float] = {}
    if "shape" in families:
        out.update({f"shape:{k}": v for k, v in voxel_shape(region, spacing_zyx).items()})
        out.update({f"shape:{k}": v for k, v in mesh_shape(region, spacing_zyx).items()})
    if "firstorder" in families:
        out.update({f"firstorder:{k}": v for k, v in
                    first_order(image[region], float(np.prod(spacing_zyx)), bin_width, shift).items()})
    for family, compute in (("glcm", glcm), ("glrlm", glrlm), ("glszm", glszm)):
        if family in families:
            out.update({f"{family}:{k}": v for k, v in compute(image, region, bin_width).items()})
    return out
