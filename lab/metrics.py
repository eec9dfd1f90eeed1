"""Measured quality: test NLL and KL to truth, energy distance, 2-Wasserstein, mode coverage, blur gap, speed."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from lab.data import Dataset


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float64).reshape(-1, 2)


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """D^2(P, Q) = 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely & Rizzo 2013), as a V-statistic.

    Zero exactly when P = Q and never negative; for two finite samples of one density it sits at a
    noise floor of order 1/n, which `energy_distance_floor` measures.
    """
    x, y = _t(x), _t(y)
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).mean()
    yy = torch.cdist(y, y).mean()
    return float(max(2 * xy - xx - yy, 0.0))


def energy_distance_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """The same D^2(P, Q) as a U-statistic: the within-sample means leave out the zero diagonal, so its
    expectation is exactly D^2 (no 1/n floor) and two samples of one density score 0 on average; a single
    draw can therefore come out slightly negative. Used by the benches to compare against targets below
    the V-statistic's floor."""
    x, y = _t(x), _t(y)
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError("energy_distance_unbiased needs at least two points in each sample.")
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).sum() / (n * (n - 1))
    yy = torch.cdist(y, y).sum() / (m * (m - 1))
    return float(2 * xy - xx - yy)


def energy_distance_floor(dataset: Dataset, n: int, seed: int = 0) -> float:
    """Energy distance between two independent true samples of size n: what a perfect model scores."""
    return energy_distance(dataset.sample(n, seed + 101), dataset.sample(n, seed + 202))


def wasserstein2(x: np.ndarray, y: np.ndarray) -> float:
    """Exact W2 between equal-size empirical measures: the optimal matching (Hungarian algorithm)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"wasserstein2 needs equal sizes, got {len(x)} and {len(y)}.")
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    r, c = linear_sum_assignment(cost)
    return float(np.sqrt(cost[r, c].mean()))


@dataclass
class ModeCoverage:
    modes: int  # modes captured
    n_modes: int
    high_quality: float  # fraction of samples within 3 std of their nearest mode
    counts: np.ndarray  # high-quality samples per mode [n_modes]


def mode_coverage(samples: np.ndarray, modes: np.ndarray, std: float, n_std: float = 3.0) -> ModeCoverage:
    """VEEGAN / PacGAN: a sample is high quality when within n_std std of its nearest mode; a mode is
    captured when some high-quality sample is nearest to it."""
    s, m = np.asarray(samples, dtype=np.float64), np.asarray(modes, dtype=np.float64)
    d = np.sqrt(((s[:, None, :] - m[None, :, :]) ** 2).sum(-1))  # [n, K]
    nearest = d.argmin(1)
    hq = d[np.arange(len(s)), nearest] <= n_std * std
    counts = np.bincount(nearest[hq], minlength=len(m))
    return ModeCoverage(int((counts > 0).sum()), len(m), float(hq.mean()) if len(s) else 0.0, counts)


def blur_gap(dataset: Dataset, true_x: np.ndarray, samples: np.ndarray) -> float:
    """Mean true log-density of true points minus that of model samples (nats).

    Near 0 when samples sit where the data is; large when they are smeared into low-density space
    (the "blurry VAE samples" of the lecture, measured)."""
    return float(np.mean(dataset.log_prob(true_x)) - np.mean(dataset.log_prob(samples)))


def sample_seconds_per_1000(model, n: int = 1000, seed: int = 0) -> float:
    """Wall time to draw 1000 samples (one warm-up call first, then the median of three)."""
    model.sample(16, seed)
    times = []
    for i in range(3):
        t0 = time.perf_counter()
        model.sample(n, seed + i)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1000 / n


def test_nll(model, x: np.ndarray) -> float:
    """-mean log p_model(x) in nats, data coordinates."""
    return float(-model.log_prob(x).double().mean())


class Evaluator:
    """Every metric that applies to a model on a dataset, with the reference samples drawn once.

    With a true density: test NLL and KL on fresh true samples, blur gap, energy distance against a
    fresh true sample and its floor (a second true sample). Without one (user points): held-out
    `test_points` stand in for the truth; KL and blur gap are left out.
    """

    def __init__(self, dataset: Dataset, n: int = 2000, seed: int = 0, test_points: np.ndarray | None = None):
        self.dataset, self.n, self.seed = dataset, n, seed
        if dataset.has_density:
            self.truth = dataset.sample(n, seed + 1)
            self.truth_lp = dataset.log_prob(self.truth)
            self.floor = energy_distance(self.truth, dataset.sample(n, seed + 2))
        else:
            pts = np.asarray(test_points if test_points is not None else dataset.points, dtype=np.float64)
            self.truth, self.truth_lp = pts[:n], None
            half = len(self.truth) // 2
            self.floor = energy_distance(self.truth[:half], self.truth[half:]) if half >= 2 else None
        self.modes = getattr(dataset, "modes", None)

    def draw(self, model) -> np.ndarray:
        """The evaluator's own sample of the model: n points, always the same seed [n, 2] float64."""
        return model.sample(self.n, torch.Generator().manual_seed(self.seed + 7)).double().numpy()

    def __call__(
        self,
        model,
        timing: bool = True,
        w2: bool = False,
        n_mode_samples: int = 2500,
        samples: np.ndarray | None = None,
    ) -> dict:
        """Every metric for `model`; `samples` = an earlier `draw(model)` of this model, to reuse."""
        out: dict[str, float | int | None] = {}
        samples = self.draw(model) if samples is None else np.asarray(samples, dtype=np.float64)
        finite = np.isfinite(samples).all(1)
        out["finite_fraction"] = float(finite.mean())
        samples = samples[finite] if finite.sum() >= 2 else np.zeros((2, 2))
        out["energy_distance"] = energy_distance(samples, self.truth)
        out["energy_distance_floor"] = self.floor
        if w2:
            m = min(len(samples), len(self.truth), 1000)
            out["wasserstein2"] = wasserstein2(samples[:m], self.truth[:m])
        if model.has_log_prob:
            lp = model.log_prob(self.truth).double().numpy()
            out["test_nll"] = float(-lp.mean()) if np.isfinite(lp).all() else float("inf")
            if self.truth_lp is not None:
                out["entropy"] = float(-self.truth_lp.mean())
                out["kl_to_truth"] = float(np.mean(self.truth_lp - lp))  # = test NLL - entropy, same points
        if self.truth_lp is not None:
            out["blur_gap"] = float(self.truth_lp.mean() - self.dataset.log_prob(samples).mean())
        if self.modes is not None:
            s = model.sample(n_mode_samples, torch.Generator().manual_seed(self.seed + 11)).double().numpy()
            mc = mode_coverage(np.nan_to_num(s, nan=1e9), self.modes, self.dataset.mode_std)
            out["modes"], out["n_modes"], out["high_quality"] = mc.modes, mc.n_modes, mc.high_quality
        if timing:
            out["sample_seconds_per_1000"] = sample_seconds_per_1000(model)
        return out


def evaluate(
    model,
    dataset: Dataset,
    n: int = 2000,
    seed: int = 0,
    test_points=None,
    timing: bool = True,
    w2: bool = False,
) -> dict:
    """One-shot `Evaluator(dataset, n, seed, test_points)(model)`."""
    return Evaluator(dataset, n, seed, test_points)(model, timing=timing, w2=w2)
