"""pathology.slides: does attention MIL find the planted tiles and beat mean pooling, and how fast is it?

    python benchmarks/mil.py                       # accuracy on the synthetic slides + throughput
    python benchmarks/mil.py --skip-accuracy --dim 1536 --tiles 4096   # throughput only, other sizes

Accuracy. The synthetic cohort with slides (300 patients; EGFR-mutant
patients' slides carry a planted morphology in 3-10% of their tiles) runs the
same spec twice, pooling = abmil and pooling = mean (model.logistic, 5-fold
CV, seed fixed so both runs share their folds), with the EGFR status as the
target. Printed: each run's out-of-fold AUROC and the paired bootstrap CI of
the difference (patients resampled, 2,000 replicates). Then one pool fitted
on 70% of the patients: on the held-out mutant patients, the share of
attention on the planted tiles against the share of tiles they are.

Throughput. The default pool (hidden 64, attention 32) and a wider one on
UNI-sized embeddings (``--dim`` 1024, ``--tiles`` 2048 per bag): bags/s of
inference (every tile, ``pool_bags``) and of training (the shared AdamW loop,
bags of ``max_tiles``), achieved GFLOP/s (the dense layers' matmul FLOPs,
counted exactly) and that as a fraction of a jitted float32 matmul peak
measured in the same process. Last line: ``mil abmil_auroc=... mean_auroc=...
bags_per_s=... peak_fraction=...``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from omics_autoencoder import matmul_peak

SPEC = """
[run]
name = "mil-{pooling}"
task = "binary"
seed = 7
output = "{out}"

[cohort]
outcomes = "{outcomes}"
target = "egfr"

[[modality]]
name = "slides"
plugin = "pathology.slides"
options = {{ manifest = "{manifest}", pooling = "{pooling}" }}

[model]
plugin = "model.logistic"

[evaluation]
folds = 5
bootstrap = 500
"""


def paired_auroc_difference(y: np.ndarray, a: np.ndarray, b: np.ndarray, replicates: int = 2000, seed: int = 0):
    """AUROC(a) - AUROC(b) on the same patients, with a percentile CI from a paired bootstrap."""
    rng = np.random.default_rng(seed)
    diffs = []
    while len(diffs) < replicates:
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        diffs.append(roc_auc_score(y[idx], a[idx]) - roc_auc_score(y[idx], b[idx]))
    return roc_auc_score(y, a) - roc_auc_score(y, b), np.quantile(diffs, [0.025, 0.975])


def accuracy(work: Path, patients: int) -> tuple[float, float]:
    from tumorboard import run
    from tumorboard.api import Target
    from tumorboard_pathology.modality import PathologySlides
    from tumorboard_synth import SynthOptions, generate

    cohort = generate(work / "cohort", SynthOptions(patients=patients, seed=3, images=False, rna_genes=100, slides=True))
    truth = pl.read_parquet(cohort / "ground_truth.parquet")
    truth.select("patient_id", pl.col("EGFR").cast(pl.Int8).alias("egfr")).write_csv(work / "outcomes.csv")
    print(f"{patients} patients, {int(truth['EGFR'].sum())} EGFR-mutant; "
          f"{pl.read_csv(cohort / 'pathology' / 'manifest.csv').height} slides")
    oof = {}
    for pooling in ("abmil", "mean"):
        spec = work / f"{pooling}.toml"
        spec.write_text(SPEC.format(pooling=pooling, out=work / f"run-{pooling}", outcomes=work / "outcomes.csv",
                                    manifest=cohort / "pathology" / "manifest.csv"), encoding="utf-8")
        start = time.perf_counter()
        result = run(spec, overwrite=True)
        auroc = result.metrics["overall"]["auroc"]
        print(f"  pooling = {pooling:5s}: out-of-fold AUROC {auroc['value']:.3f} ({auroc['ci_low']:.3f}-{auroc['ci_high']:.3f}) "
              f"in {time.perf_counter() - start:.0f} s")
        oof[pooling] = pl.read_parquet(result.path / "predictions.parquet").filter(pl.col("set") == "test").sort("patient_id")
    y = oof["abmil"]["y_true"].to_numpy()
    assert oof["abmil"]["patient_id"].to_list() == oof["mean"]["patient_id"].to_list()
    diff, (low, high) = paired_auroc_difference(y, oof["abmil"]["y_pred"].to_numpy(), oof["mean"]["y_pred"].to_numpy())
    print(f"  AUROC abmil - mean = {diff:+.3f} (paired bootstrap 95% CI {low:+.3f} to {high:+.3f})")

    ids, egfr = truth["patient_id"].to_list(), truth["EGFR"].cast(pl.Int64).to_numpy()
    order = np.random.default_rng(1).permutation(len(ids))
    train, test = order[: int(0.7 * len(ids))], order[int(0.7 * len(ids)):]
    pool = PathologySlides(manifest=cohort / "pathology" / "manifest.csv", seed=1)
    pool.fit([ids[i] for i in train], Target("binary", egfr[train], None, ("0", "1")))
    _, _, bags, weights = pool.attention([ids[i] for i in test])
    slides = pool._slides()
    tiles = pl.read_parquet(cohort / "ground_truth_tiles.parquet")
    index = {s: k for k, s in enumerate(slides.slides)}
    signal = tiles.with_columns(pl.col("slide_id").replace_strict(index).alias("k")).sort("k", "tile")["signal"].to_numpy()
    mutant = [k for k, i in enumerate(test) if egfr[i]]
    on_signal = float(np.mean([weights[k][signal[bags[k]]].sum() for k in mutant]))
    share = float(np.mean([signal[bags[k]].mean() for k in mutant]))
    print(f"  held-out mutant patients ({len(mutant)}): attention on planted tiles {on_signal:.2f}, "
          f"which are {share:.3f} of their tiles ({on_signal / share:.0f}x)")
    return diff, on_signal / share


def throughput(dim: int, tiles: int, hidden: int, attention: int, bags: int, max_tiles: int, peak: float) -> tuple[float, float]:
    from tumorboard.api import TrainSettings
    from tumorboard_neural import fit_adamw, head_loss
    from tumorboard_pathology.abmil import GatedAttentionPool, padded_bags, pool_bags

    rng = np.random.default_rng(0)
    features = rng.standard_normal((bags * tiles, dim)).astype(np.float32)
    members = [np.arange(b * tiles, (b + 1) * tiles) for b in range(bags)]
    model = GatedAttentionPool(hidden, attention, 1, 0.1)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 2, dim)), jnp.ones((1, 2)))["params"]
    forward_flops = 2 * tiles * (dim * hidden + 2 * hidden * attention + attention + hidden) + 2 * hidden
    start = time.perf_counter()
    on_device = jnp.asarray(features).block_until_ready()  # once per fitted modality (it keeps them there)
    transfer = time.perf_counter() - start
    pool_bags(model, params, on_device, members)  # compile
    start = time.perf_counter()
    pool_bags(model, params, on_device, members)
    seconds = time.perf_counter() - start
    infer_rate = bags / seconds
    infer_gflops = forward_flops * bags / seconds / 1e9
    x, mask = padded_bags(features, members, max_tiles, rng)
    y = (rng.random(bags) < 0.5).astype(np.float32)

    def loss_fn(p, batch, key):
        t, m, target = batch
        return head_loss("binary", model.apply({"params": p}, t, m, key)[1], target, target, jnp.ones_like(target))

    settings = TrainSettings(learning_rate=1e-3, weight_decay=1e-4, batch_size=8, epochs=1, patience=10)
    fit_adamw(params, loss_fn, (x, mask, y), None, settings, 0)  # compile
    settings.epochs = 3
    start = time.perf_counter()
    fit_adamw(params, loss_fn, (x, mask, y), None, settings, 0)
    seconds = time.perf_counter() - start
    train_rate = 3 * bags / seconds
    train_flops = 3 * 2 * max_tiles * (dim * hidden + 2 * hidden * attention + attention + hidden)  # fwd + 2x bwd
    train_gflops = train_flops * train_rate / 1e9
    print(f"  dim {dim}, hidden {hidden}, attention {attention}: inference {infer_rate:,.0f} bags/s of {tiles} tiles "
          f"({infer_gflops:.1f} GFLOP/s, {infer_gflops / peak:.2f} of peak; the tiles' one-time copy to the device "
          f"{transfer:.2f} s); training {train_rate:,.0f} bags/s of "
          f"{max_tiles} tiles ({train_gflops:.1f} GFLOP/s, {train_gflops / peak:.2f} of peak)")
    return infer_rate, infer_gflops / peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--dim", type=int, default=1024, help="embedding dimension of the wide case (UNI: 1024)")
    parser.add_argument("--tiles", type=int, default=2048, help="tiles per bag in the throughput cases")
    parser.add_argument("--bags", type=int, default=64)
    args = parser.parse_args()
    summary: dict[str, float] = {}
    if not args.skip_accuracy:
        with tempfile.TemporaryDirectory() as tmp:
            diff, ratio = accuracy(Path(tmp), args.patients)
        summary.update(auroc_gain=round(diff, 3), attention_ratio=round(ratio, 1))
    peak = matmul_peak()
    print(f"float32 matmul peak (jitted 2048^3): {peak:.1f} GFLOP/s on {jax.devices()[0].platform}")
    throughput(64, args.tiles, 64, 32, args.bags, 512, peak)  # the synthetic cohort's size, default pool
    rate, fraction = throughput(args.dim, args.tiles, 256, 128, args.bags, 512, peak)
    summary.update(bags_per_s=round(rate, 1), peak_fraction=round(fraction, 2))
    print("mil " + " ".join(f"{k}={v}" for k, v in summary.items()))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
