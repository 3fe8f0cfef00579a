"""Writes tests/fixtures/kde_scipy.json: scipy.stats.gaussian_kde on seeded samples.

The Rust test tests/scipy_kde.rs checks bh_moe::GaussianKde against it (bandwidth factor,
covariance, pdf, and cdf as integrate_box_1d(-inf, x)).

    pip install scipy   # numpy too
    python3 crates/bh-moe/peer/kde_fixtures.py
"""

import json
import pathlib

import numpy as np
import scipy
from scipy.stats import gaussian_kde

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "kde_scipy.json"


def mixture(rng, n):
    """A three-component normal mixture: a broad bulk, a tight cluster, a far right bump."""
    comp = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    means = np.array([0.0, -1.5, 4.0])
    sds = np.array([1.0, 0.3, 0.7])
    return rng.normal(means[comp], sds[comp])


def query_points(x, h):
    """About 20 points: the far tails, around the samples, and a few at sample values."""
    lo, hi = x.min(), x.max()
    grid = np.linspace(lo - 3 * h, hi + 3 * h, 15)
    tails = np.array([lo - 10 * h, lo - 6 * h, hi + 6 * h, hi + 10 * h])
    return np.sort(np.concatenate([grid, tails, np.sort(x)[[0, len(x) // 2]]]))


def fit(x, bw_method):
    kde = gaussian_kde(x, bw_method=bw_method)
    h = float(np.sqrt(kde.covariance[0, 0]))
    pts = query_points(x, h)
    return {
        "bw_method": bw_method,
        "neff": float(kde.neff),
        "factor": float(kde.factor),
        "covariance": float(kde.covariance[0, 0]),
        "points": pts.tolist(),
        "pdf": kde.pdf(pts).tolist(),
        "cdf": [float(kde.integrate_box_1d(-np.inf, p)) for p in pts],
    }


def main():
    rng = np.random.default_rng(20251213)
    datasets = []
    for n in (50, 1000):
        x = mixture(rng, n)
        methods = ["scott", "silverman"] + ([0.3] if n == 50 else [])
        datasets.append(
            {
                "name": f"mixture_n{n}",
                "samples": x.tolist(),
                "fits": [fit(x, m) for m in methods],
            }
        )
    doc = {
        "generator": "crates/bh-moe/peer/kde_fixtures.py",
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "seed": 20251213,
        "note": "samples from a normal mixture 0.6 N(0,1) + 0.3 N(-1.5,0.3^2) + 0.1 N(4,0.7^2); "
        "cdf = integrate_box_1d(-inf, x); covariance = kde.covariance[0, 0] = (factor * std(ddof=1))^2",
        "datasets": datasets,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes), scipy {scipy.__version__}")


if __name__ == "__main__":
    main()
