"""imaging.radiomics against pyradiomics, case by case, on one core.

    python benchmarks/radiomics.py            # needs pyradiomics for the comparison (see below)
    python benchmarks/radiomics.py --synthetic 20 --repeats 3

pyradiomics 3.0.1 does not build in an isolated environment; install it after
its build requirements (the ``bench`` extra lists them):

    pip install numpy setuptools versioneer && pip install --no-build-isolation pyradiomics

Cases: pyradiomics' own test cases brain1, brain2, breast1
(../shared/data/pyradiomics-testcases, when present) and ``--synthetic``
synthetic CT volumes with their tumour masks (generated here, NIfTI). Both
tools compute the same seven families (shape, first order, GLCM, GLRLM,
GLSZM, GLDM, NGTDM) in 3-D with a bin width of 25, label 1, no resampling,
one thread each (SimpleITK, BLAS and OpenMP pools set to 1). Two times per
case, median of ``--repeats``:

- extraction: the features of an image and mask already in memory;
- end to end: from the files on disk (reading, checks, extraction).

Last line: ``radiomics speedup=X``, pyradiomics' end-to-end time over ours,
summed over all cases (target X >= 5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pyradiomics_peer import BIN_WIDTH, extractor, synthetic_cases, test_cases

# this file is called radiomics.py: with its own folder first on sys.path, `import radiomics` would
# import the benchmark itself instead of pyradiomics
HERE = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != HERE]

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from tumorboard_imaging.io import mask_voxels, read_image  # noqa: E402
from tumorboard_imaging.preprocess import Preparation, prepare  # noqa: E402
from tumorboard_imaging.radiomics import FAMILIES, region_features  # noqa: E402


def ours_end_to_end(image: Path, mask: Path) -> dict[str, float]:
    """What imaging.radiomics does per patient: read, check, crop, extract (no cache)."""
    array, region, spacing = prepare(image, mask, Preparation(None, "linear", None, 0.0, None), None)
    return region_features(array, region, spacing, FAMILIES, BIN_WIDTH)


def ours_extraction(loaded) -> dict[str, float]:
    array, region, spacing = loaded
    return region_features(array, region, spacing, FAMILIES, BIN_WIDTH)


def load_ours(image: Path, mask: Path):
    itk = read_image(image)
    region = mask_voxels(read_image(mask), mask, None)
    return sitk.GetArrayFromImage(itk).astype(np.float64), region, tuple(itk.GetSpacing()[::-1])


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=20, help="synthetic CT cases")
    parser.add_argument("--repeats", type=int, default=3, help="timings per case (the median is kept)")
    args = parser.parse_args()
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
    try:
        peer = extractor()
    except ImportError:
        peer = None
        print("pyradiomics is not installed: timing imaging.radiomics alone (see the docstring to install it)")
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        cases = test_cases() + synthetic_cases(args.synthetic, Path(tmp))
        print(f"{'case':<22} {'voxels':>8} {'ours extract':>12} {'ours e2e':>9} {'pyrad extract':>13} "
              f"{'pyrad e2e':>9} {'speedup e2e':>11}")
        total_ours = total_theirs = 0.0
        for name, image, mask in cases:
            loaded = load_ours(image, mask)
            ours_end_to_end(image, mask)  # warm the imports and the file cache for both tools alike
            ours_x = median_time(lambda: ours_extraction(loaded), args.repeats)
            ours_e = median_time(lambda: ours_end_to_end(image, mask), args.repeats)
            total_ours += ours_e
            row = f"{name:<22} {int(loaded[1].sum()):>8} {ours_x:>12.4f} {ours_e:>9.4f}"
            if peer is not None:
                itk_image, itk_mask = sitk.ReadImage(str(image)), sitk.ReadImage(str(mask))
                peer.execute(str(image), str(mask))
                theirs_x = median_time(lambda: peer.execute(itk_image, itk_mask), args.repeats)
                theirs_e = median_time(lambda: peer.execute(str(image), str(mask)), args.repeats)
                total_theirs += theirs_e
                row += f" {theirs_x:>13.4f} {theirs_e:>9.4f} {theirs_e / ours_e:>11.1f}"
            print(row, flush=True)
    print(f"total end to end: ours {total_ours:.3f} s" + (f", pyradiomics {total_theirs:.3f} s" if peer else ""))
    if peer is not None:
        print(f"radiomics speedup={total_theirs / total_ours:.2f}")
    else:
        print(f"radiomics ours_total_s={total_ours:.3f}")


if __name__ == "__main__":
    main()
